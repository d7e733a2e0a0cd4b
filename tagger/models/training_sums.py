"""What the training forms share (`tagger.models.training_graph`,
`tagger.models.xla_training_graph`, `tagger.models.folded_input_norm`,
`tagger.models.pooled_norm`): Keras' update of a norm's moving moments
and the build of a wrapped layer, in keras.ops for either backend; and
TensorFlow's own: a bias added with its gradient summed as a matrix
product, the name scope of a custom gradient's ops (TensorFlow imported
only by them).
"""

from __future__ import annotations

import keras
from keras import ops


def bias_added(y, bias):
    """`y + bias` over the last axis, the bias's gradient the product of a
    row of ones and the upstream gradient's rows. TensorFlow's gradient
    of a convolution's bias (BiasAddGrad) sums bfloat16 in bfloat16:
    slower than the product over the sample-level CNN's first block
    (452709 rows of 128 channels), and far off the exact sum there; in
    float32 slower too (docs/performance.md, the "Training bfloat16 over
    float32" and "Training MFU, float32" rows)."""
    import tensorflow as tf

    @tf.custom_gradient
    def add(y, bias):
        @in_backward_scope
        def gradient(upstream):
            rows = tf.reshape(upstream, [-1, upstream.shape[-1]])
            ones = tf.ones([1, tf.shape(rows)[0]], rows.dtype)
            return upstream, tf.reshape(tf.matmul(ones, rows), [-1])

        return tf.nn.bias_add(y, bias), gradient

    return add(y, bias)


def update_moving_moments(norm, mean, variance):
    """Keras' update of a BatchNormalization's moving mean and variance by
    a batch's `mean` and biased `variance` (float32)."""
    momentum = norm.momentum
    norm.moving_mean.assign(ops.cast(norm.moving_mean, "float32") * momentum
                            + ops.stop_gradient(mean) * (1.0 - momentum))
    norm.moving_variance.assign(ops.cast(norm.moving_variance, "float32") * momentum
                                + ops.stop_gradient(variance) * (1.0 - momentum))


def in_backward_scope(gradient):
    """`gradient`, a custom gradient's function (made in the forward pass),
    with its ops named under the forward pass's name scope prefixed by
    `gradient_tape/`, as TensorFlow names the gradients it derives itself:
    a profile (bench/profile_training.py) then counts them as the
    backward pass of their layer, not as ops of no layer."""
    import tensorflow as tf

    scope = tf.get_current_name_scope()

    def scoped(*upstream):
        with tf.name_scope(f"gradient_tape/{scope}/" if scope else "gradient_tape/"):
            return gradient(*upstream)

    return scoped


class BuiltWrapper(keras.layers.Wrapper):
    """A Wrapper that builds its layer on its (first) input's shape, for
    the training forms' layers."""

    def build(self, input_shape):
        if not self.layer.built:
            first = input_shape[0] if isinstance(input_shape, list) else input_shape
            self.layer.build(first)
        self.built = True
