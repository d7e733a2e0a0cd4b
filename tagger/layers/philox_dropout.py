"""Dropout whose mask is drawn with the Philox generator by name.

keras.layers.Dropout draws its mask with `tf.nn.experimental.stateless_dropout`,
whose generator is left to the platform ("auto_select"). Under XLA on a CPU
that choice lowers to slow code: a training step of the ReSE+multi
sample-level CNN (dropout inside each of its nine residual blocks) ran far
slower than without XLA, while the same step with its mask drawn by Philox
compiles to vectorised code and runs at least as fast as without XLA
(docs/performance.md, "Backend, XLA and precision for training"). Each
element takes 16 of Philox's random bits,
half the draws of a uniform float each: a faster training step for the
self-attention tagger (docs/performance.md, the row "Training MFU, float32:
self_attention").
Otherwise this is keras.layers.Dropout: the same rate (to 2^-16),
scaling by 1 / (1 - rate), seed generator and `noise_shape`; under
another Keras backend (JAX, PyTorch) it is keras.layers.Dropout itself.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="tagger")
class PhiloxDropout(keras.layers.Dropout):
    """`(batch, ...) -> (batch, ...)`: in training, each element (or each
    `noise_shape` slice) is zeroed with probability `rate` and the rest are
    scaled by 1 / (1 - rate); the identity otherwise."""

    def call(self, inputs, training=False):
        if keras.backend.backend() != "tensorflow":
            return super().call(inputs, training=training)
        import tensorflow as tf

        if not training or self.rate <= 0:
            return inputs
        if self.rate >= 1:
            return tf.zeros_like(inputs)
        shape = tf.shape(inputs)
        if self.noise_shape is not None:
            shape = tf.stack([shape[i] if size is None else size
                              for i, size in enumerate(self.noise_shape)])
        seed = tf.cast(tf.math.floormod(self.seed_generator.next(), tf.int32.max - 1),
                       tf.int32)
        return inputs * tf.reshape(keep_mask(shape, seed, self.rate, inputs.dtype), shape)


def keep_mask(shape, seed, rate: float, dtype):
    """(prod(shape),) of 1 / (1 - rate) with probability 1 - rate, else 0,
    drawn by Philox 16 random bits an element (half the draws of one
    uniform float each): `rate` rounded to a multiple of 2^-16, at most
    1 - 2^-16."""
    import tensorflow as tf

    count = tf.reduce_prod(shape)
    words = tf.random.stateless_uniform([(count + 1) // 2], seed, minval=None, maxval=None,
                                        dtype=tf.uint32, alg="philox")
    halves = tf.reshape(tf.bitcast(words, tf.int16), [-1])[:count]  # uniform on int16
    threshold = min(round(rate * 2**16), 2**16 - 1) - 2**15  # some kept: 1 / 2^16 at least
    scale = tf.constant(1.0 / (1.0 - rate), dtype)
    return tf.where(halves >= threshold, scale, tf.zeros([], dtype))
