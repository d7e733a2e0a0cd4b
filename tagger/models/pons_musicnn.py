"""Musicnn as Pons and Serra's `musicnn` package builds it (Pons, Nieto,
Prockup, Schmidt, Ehmann, Serra, ISMIR 2018; the package: Pons and Serra,
"musicnn: pre-trained convolutional neural networks for music audio
tagging", ISMIR 2019 late-breaking demo; `musicnn/models.py`,
`build_musicnn`, version 0.1.0).

Not Won et al.'s re-implementation (our `musicnn`): the package's layer
order, filter sizes and pooling differ, and its trained checkpoints
(`MTT_musicnn`, `MSD_musicnn`) load only into this graph.

- front end: `LOGMEL`, the package's features: librosa's mel spectrogram
  (16 kHz, n_fft 512, hop 256, 96 Slaney-scale bands with Slaney norm over
  0-8000 Hz, power 2), rounded to float16 and compressed as log10(10000 x
  + 1). A window of 187 frames (3 s) is 48128 samples read by an
  uncentred STFT: tag.py cuts windows from the file padded once by 256
  samples, so they hold the frames of the package's one centred STFT over
  the whole file (`tagger.models.saved.window_grid`).
- `input_bn`: batch norm of the image `(time, mel, 1)` (the package keeps
  time first).
- timbral filters (`timbral_block`): two convolutions of `timbral_filters`
  (204) filters, 7 frames x int(0.4 n_mels) and 7 x int(0.7 n_mels) bins
  (38 and 67 at 96), zero-padded 3 frames on each side in time, valid in
  frequency, ReLU, then batch norm, then a max over the bins left:
  (batch, time, 204) each.
- temporal filters (`tempo_block`): three convolutions of
  `temporal_filters` (51) filters, 128, 64 and 32 frames x 1 bin, 'same',
  ReLU, batch norm, max over all bins: (batch, time, 51) each.
- `front_end`: the five concatenated in the package's order (timbral 38,
  67, temporal 128, 64, 32): 561 channels.
- mid end (`midend`): three convolutions of 7 frames over all channels,
  `midend_channels` (64) each, ReLU, batch norm; the second and third add
  their input. `midend_concat` joins the front end and the three (561 + 3
  x 64 = 753 channels).
- back end (`backend`): `max_pool` and `mean_pool` over time, interleaved
  per channel as the package's flatten of `(753, 2)` leaves them (`pooled`:
  max_0, mean_0, max_1, ...), `pooled_bn`, dropout 0.5, `head_dense`
  (`dense_units`, 200, ReLU), `embedding` (its batch norm: the package's
  `penultimate`), dropout 0.5, `tags` (sigmoid).

Batch norms have TensorFlow 1's defaults (epsilon 1e-3, momentum 0.99).
The package builds `MTT_musicnn` and `MSD_musicnn` at 64 / 200 (its
`MSD_musicnn_big`, 512 / 500, is not in the wheel). Counts at 50 tags
(tests assert them; equal to the checkpoints' variables without the
optimiser's): 787,159 trainable, 4,920 batch-norm statistics.

Layer names:
    waveform or log_mel (input), log_mel (LogMel, raw input), to_image,
    input_bn; timbral{j}_pad (j = 1, 2), timbral{j}_conv, _bn, _pool,
    _squeeze (j = 1: 0.4 of the bins, 2: 0.7); temporal{j}_conv, _bn,
    _pool, _squeeze (j = 1..3: 128, 64, 32 frames); front_end;
    midend{i}_conv, _bn (i = 1..3), midend{2,3}_add; midend_concat;
    max_pool, mean_pool, max_pool_column, mean_pool_column, pooled_pairs,
    pooled, pooled_bn, pooled_dropout, head_dense, embedding, head_dropout,
    tags.
"""

from __future__ import annotations

import dataclasses

