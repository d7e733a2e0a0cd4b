"""Picks one time step of a sequence (the [CLS] token by default)."""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="tagger")
class SelectToken(keras.layers.Layer):
    """`(batch, length, dim)` -> `(batch, dim)`: the step at `index`."""

    def __init__(self, index=0, **kwargs):
        super().__init__(**kwargs)
        self.index = int(index)

    def call(self, inputs):
        return inputs[:, self.index]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        return dict(super().get_config(), index=self.index)
