"""Prepends a [CLS] token to a sequence."""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="tagger")
class ClsToken(keras.layers.Layer):
    """`(batch, length, dim)` -> `(batch, length + 1, dim)`, token first.

    The token is one weight vector of size `dim` drawn from `initializer`.
    Built with `trainable=False` it stays a fixed vector, as in Won et al.
    2019 (a constant uniform [0, 1) draw, not a parameter); trainable it is
    the learned token of the Music Tagging Transformer.
    """

    def __init__(self, initializer="random_normal", **kwargs):
        super().__init__(**kwargs)
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        self.token = self.add_weight(
            name="token", shape=(input_shape[-1],), initializer=self.initializer)
        self.built = True

    def call(self, inputs):
        token = ops.cast(self.token, inputs.dtype)
        token = ops.broadcast_to(
            token[None, None, :], (ops.shape(inputs)[0], 1, ops.shape(inputs)[2]))
        return ops.concatenate([token, inputs], axis=1)

    def compute_output_shape(self, input_shape):
        length = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], length, input_shape[2])

    def get_config(self):
        return dict(super().get_config(),
                    initializer=keras.initializers.serialize(self.initializer))
