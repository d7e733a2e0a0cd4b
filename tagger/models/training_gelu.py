"""The exact GELU of the Transformer encoders' feed-forward blocks, for
TensorFlow's training form (`tagger.models.training_graph`).

TensorFlow computes `x * 0.5 * erfc(-x / sqrt(2))` as five element-wise
ops and its gradient as nine, each a pass over the block's hidden values
(batch x tokens x 4 x width): the self-attention tagger's largest cost
after its matrix products (docs/performance.md, the "Training MFU,
float32" rows). Here the activation and its gradient are each one kernel
compiled by XLA, one pass over the values; the projection before it stays
TensorFlow's matrix product. The same function to float32 rounding.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from tagger.layers.transformer_encoder_layer import TransformerEncoderLayer
from tagger.models.training_sums import BuiltWrapper, custom_gradient

HALF_SQRT_2 = 1.0 / math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@tf.function(jit_compile=True)
def _gelu(x):
    return x * (0.5 * tf.math.erfc(-x * HALF_SQRT_2))


@tf.function(jit_compile=True)
def _gelu_gradient(x, upstream):
    cdf = 0.5 * tf.math.erfc(-x * HALF_SQRT_2)
    return upstream * (cdf + x * tf.exp(-0.5 * x * x) * INV_SQRT_2PI)


def compiled_gelu(x):
    """The exact GELU of `x` (any shape), x * Phi(x), and its gradient
    (Phi(x) + x * phi(x)), each one XLA kernel."""
    @custom_gradient
    def gelu(v):
        return _gelu(v), lambda upstream: _gelu_gradient(v, upstream)

    return gelu(x)


def exact_gelu_encoder(layer) -> bool:
    """A TransformerEncoderLayer whose feed-forward activation is Keras's
    exact GELU (BERT's and the Music Tagging Transformer's), where this
    TensorFlow has XLA's JIT (`compiled_gelu` needs it)."""
    return (type(layer) is TransformerEncoderLayer and layer.built and tf.test.is_built_with_xla()
            and layer.intermediate.activation is keras.activations.gelu)


class TrainingEncoder(BuiltWrapper):
    """`(batch, tokens, width) -> (outputs, attention weights)`: the wrapped
    TransformerEncoderLayer, its feed-forward GELU `compiled_gelu`."""

    def call(self, inputs, attention_override=None, training=None):
        dense = self.layer.intermediate

        def intermediate(x):
            h = tf.matmul(tf.reshape(x, [-1, x.shape[-1]]), tf.cast(dense.kernel, x.dtype))
            if dense.use_bias:
                h = tf.nn.bias_add(h, tf.cast(dense.bias, h.dtype))
            h = tf.reshape(h, tf.concat([tf.shape(x)[:-1], [dense.units]], 0))
            return compiled_gelu(h)

        return self.layer.block(inputs, intermediate, attention_override, training)
