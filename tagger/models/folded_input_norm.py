"""The spectrogram's batch norm folded into the convolutions that read it,
for the training step (`tagger.models.training_graph`).

The spectrogram taggers (musicnn, the self-attention tagger, the
transformer's front end, VGG, the multi-scale CNN) normalise their
one-channel log-mel image with a BatchNormalization, y = gamma * x^ + beta,
and convolve it. x^ (the log-mel, standardised) depends on no weight, so
the only gradients that reach the norm are those of gamma and beta; yet
TensorFlow computes every first convolution's full input gradient (and
its stacked taps' and paddings') to get them: a large part of the
package Musicnn's step (docs/performance.md, the "Training MFU, float32"
rows).
A convolution is linear, so with `mask` the image of ones passed through
the same paddings and poolings,

    conv(y, K) = conv(x^, gamma K) + conv(mask, beta K),

where the second term is one example wide (the same for every example of
the batch), and so is the convolution's bias, added with it at once.
The gradients of gamma and beta come through the kernel products, and no
input gradient is computed. The norm still updates its
moving statistics as Keras does. Exact up to the order of float32 sums.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tagger.models.layer_graph import calls, readers
from tagger.models.training_sums import BuiltWrapper, bias_added, update_moving_moments

# Layers that are linear in their input, act on each example alone and
# keep a constant a constant: the image and its mask pass through them.
PASS_THROUGH = (keras.layers.ZeroPadding1D, keras.layers.ZeroPadding2D,
                keras.layers.AveragePooling1D, keras.layers.AveragePooling2D,
                keras.layers.Reshape)


def folds(model, norm) -> set | None:
    """The ids of the layers between `norm` and the convolutions it folds
    into, the convolutions' included: when `norm` is a one-channel
    BatchNormalization of an input no weight acts on, read only through
    `PASS_THROUGH` layers by one-group Conv1D/Conv2D layers ("valid" or
    "same" padding, channels last); else None."""
    if (type(norm) is not keras.layers.BatchNormalization or calls(model, norm) != 1
            or norm.input.shape[-1] != 1 or norm.axis not in (-1, len(norm.input.shape) - 1)
            or norm.renorm or norm.synchronized or None in norm.input.shape[1:]):
        return None
    if keras.Model(model.inputs, norm.input).trainable_weights:
        return None
    found, todo = set(), [norm]
    while todo:
        for layer in readers(model, todo.pop()):
            if calls(model, layer) != 1:
                return None
            found.add(id(layer))
            if isinstance(layer, PASS_THROUGH):
                todo.append(layer)
            elif not convolution(layer):
                return None
    return found or None


def convolution(layer) -> bool:
    return (type(layer) in (keras.layers.Conv1D, keras.layers.Conv2D) and layer.groups == 1
            and layer.padding in ("valid", "same") and layer.data_format == "channels_last")


class NormalizedImage(BuiltWrapper):
    """`(batch, ..., 1) -> [x^ (batch, ..., 1), mask (1, ..., 1)]`: the
    wrapped BatchNormalization's input standardised (by the batch's
    moments in training, updating the moving ones as Keras does; by the
    moving ones otherwise), without gradient, and an example of ones."""

    def call(self, x, training=None, mask=None):
        norm = self.layer
        x32 = tf.stop_gradient(tf.cast(x, tf.float32))
        if training and norm.trainable:
            mean, variance = tf.nn.moments(x32, list(range(len(x.shape) - 1)))
            update_moving_moments(norm, mean, variance)
        else:
            mean = tf.cast(norm.moving_mean, tf.float32)
            variance = tf.cast(norm.moving_variance, tf.float32)
        standard = (x32 - mean) * tf.math.rsqrt(variance + norm.epsilon)
        dtype = norm.compute_dtype
        return [tf.cast(standard, dtype), tf.ones_like(standard[:1], dtype)]

    def compute_output_shape(self, input_shape):
        return [input_shape, (1, *input_shape[1:])]


class FoldedNormConv(BuiltWrapper):
    """`[x^, mask] -> conv(y)` of the wrapped convolution, y the folded
    norm's output, computed as the module docstring says; `convolve(x,
    kernel)` is the convolution without bias (the training form's)."""

    def __init__(self, layer, norm, convolve, **kwargs):
        super().__init__(layer, **kwargs)
        self.norm, self.convolve = norm, convolve

    def call(self, inputs):
        standard, mask = inputs
        conv, norm = self.layer, self.norm
        kernel = tf.cast(conv.kernel, tf.float32)
        gamma = tf.cast(norm.gamma, tf.float32) if norm.scale else 1.0
        y = self.convolve(standard, tf.cast(gamma * kernel, standard.dtype))
        if norm.center:  # beta's term and the bias, one example wide: one addition
            beta = tf.cast(norm.beta, tf.float32)
            offset = tf.cast(self.convolve(mask, tf.cast(beta * kernel, mask.dtype)), tf.float32)
            if conv.use_bias:
                offset += tf.cast(conv.bias, tf.float32)
            y = y + tf.cast(offset, y.dtype)
        elif conv.use_bias:
            y = bias_added(y, tf.cast(conv.bias, y.dtype))
        return conv.activation(y) if conv.activation is not None else y

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape[0])
