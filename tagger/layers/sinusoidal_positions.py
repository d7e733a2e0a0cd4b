"""Adds fixed sinusoidal position encodings to a sequence."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tagger")
class SinusoidalPositions(keras.layers.Layer):
    """`x + P[:length]` with P[pos, j] = sin(pos / base^(2 floor(j/2) / dim))
    for even j and cos(...) for odd j (Vaswani et al. 2017). No weights.

    `zero_first=True` leaves the first step unchanged (P[0] = 0), as in the
    self-attention tagger of Won et al. 2019, whose position 0 is the
    [CLS] token.
    """

    def __init__(self, zero_first=True, base=10000.0, **kwargs):
        super().__init__(**kwargs)
        self.zero_first = bool(zero_first)
        self.base = float(base)

    def call(self, inputs):
        length = ops.shape(inputs)[1]
        dim = inputs.shape[-1]
        position = ops.cast(ops.arange(length), "float32")[:, None]
        j = ops.arange(dim)
        exponent = ops.cast(2 * (j // 2), "float32") / float(dim)
        angle = position / ops.power(self.base, exponent)[None, :]
        table = ops.where((j % 2 == 0)[None, :], ops.sin(angle), ops.cos(angle))
        if self.zero_first:
            table = table * ops.cast(position > 0, "float32")
        return inputs + ops.cast(table, inputs.dtype)[None]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return dict(super().get_config(), zero_first=self.zero_first, base=self.base)
