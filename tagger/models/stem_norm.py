"""A batch norm of a strided convolution of the model's input, trained
with its statistics computed from the input's frames (`NormedStem`), for
`tagger.models.training_graph`.

The sample-level CNNs' stem convolves the waveform with 128 filters of 3
samples at stride 3, and normalises the result: TensorFlow's fused norm
and its gradient pass over the 128-channel output (19,683 steps of each
example) several times. With the stride equal to the kernel's width the
frames p tile the input, the convolution is y = p K + b, and over the
batch mean(y) = mean(p) K + b and var(y) = diag(K^T C K), C the frames'
covariance (3 x 3 for one input channel). The norm's output is then one
convolution, of the kernel K gamma / s with the bias beta + (b - mean(y))
gamma / s (s the batch's standard deviation; its gradient by
`bias_added`): the statistics, the
normalisation and their gradients are computed on small tensors, and
the output's gradient meets the convolution's alone. The norm updates its
moving statistics as Keras does. Exact up to the order of float32 sums.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tagger.models.layer_graph import calls, only_reader
from tagger.models.training_sums import BuiltWrapper, bias_added, update_moving_moments


def stem_norm(model, conv):
    """The plain BatchNormalization that alone reads `conv` in `model`,
    where `conv` is a linear Conv1D of stride equal to its kernel's width
    ("valid", dilation and groups 1, channels last) over an input of known
    length that no weight acts on; else None."""
    if (type(conv) is not keras.layers.Conv1D or calls(model, conv) != 1
            or conv.strides != conv.kernel_size or conv.padding != "valid"
            or conv.dilation_rate != (1,) or conv.groups != 1
            or conv.data_format != "channels_last"
            or conv.activation is not keras.activations.linear
            or None in conv.input.shape[1:]):
        return None
    if keras.Model(model.inputs, conv.input).weights:  # a frozen norm's too
        return None
    norm = only_reader(model, conv)
    if (type(norm) is not keras.layers.BatchNormalization
            or norm.axis not in (-1, 2) or norm.renorm or norm.synchronized):
        return None
    return norm


class NormedStem(BuiltWrapper):
    """`(batch, samples, channels) -> (batch, samples // width, filters)`:
    `norm(conv(x))`; in training, one convolution of the kernel and bias
    that the batch's statistics, computed from x's frames, make of the
    norm's."""

    def __init__(self, layer, conv, **kwargs):
        super().__init__(layer, **kwargs)
        self.conv = conv

    def call(self, x, training=None, mask=None):
        conv, norm = self.conv, self.layer
        if not (training and norm.trainable) or mask is not None:
            return norm(conv(x), training=training, mask=mask)
        width, channels, filters = conv.kernel_size[0], x.shape[-1], conv.filters
        frames = tf.reshape(tf.cast(x[:, :x.shape[1] // width * width], tf.float32),
                            [-1, width * channels])  # (batch * steps, width * channels)
        count = tf.cast(tf.shape(frames)[0], tf.float32)
        frame_mean = tf.reduce_mean(frames, 0)
        centred = frames - frame_mean
        covariance = tf.matmul(centred, centred, transpose_a=True) / count
        kernels = tf.cast(conv.kernel, tf.float32)  # (width, channels, filters)
        kernel = tf.reshape(kernels, [width * channels, filters])
        bias = tf.cast(conv.bias, tf.float32) if conv.use_bias else tf.zeros([filters])
        mean = tf.linalg.matvec(kernel, frame_mean, transpose_a=True) + bias
        variance = tf.maximum(tf.reduce_sum(kernel * tf.matmul(covariance, kernel), 0), 0.0)
        update_moving_moments(norm, mean, variance)
        gamma = tf.cast(norm.gamma, tf.float32) if norm.scale else tf.ones([filters])
        beta = tf.cast(norm.beta, tf.float32) if norm.center else tf.zeros([filters])
        scale = gamma * tf.math.rsqrt(variance + norm.epsilon)
        dtype = norm.compute_dtype
        y = conv.convolution_op(tf.cast(x, dtype), tf.cast(kernels * scale, dtype))
        return bias_added(y, tf.cast(beta + (bias - mean) * scale, dtype))

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)
