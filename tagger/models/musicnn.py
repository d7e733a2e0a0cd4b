"""Musicnn (Pons, Nieto, Prockup, Schmidt, Ehmann, Serra, ISMIR 2018) as
Won, Ferraro, Bogdanov, Serra (SMC 2020) trained it.

"End-to-end learning for music audio tagging at scale": musically
motivated filters (timbral: tall and narrow; temporal: one mel band wide,
long in time) feeding a residual 1-D back end. Reference code:
minzwon/sota-music-tagging-models, `training/model.py` (Musicnn) and
`training/modules.py` (Conv_V, Conv_H, Conv_1d); input length from
`training/main.py` (3 * 16000 = 48000 samples).

- front end: `LOGMEL`, the release's, FCN's (96 HTK bins, 16 kHz,
  n_fft 512, hop 256) and `input_bn`: 48000 samples give 188 frames.
- timbral filters (Conv_V), two branches of `timbral_filters` (204)
  convs of int(0.7 * n_mels) x 7 and int(0.4 * n_mels) x 7 (67 and 38
  at 96 bins): valid over mel, 'same' over time (3 frames each side) ->
  BN -> ReLU -> max over the mel bins left: (batch, time, 204) each.
- temporal filters (Conv_H): the mean over all mel bins, then three
  branches of `temporal_filters` (51) 1-D convs of 129, 65 and 33 frames
  ('same') -> BN -> ReLU: (batch, time, 51) each.
- `front_end`: the five concatenated, 561 channels at the paper's sizes.
- back end: three 1-D convs of 7 frames ('same'), `backend_channels`
  each -> BN -> ReLU; the second and third add their input. `backend_concat`
  joins the front end and the three outputs (561 + 3 x 64 = 753 channels);
  a max and a mean over time, concatenated (2 x 753).
- head (`short_chunk.dense_head`): `head_dense` (`dense_units`) ->
  `head_bn` -> `embedding` (ReLU) -> `head_dropout` (0.5) -> `tags`.

The release trained two sizes, chosen by dataset: MSD backend 512, dense
500; MagnaTagATune and MTG-Jamendo backend 64, dense 200 (the default).
Counts at 50 tags (tests assert them; equal to the original's): 64 / 200:
784,300 trainable, 1,908 batch-norm statistics; 512 / 500: 7,972,000 and
5,196.

Layer names (j numbers the branches in the original's order, `layers.0..4`):
    as `tagger.models.short_chunk` up to `input_bn`;
    timbral{j}_pad, _conv, _bn, _relu, _pool, _squeeze (j = 1, 2);
    mel_mean, mel_mean_squeeze, temporal{j}_conv, _bn, _relu (j = 1..3);
    front_end; backend{i}_conv, _bn, _relu, backend{2,3}_add (i = 1..3,
    the original's `layer1..3`); backend_concat, time_max, time_mean,
    pooled; head_dense, head_bn, embedding, head_dropout, tags.
"""

from __future__ import annotations

import dataclasses

from tagger.models.family_spec import DROPOUT_FLAG, N_CHANNELS_FLAG, BenchCase, FamilySpec, Preset
from tagger.models.fcn import LOGMEL
from tagger.models.lazy import keras
from tagger.models.parts import check_arguments, timbral_heights
from tagger.models.short_chunk import BN, SAMPLE_RATE, dense_head, spectrogram_image
from tagger.models.spectrogram_input import Preprocessor

# one record segment of 3 s at 16 kHz (48000 samples), the paper's input
PREPROCESSOR = Preprocessor(LOGMEL, segment_length=3 * SAMPLE_RATE, sample_rate=SAMPLE_RATE)
TIMBRAL_HEIGHTS = (0.7, 0.4)  # of the mel bins
TIMBRAL_WIDTH = 7  # frames
TEMPORAL_LENGTHS = (129, 65, 33)  # frames
BACKEND_LAYERS, BACKEND_KERNEL = 3, 7
TIMBRAL_FILTERS, TEMPORAL_FILTERS = 204, 51
BACKEND_CHANNELS, DENSE_UNITS = 64, 200  # MagnaTagATune, MTG-Jamendo; MSD: 512, 500
DROPOUT = 0.5