from tagger.config import LogMelConfig
from tagger.models.family_spec import DROPOUT_FLAG, N_CHANNELS_FLAG, BenchCase, FamilySpec, Preset
from tagger.models.lazy import keras, layers
from tagger.models.parts import check_arguments, tags_output, timbral_heights
from tagger.models.spectrogram_input import EMBEDDING_LAYER, Preprocessor

SAMPLE_RATE = 16000
FRAMES = 187  # 3 s: librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1
LOGMEL = LogMelConfig(n_mels=96, n_fft=512, hop_length=256, f_min=0.0, f_max=8000.0,
                      mel_scale="slaney", mel_norm="slaney", power=2.0,
                      compression="logc", log_c=10000.0, mel_float16=True, center=False)
SEGMENT_LENGTH = (FRAMES - 1) * LOGMEL.hop_length + LOGMEL.n_fft  # 48128 samples
PREPROCESSOR = Preprocessor(LOGMEL, segment_length=SEGMENT_LENGTH, sample_rate=SAMPLE_RATE)
TIMBRAL_HEIGHTS = (0.4, 0.7)  # of the mel bins, in the package's order
TIMBRAL_WIDTH = 7  # frames
TEMPORAL_LENGTHS = (128, 64, 32)  # frames
MIDEND_LAYERS, MIDEND_KERNEL = 3, 7
TIMBRAL_FILTERS, TEMPORAL_FILTERS = 204, 51  # int(1.6 * 128), int(1.6 * 32)
MIDEND_CHANNELS, DENSE_UNITS = 64, 200
DROPOUT = 0.5


def build_pons_musicnn(num_tags=50, *, timbral_filters=TIMBRAL_FILTERS,
                       temporal_filters=TEMPORAL_FILTERS, midend_channels=MIDEND_CHANNELS,
                       dense_units=DENSE_UNITS, dropout=DROPOUT, **input_args) -> keras.Model:
    """Builds the musicnn package's Musicnn.

    Args:
      num_tags: outputs of the `tags` layer (sigmoid, float32).
      input_args: the window and front end, as `PREPROCESSOR` (a
        `Preprocessor`) takes them; left out, the paper's.
      timbral_filters, temporal_filters: filters per timbral (204) and
        temporal (51) convolution.
      midend_channels, dense_units: 64 and 200 (the package's two musicnn
        checkpoints; its big MSD model: 512 and 500).
      dropout: before `head_dense` and before `tags` (0.5).
    """
    check_arguments(dropout, num_tags=num_tags, timbral_filters=timbral_filters,
                    temporal_filters=temporal_filters, midend_channels=midend_channels,
                    dense_units=dense_units)
    inputs, features = PREPROCESSOR(**input_args)
    heights = timbral_heights(TIMBRAL_HEIGHTS, features.shape[2])
    image = time_mel_image(features)  # (batch, time, mel, 1)
    branches = [timbral_block(image, j, timbral_filters, height)
                for j, height in enumerate(heights, start=1)]
    branches += [temporal_block(image, j, temporal_filters, length)
                 for j, length in enumerate(TEMPORAL_LENGTHS, start=1)]
    x = keras.layers.Concatenate(name="front_end")(branches)  # (batch, time, 561)
    outputs = [x]
    for i in range(1, MIDEND_LAYERS + 1):
        y = keras.layers.Conv1D(midend_channels, MIDEND_KERNEL, padding="same",
                                activation="relu", name=f"midend{i}_conv")(x)
        y = keras.layers.BatchNormalization(name=f"midend{i}_bn")(y)
        if i > 1:
            y = keras.layers.Add(name=f"midend{i}_add")([y, x])
        outputs.append(y)
        x = y  # (batch, time, midend_channels)
    x = keras.layers.Concatenate(name="midend_concat")(outputs)  # (batch, time, 753)
    x = interleaved_pooling(x)  # (batch, 2 * 753)
    x = keras.layers.BatchNormalization(name="pooled_bn")(x)
    x = layers.PhiloxDropout(dropout, name="pooled_dropout")(x)
    x = keras.layers.Dense(dense_units, activation="relu", name="head_dense")(x)
    x = keras.layers.BatchNormalization(name=EMBEDDING_LAYER)(x)  # (batch, dense_units)
    return keras.Model(inputs, tags_output(x, num_tags, dropout), name="pons_musicnn")


