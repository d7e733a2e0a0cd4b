"""CRNN (Choi, Fazekas, Sandler, Cho, ICASSP 2017) as Won, Ferraro,
Bogdanov, Serra (SMC 2020) trained it.

"Convolutional recurrent neural networks for music classification": a
small CNN summarised over time by a two-layer GRU, on 29 s excerpts.
Reference code: minzwon/sota-music-tagging-models, `training/model.py`
(CRNN) and `training/modules.py` (Conv_2d); input length from
`training/main.py` (29 * 16000 = 464000 samples).

- front end: FCN's (`tagger.models.fcn.LOGMEL`, 96 HTK bins, 16 kHz,
  n_fft 512, hop 256) and `input_bn`: 464000 samples give 1813 frames.
- four blocks (the short-chunk CNN's conv block: conv 3x3 'same' -> BN ->
  ReLU -> max-pool), channels `n_channels` x (1, 2, 2, 2) = 64, 128, 128,
  128 and poolings (mel, time) (2, 2), (3, 3), (4, 4), (4, 4): 96 x 1813
  -> 48 x 906 -> 16 x 302 -> 4 x 75 -> 1 x 18. A pooling larger than what
  is left pools all of it.
- `mel_max`: the original squeezes the one mel bin left; a max over the
  bins left computes that and takes other mel counts; `to_sequence`
  (batch, 18, 128).
- two GRU layers of `rnn_units` (32), PyTorch's GRU (gates after the
  reset, Keras's `reset_after`): `gru1` (every step) and `embedding`, the
  second layer's last step, the original's `x[:, -1, :]`.
- `dropout` (0.5), `tags` (dense, sigmoid).

Counts at 50 tags, n_channels 64, rnn_units 32 (tests assert them; equal
to the original's): 394,100 trainable, 898 batch-norm statistics.

Layer names: as `tagger.models.short_chunk` up to `input_bn`;
block{i}_conv, _bn, _relu, _pool for i = 1..4 (the original's
`layer1..4`); mel_max, to_sequence, gru1, embedding (the original's
`layer5`, layers 0 and 1), dropout, tags.
"""

from __future__ import annotations

import keras

from tagger.config import LogMelConfig
from tagger.layers.philox_dropout import PhiloxDropout
from tagger.models.family_spec import BenchCase, FamilySpec, ModelFlag, Preset
from tagger.models.fcn import LOGMEL
from tagger.models.short_chunk import (
    SAMPLE_RATE,
    check_dropout,
    check_positive_int,
    conv_block,
    spectrogram_image,
)
from tagger.models.spectrogram_input import EMBEDDING_LAYER, spectrogram_input

SEGMENT_LENGTH = 29 * SAMPLE_RATE  # 464000 samples, 29 s: one record segment
SEGMENTS = 1
N_CHANNELS = 64
RNN_UNITS = 32
DROPOUT = 0.5
# One row per block, input side first: (channels in units of n_channels,
# max-pool (mel, time)).
BLOCKS = (
    (1, (2, 2)),
    (2, (3, 3)),
    (2, (4, 4)),
    (2, (4, 4)),
)


def build_crnn(num_tags=50, *, input_kind="raw", segments=SEGMENTS, input_length=None,
               num_frames=None, sample_rate=SAMPLE_RATE, logmel: LogMelConfig | None = None,
               segment_length=SEGMENT_LENGTH, n_channels=N_CHANNELS, rnn_units=RNN_UNITS,
               dropout=DROPOUT) -> keras.Model:
    """Builds the CRNN.

    Args:
      num_tags: outputs of the `tags` layer (sigmoid, float32).
      input_kind: "raw" (waveform, `(batch, samples)`) or "logmel"
        (`(batch, frames, n_mels)` as `LogMel` produces).
      segments: window in `segment_length`-sample segments (default 1);
        input_length: in samples instead (a multiple of segment_length);
        num_frames: log-mel input only, in frames instead.
      sample_rate: of raw input (16000, the paper's).
      logmel: `LogMelConfig`; default `fcn.LOGMEL` (the paper's, 96 bins).
      segment_length: samples per record segment, 464000 (29 s at 16 kHz,
        the paper's input).
      n_channels: channel unit; blocks have 1, 2, 2, 2 of it (64: the
        paper).
      rnn_units: width of both GRU layers (32: the paper).
      dropout: before the output layer (0.5).
    """
    for name, value in (("num_tags", num_tags), ("segment_length", segment_length),
                        ("n_channels", n_channels), ("rnn_units", rnn_units)):
        check_positive_int(name, value)
    check_dropout(dropout)
    logmel = logmel or LOGMEL
    inputs, features = spectrogram_input(
        input_kind, logmel, segments=segments, input_length=input_length,
        num_frames=num_frames, sample_rate=sample_rate, segment_length=segment_length)
    x = spectrogram_image(features)  # (batch, mel, time, 1)
    for i, (units, pool) in enumerate(BLOCKS, start=1):
        x = conv_block(x, i, units * n_channels, pool)
    # (batch, 1, T, C) at the paper's input
    x = keras.layers.MaxPooling2D((x.shape[1], 1), name="mel_max")(x)
    x = keras.layers.Reshape(x.shape[2:], name="to_sequence")(x)  # (batch, T, C)
    x = keras.layers.GRU(rnn_units, return_sequences=True, name="gru1")(x)
    x = keras.layers.GRU(rnn_units, name=EMBEDDING_LAYER)(x)  # (batch, rnn_units): last step
    x = PhiloxDropout(dropout, name="dropout")(x)
    outputs = keras.layers.Dense(num_tags, activation="sigmoid", dtype="float32",
                                 name="tags")(x)  # (batch, num_tags)
    return keras.Model(inputs, outputs, name="crnn")


FAMILY = FamilySpec(
    name="crnn", build=build_crnn, paper="Choi, Fazekas, Sandler, Cho 2017 (Won et al. 2020)",
    window_segments=SEGMENTS, logmel=LOGMEL, schedule="won",
    flags=(ModelFlag("n_channels"), ModelFlag("dropout")),
    embedding_layer=EMBEDDING_LAYER, int8=False, analyses=(),
    demo=Preset({"n_channels": 16}, batch_size=8, lr=1e-3, epochs=6),
    tiny={"n_channels": 4, "rnn_units": 4},
    bench=(BenchCase("CRNN", {}, 16),),
    segment_length=SEGMENT_LENGTH, sample_rate=SAMPLE_RATE,
)