def build_musicnn(num_tags=50, *, timbral_filters=TIMBRAL_FILTERS,
                  temporal_filters=TEMPORAL_FILTERS, backend_channels=BACKEND_CHANNELS,
                  dense_units=DENSE_UNITS, dropout=DROPOUT, **input_args) -> keras.Model:
    """Builds Musicnn.

    Args:
      num_tags: outputs of the `tags` layer (sigmoid, float32).
      input_args: the window and front end, as `PREPROCESSOR` (a
        `Preprocessor`) takes them; left out, the paper's.
      timbral_filters, temporal_filters: filters per timbral (204) and
        temporal (51) branch.
      backend_channels, dense_units: 64 and 200 (MagnaTagATune, Jamendo)
        or 512 and 500 (MSD).
      dropout: before the output layer (0.5).
    """
    check_arguments(dropout, num_tags=num_tags, timbral_filters=timbral_filters,
                    temporal_filters=temporal_filters, backend_channels=backend_channels,
                    dense_units=dense_units)
    inputs, features = PREPROCESSOR(**input_args)
    heights = timbral_heights(TIMBRAL_HEIGHTS, features.shape[2])
    image = spectrogram_image(features)  # (batch, mel, time, 1)
    branches = [timbral_branch(image, j, timbral_filters, height)
                for j, height in enumerate(heights, start=1)]
    branches += temporal_branches(image, temporal_filters)
    x = keras.layers.Concatenate(name="front_end")(branches)  # (batch, time, 561)
    outputs = [x]
    for i in range(1, BACKEND_LAYERS + 1):
        y = keras.layers.Conv1D(backend_channels, BACKEND_KERNEL, padding="same",
                                name=f"backend{i}_conv")(x)
        y = keras.layers.BatchNormalization(name=f"backend{i}_bn", **BN)(y)
        y = keras.layers.ReLU(name=f"backend{i}_relu")(y)
        if i > 1:
            y = keras.layers.Add(name=f"backend{i}_add")([y, x])
        outputs.append(y)
        x = y  # (batch, time, backend_channels)
    x = keras.layers.Concatenate(name="backend_concat")(outputs)  # (batch, time, 753)
    pooled = [keras.layers.GlobalMaxPooling1D(name="time_max")(x),
              keras.layers.GlobalAveragePooling1D(name="time_mean")(x)]
    x = keras.layers.Concatenate(name="pooled")(pooled)  # (batch, 1506)
    return keras.Model(inputs, dense_head(x, dense_units, num_tags, dropout), name="musicnn")


def timbral_branch(image, j, filters, height):
    """The original's Conv_V: (batch, mel, time, 1) -> (batch, time, filters),
    a `height` x 7 conv valid over mel, 'same' over time, max over mel."""
    pad = TIMBRAL_WIDTH // 2
    x = keras.layers.ZeroPadding2D(((0, 0), (pad, pad)), name=f"timbral{j}_pad")(image)
    x = keras.layers.Conv2D(filters, (height, TIMBRAL_WIDTH), name=f"timbral{j}_conv")(x)
    x = keras.layers.BatchNormalization(name=f"timbral{j}_bn", **BN)(x)
    x = keras.layers.ReLU(name=f"timbral{j}_relu")(x)  # (batch, mel - height + 1, time, f)
    x = keras.layers.MaxPooling2D((x.shape[1], 1), name=f"timbral{j}_pool")(x)
    return keras.layers.Reshape((x.shape[2], filters), name=f"timbral{j}_squeeze")(x)


def temporal_branches(image, filters):
    """The original's three Conv_H: the mean over the mel bins (batch, time,
    1), then one 1-D conv -> BN -> ReLU per length: [(batch, time, filters)]."""
    n_mels, frames = image.shape[1], image.shape[2]
    mean = keras.layers.AveragePooling2D((n_mels, 1), name="mel_mean")(image)
    mean = keras.layers.Reshape((frames, 1), name="mel_mean_squeeze")(mean)
    branches = []
    for j, length in enumerate(TEMPORAL_LENGTHS, start=1):
        x = keras.layers.Conv1D(filters, length, padding="same",
                                name=f"temporal{j}_conv")(mean)
        x = keras.layers.BatchNormalization(name=f"temporal{j}_bn", **BN)(x)
        branches.append(keras.layers.ReLU(name=f"temporal{j}_relu")(x))
    return branches


FAMILY = FamilySpec(
    name="musicnn", build=build_musicnn, paper="Pons et al. 2018 (Won et al. 2020)",
    preprocessor=PREPROCESSOR,
    flags=(dataclasses.replace(N_CHANNELS_FLAG, argument="backend_channels",
                               help="back-end channels"), DROPOUT_FLAG),
    demo=Preset({"timbral_filters": 32, "temporal_filters": 8, "backend_channels": 32,
                 "dense_units": 64}),
    tiny={"timbral_filters": 4, "temporal_filters": 2, "backend_channels": 4,
          "dense_units": 8},
    bench=(BenchCase("Musicnn", {}, 16),
           BenchCase("Musicnn (MSD size)", {"backend_channels": 512, "dense_units": 500},
                     16)),
)