def time_mel_image(features):
    """(batch, frames, mels) -> the batch-normed image (batch, time, mel, 1),
    the package's `expand_dims(x, 3)` + batch norm."""
    frames, n_mels = features.shape[1], features.shape[2]
    x = keras.layers.Reshape((frames, n_mels, 1), name="to_image")(features)
    return keras.layers.BatchNormalization(name="input_bn")(x)


def timbral_block(image, j, filters, height):
    """The package's timbral_block: (batch, time, mel, 1) -> (batch, time,
    filters); conv 7 x `height` (time padded 3 + 3, mel valid), ReLU, BN,
    max over the bins left."""
    pad = TIMBRAL_WIDTH // 2
    x = keras.layers.ZeroPadding2D(((pad, pad), (0, 0)), name=f"timbral{j}_pad")(image)
    x = keras.layers.Conv2D(filters, (TIMBRAL_WIDTH, height), activation="relu",
                            name=f"timbral{j}_conv")(x)
    x = keras.layers.BatchNormalization(name=f"timbral{j}_bn")(x)  # (b, T, mel - h + 1, f)
    return _max_over_bins(x, f"timbral{j}")


def temporal_block(image, j, filters, length):
    """The package's tempo_block: (batch, time, mel, 1) -> (batch, time,
    filters); conv `length` x 1 'same', ReLU, BN, max over the bins."""
    x = keras.layers.Conv2D(filters, (length, 1), padding="same", activation="relu",
                            name=f"temporal{j}_conv")(image)
    x = keras.layers.BatchNormalization(name=f"temporal{j}_bn")(x)  # (b, T, mel, f)
    return _max_over_bins(x, f"temporal{j}")


def _max_over_bins(x, prefix):
    frames, bins, filters = x.shape[1], x.shape[2], x.shape[3]
    x = keras.layers.MaxPooling2D((1, bins), name=f"{prefix}_pool")(x)  # (b, T, 1, f)
    return keras.layers.Reshape((frames, filters), name=f"{prefix}_squeeze")(x)


def interleaved_pooling(x):
    """(batch, time, C) -> (batch, 2C): the max and the mean over time,
    `max_pool` and `mean_pool`, then per channel as the package's flatten of
    their `(C, 2)` stack orders them: max_0, mean_0, max_1, mean_1, ..."""
    channels = x.shape[-1]
    columns = []
    for name, pool in (("max_pool", keras.layers.GlobalMaxPooling1D),
                       ("mean_pool", keras.layers.GlobalAveragePooling1D)):
        pooled = pool(name=name)(x)  # (batch, C)
        columns.append(keras.layers.Reshape((channels, 1), name=f"{name}_column")(pooled))
    x = keras.layers.Concatenate(name="pooled_pairs")(columns)  # (batch, C, 2)
    return keras.layers.Flatten(name="pooled")(x)


FAMILY = FamilySpec(
    name="pons_musicnn", build=build_pons_musicnn,
    paper="Pons et al. 2018 (the musicnn package, Pons and Serra 2019)",
    preprocessor=PREPROCESSOR,
    flags=(dataclasses.replace(N_CHANNELS_FLAG, argument="midend_channels",
                               help="mid-end channels"), DROPOUT_FLAG),
    demo=Preset({"timbral_filters": 32, "temporal_filters": 8, "midend_channels": 32,
                 "dense_units": 64}),
    tiny={"timbral_filters": 4, "temporal_filters": 2, "midend_channels": 4,
          "dense_units": 8},
    bench=(BenchCase("Musicnn (the musicnn package's)", {}, 16),),
)
