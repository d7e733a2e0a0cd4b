"""The VGG-like baseline of Pons and Serra's `musicnn` package
(`musicnn/models.py`, `vgg`, version 0.1.0; the checkpoints `MTT_vgg` and
`MSD_vgg`), on the package's features (`pons_musicnn.LOGMEL`, 187 frames
x 96 bins, the same windows as its Musicnn).

- `input_bn`: batch norm of the image `(time, mel, 1)`.
- five blocks of `filters` (128): conv 3x3 'same' with ReLU (`conv{i}`),
  batch norm (`conv{i}_bn`), max-pool (`pool{i}`, valid): (4, 1) stride
  (2, 2), then (2, 2) stride 2 three times, then (4, 4) stride 4, in
  (time, mel); dropout 0.25 after the first four. At the package's input:
  187 x 96 -> 92 x 48 -> 46 x 24 -> 23 x 12 -> 11 x 6 -> 2 x 1. A pooling
  larger than what is left (short windows, few bins) pools all of it; at
  the package's input none is.
- `embedding`: the flattened last pooling (2 x 1 x 128 = 256 values, time
  first as the package flattens), dropout 0.5, `tags` (sigmoid).

Batch norms have TensorFlow 1's defaults (epsilon 1e-3, momentum 0.99).
Counts at 50 tags (tests assert them; equal to the checkpoints' variables
without the optimiser's): 605,748 trainable, 1,282 batch-norm statistics.

Layer names: waveform or log_mel (input), log_mel (raw input), to_image,
input_bn, conv{i}, conv{i}_bn, pool{i} (i = 1..5), pool{i}_dropout (i =
1..4), embedding, dropout, tags.
"""

from __future__ import annotations

import dataclasses

from tagger.models.family_spec import DROPOUT_FLAG, N_CHANNELS_FLAG, BenchCase, FamilySpec, Preset
from tagger.models.lazy import keras, layers
from tagger.models.parts import check_arguments, tags_output
from tagger.models.pons_musicnn import PREPROCESSOR, time_mel_image
from tagger.models.spectrogram_input import EMBEDDING_LAYER

FILTERS = 128
# (pool size, strides) per block, in (time, mel)
POOLS = (((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)),
         ((4, 4), (4, 4)))
CONV_DROPOUT, DROPOUT = 0.25, 0.5


def build_pons_vgg(num_tags=50, *, filters=FILTERS, dropout=DROPOUT,
                   **input_args) -> keras.Model:
    """Builds the musicnn package's VGG-like tagger.

    Args as `build_pons_musicnn`; `filters`: channels of every convolution
    (128, the package's); `dropout`: before `tags` (0.5; 0.25 between the
    blocks, fixed).
    """
    check_arguments(dropout, num_tags=num_tags, filters=filters)
    inputs, features = PREPROCESSOR(**input_args)  # the package's Musicnn's input
    x = time_mel_image(features)  # (batch, time, mel, 1)
    for i, (pool, strides) in enumerate(POOLS, start=1):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu",
                                name=f"conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"conv{i}_bn")(x)
        pool = tuple(min(p, size) for p, size in zip(pool, x.shape[1:3]))
        x = keras.layers.MaxPooling2D(pool, strides, name=f"pool{i}")(x)
        if i < len(POOLS):
            x = layers.PhiloxDropout(CONV_DROPOUT, name=f"pool{i}_dropout")(x)
    x = keras.layers.Flatten(name=EMBEDDING_LAYER)(x)  # (batch, time' * mel' * filters)
    return keras.Model(inputs, tags_output(x, num_tags, dropout, "dropout"), name="pons_vgg")


FAMILY = FamilySpec(
    name="pons_vgg", build=build_pons_vgg,
    paper="Pons and Serra 2019 (the musicnn package's VGG-like baseline)",
    preprocessor=PREPROCESSOR,
    flags=(dataclasses.replace(N_CHANNELS_FLAG, argument="filters", help="filters"),
           DROPOUT_FLAG),
    demo=Preset({"filters": 32}), tiny={"filters": 4},
    bench=(BenchCase("VGG (the musicnn package's)", {}, 16),),
)
