"""CRNN (Choi, Fazekas, Sandler, Cho, ICASSP 2017) as Won, Ferraro,
Bogdanov, Serra (SMC 2020) trained it.

"Convolutional recurrent neural networks for music classification": a
small CNN summarised over time by a two-layer GRU, on 29 s excerpts.
Reference code: minzwon/sota-music-tagging-models, `training/model.py`
(CRNN) and `training/modules.py` (Conv_2d); input length from
`training/main.py` (29 * 16000 = 464000 samples).

- front end: FCN's (`fcn.PREPROCESSOR`): torchaudio's MelSpectrogram and
  AmplitudeToDB (96 HTK bins over 0-8000 Hz, 16 kHz, n_fft 512, hop 256, power
  2, 10 log10(max(x, 1e-10)), no top_db) and `input_bn`: 464000 samples
  give 1813 frames.
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

from tagger.models.family_spec import DROPOUT_FLAG, N_CHANNELS_FLAG, BenchCase, FamilySpec, Preset
from tagger.models.fcn import DROPOUT, N_CHANNELS, PREPROCESSOR
from tagger.models.lazy import keras
from tagger.models.parts import check_arguments, tags_output
from tagger.models.short_chunk import conv_block, spectrogram_image
from tagger.models.spectrogram_input import EMBEDDING_LAYER

RNN_UNITS = 32
# One row per block, input side first: (channels in units of n_channels,
# max-pool (mel, time)).
BLOCKS = (
    (1, (2, 2)),
    (2, (3, 3)),
    (2, (4, 4)),
    (2, (4, 4)),
)


def build_crnn(num_tags=50, *, n_channels=N_CHANNELS, rnn_units=RNN_UNITS, dropout=DROPOUT,
               **input_args) -> keras.Model:
    """Builds the CRNN.

    Args:
      num_tags: outputs of the `tags` layer (sigmoid, float32).
      input_args: the window and front end, as `PREPROCESSOR` (a
        `Preprocessor`) takes them; left out, the paper's.
      n_channels: channel unit; blocks have 1, 2, 2, 2 of it (64: the
        paper).
      rnn_units: width of both GRU layers (32: the paper).
      dropout: before the output layer (0.5).
    """
    check_arguments(dropout, num_tags=num_tags, n_channels=n_channels, rnn_units=rnn_units)
    inputs, features = PREPROCESSOR(**input_args)
    x = spectrogram_image(features)  # (batch, mel, time, 1)
    for i, (units, pool) in enumerate(BLOCKS, start=1):
        x = conv_block(x, i, units * n_channels, pool)
    # (batch, 1, T, C) at the paper's input
    x = keras.layers.MaxPooling2D((x.shape[1], 1), name="mel_max")(x)
    x = keras.layers.Reshape(x.shape[2:], name="to_sequence")(x)  # (batch, T, C)
    x = keras.layers.GRU(rnn_units, return_sequences=True, name="gru1")(x)
    x = keras.layers.GRU(rnn_units, name=EMBEDDING_LAYER)(x)  # (batch, rnn_units): last step
    return keras.Model(inputs, tags_output(x, num_tags, dropout, "dropout"), name="crnn")


FAMILY = FamilySpec(
    name="crnn", build=build_crnn, paper="Choi, Fazekas, Sandler, Cho 2017 (Won et al. 2020)",
    preprocessor=PREPROCESSOR, flags=(N_CHANNELS_FLAG, DROPOUT_FLAG),
    demo=Preset({"n_channels": 16}), tiny={"n_channels": 4, "rnn_units": 4},
    bench=(BenchCase("CRNN", {}, 16),),
)
