"""A Keras model's inference call compiled by JAX, for the JAX backend."""

from __future__ import annotations

import numpy as np


def jitted_call(model, put=None):
    """`call(x)`: `model`'s outputs (its structure: one array, or a dict)
    as float32 NumPy for NumPy input `x`, the model's stateless call
    compiled by JAX once per input shape; `put(x)` places `x` on the
    devices (default: JAX's default device)."""
    import jax
    import keras

    def forward(trainable, non_trainable, x):
        outputs = model.stateless_call(trainable, non_trainable, x, training=False)[0]
        return keras.tree.map_structure(lambda y: keras.ops.cast(y, "float32"), outputs)

    forward = jax.jit(forward)

    def call(x):
        outputs = forward([v.value for v in model.trainable_variables],
                          [v.value for v in model.non_trainable_variables],
                          put(x) if put else x)
        return keras.tree.map_structure(np.asarray, jax.device_get(outputs))

    return call
