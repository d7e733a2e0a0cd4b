"""Adds a learned position embedding to a sequence."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tagger")
class LearnedPositions(keras.layers.Layer):
    """`x + E[:length]` with a trainable table E of `(max_length, dim)`.

    The Music Tagging Transformer (Won et al. 2021) keeps attention_max_len
    + 1 rows (the +1 for the [CLS] token) drawn from a standard normal.
    """

    def __init__(self, max_length, initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.max_length = int(max_length)
        self.initializer = keras.initializers.get(
            initializer or keras.initializers.RandomNormal(stddev=1.0))

    def build(self, input_shape):
        length = input_shape[1]
        if length is not None and length > self.max_length:
            raise ValueError(
                f"sequence of {length} steps is longer than the position table "
                f"({self.max_length} rows); use a shorter input or a larger "
                "max_length")
        self.embeddings = self.add_weight(
            name="embeddings", shape=(self.max_length, input_shape[-1]),
            initializer=self.initializer)
        self.built = True

    def call(self, inputs):
        length = ops.shape(inputs)[1]
        table = ops.cast(self.embeddings[:length], inputs.dtype)
        return inputs + table[None]

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return dict(super().get_config(), max_length=self.max_length,
                    initializer=keras.initializers.serialize(self.initializer))
