"""FCN (Choi, Fazekas, Sandler, ISMIR 2016) as Won, Ferraro, Bogdanov,
Serra (SMC 2020) trained it.

"Automatic tagging using deep convolutional neural networks", a fully
convolutional tagger of 29 s excerpts. Reference code:
minzwon/sota-music-tagging-models, `training/model.py` (FCN) and
`training/modules.py` (Conv_2d); input length from `training/main.py`
(29 * 16000 = 464000 samples).

- front end: 16 kHz audio, torchaudio's MelSpectrogram (n_fft 512, hop
  256, periodic Hann, centred with reflect padding, power 2, HTK mel scale,
  no norm, 0-8000 Hz, 96 bins) and AmplitudeToDB (10 log10(max(x, 1e-10)),
  no top_db): `LOGMEL` at 16000 Hz; `input_bn`, a batch norm of the
  one-channel image `(mel, time, 1)`. 464000 samples give 1813 frames.
- five blocks (the short-chunk CNN's conv block: conv 3x3 'same' -> BN ->
  ReLU -> max-pool), channels `n_channels` x (1, 2, 2, 2, 1) = 64, 128,
  128, 128, 64 and poolings (mel, time) (2, 4), (2, 4), (2, 4), (3, 5),
  (4, 4): 96 x 1813 -> 48 x 453 -> 24 x 113 -> 12 x 28 -> 4 x 5 -> 1 x 1.
  A pooling larger than what is left pools all of it (shorter windows,
  fewer mel bins); at the paper's input none is clamped.
- `embedding`: the original flattens the 1 x 1 x 64 map; a max over what
  is left computes that and takes any input size. `dropout` (0.5), `tags`
  (dense, sigmoid).

Counts at 50 tags and n_channels 64 (tests assert them; equal to the
original's): 447,732 trainable, 1,026 batch-norm statistics.

Layer names: as `tagger.models.short_chunk` up to `input_bn`;
block{i}_conv, block{i}_bn, block{i}_relu, block{i}_pool for i = 1..5
(the original's `layer1..5`); embedding, dropout, tags.
"""

from __future__ import annotations

import dataclasses

from tagger.models.family_spec import DROPOUT_FLAG, N_CHANNELS_FLAG, BenchCase, FamilySpec, Preset
from tagger.models.lazy import keras
from tagger.models.parts import check_arguments, tags_output
from tagger.models.short_chunk import LOGMEL as SHORT_CHUNK_LOGMEL
from tagger.models.short_chunk import SAMPLE_RATE, conv_block, spectrogram_image
from tagger.models.spectrogram_input import EMBEDDING_LAYER, Preprocessor

LOGMEL = dataclasses.replace(SHORT_CHUNK_LOGMEL, n_mels=96)  # the same torchaudio front end
# one record segment of 29 s at 16 kHz (464000 samples), the paper's input
PREPROCESSOR = Preprocessor(LOGMEL, segment_length=29 * SAMPLE_RATE, sample_rate=SAMPLE_RATE)
N_CHANNELS = 64
DROPOUT = 0.5
# One row per block, input side first: (channels in units of n_channels,
# max-pool (mel, time)).
BLOCKS = (
    (1, (2, 4)),
    (2, (2, 4)),
    (2, (2, 4)),
    (2, (3, 5)),
    (1, (4, 4)),
)


def build_fcn(num_tags=50, *, n_channels=N_CHANNELS, dropout=DROPOUT,
              **input_args) -> keras.Model:
    """Builds the FCN.

    Args:
      num_tags: outputs of the `tags` layer (sigmoid, float32).
      input_args: the window and front end, as `PREPROCESSOR` (a
        `Preprocessor`) takes them; left out, the paper's.
      n_channels: channel unit; blocks have 1, 2, 2, 2, 1 of it (64: the
        paper).
      dropout: before the output layer (0.5).
    """
    check_arguments(dropout, n_channels=n_channels, num_tags=num_tags)
    inputs, features = PREPROCESSOR(**input_args)
    x = spectrogram_image(features)  # (batch, mel, time, 1)
    for i, (units, pool) in enumerate(BLOCKS, start=1):
        x = conv_block(x, i, units * n_channels, pool)
    # (batch, 1, 1, C) at the paper's input
    x = keras.layers.GlobalMaxPooling2D(name=EMBEDDING_LAYER)(x)  # (batch, C)
    return keras.Model(inputs, tags_output(x, num_tags, dropout, "dropout"), name="fcn")


FAMILY = FamilySpec(
    name="fcn", build=build_fcn, paper="Choi, Fazekas, Sandler 2016 (Won et al. 2020)",
    preprocessor=PREPROCESSOR, flags=(N_CHANNELS_FLAG, DROPOUT_FLAG),
    demo=Preset({"n_channels": 16}, lr=3e-3, epochs=12), tiny={"n_channels": 4},
    bench=(BenchCase("FCN", {}, 16),),
)
