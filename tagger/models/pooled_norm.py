"""A batch norm followed by a max pool (a ReLU between them or not),
trained as the norm of the pooled values (`NormThenMax`), for
`tagger.models.training_graph`.

The norm is an affine map per channel, y = a x + c with a = gamma / s
(s the batch's standard deviation), so a max over any window of y is
a max(x) + c where a >= 0 and a min(x) + c where a < 0: with sign =
sign(gamma), max(y) = gamma (sign max(sign x) - mean) / s + beta. A ReLU
is increasing, so it commutes with the max. The statistics are still
those of the whole x, but the normalisation, its casts and its gradient
run on the pooled tensor (the package Musicnn's norms pool 30 to 96 bins
into one); the moments' gradient is one affine map of x per channel, in
float32 one XLA kernel with the pool's. A convolution's ReLU that the
norm alone reads (the package Musicnn's) is the pooled norm's too
(`rectified`): the moments' kernel takes relu(x), the pool's max of x
is rectified after it, and x's gradient kernel applies the ReLU's mask.
Exact up to float32 rounding (ties of the max aside).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from tagger.models.layer_graph import inputs_of, only_reader
from tagger.models.training_sums import BuiltWrapper, custom_gradient, update_moving_moments

POOLS = (keras.layers.MaxPooling1D, keras.layers.MaxPooling2D)
ALL_MAX_POOLS = (*POOLS, keras.layers.MaxPooling3D, keras.layers.GlobalMaxPooling1D,
                 keras.layers.GlobalMaxPooling2D, keras.layers.GlobalMaxPooling3D)
# Values a pool's strides reduce to one, at least, for the norm to follow
# it: the musicnn families' maxima over 30 to 96 bins trained faster, the
# 4 x 4 pools of VGG's and FCN's last blocks hardly, the 2 x 2 pools of VGG,
# FCN and the short-chunk CNN slower (their norms, of 64 to 128 channels,
# are fast as they are; docs/performance.md, the "Training MFU, float32"
# and "Training bfloat16 over float32" rows).
MIN_POOLED = 16
# bfloat16 moments from sums of x and x^2 where every channel's mean is
# within this many standard deviations of zero (`moments`)
NEAR_ZERO = 2.0


def pooled_after(model, norm) -> tuple | None:
    """(the channels-last max pool of `MIN_POOLED` or more values to one,
    the plain ReLU between or None) that alone read `norm`'s output in
    `model`, or None."""
    relu, layer = None, only_reader(model, norm)
    if plain_relu(layer):
        relu, layer = layer, only_reader(model, layer)
    if (type(layer) in POOLS and layer.data_format == "channels_last"
            and math.prod(layer.strides) >= MIN_POOLED):
        return layer, relu
    return None


def rectifying(model, norm):
    """The float32 convolution whose ReLU (`activation="relu"`) alone `norm`
    reads in `model`, where TensorFlow has XLA: a pooled norm takes the
    ReLU of its input (`NormThenMax`'s `rectified`); or None."""
    conv = inputs_of(model, norm)
    conv = conv[0] if len(conv) == 1 else None
    if (conv is None or not convolution_with_relu(conv) or only_reader(model, conv) is not norm
            or conv.compute_dtype != "float32" or not tf.test.is_built_with_xla()):
        return None
    return conv


def max_after_relu(model, layer):
    """The max pool (global or not, any data format) that alone reads the
    output of `layer` in `model`, a plain ReLU or a convolution whose
    activation is ReLU, or None: the ReLU, an increasing function, can run
    after it on the pooled values."""
    relu = plain_relu(layer) or convolution_with_relu(layer)
    pool = only_reader(model, layer) if relu else None
    return pool if type(pool) in ALL_MAX_POOLS else None


def convolution_with_relu(layer) -> bool:
    """A Conv1D or Conv2D whose activation is ReLU (`activation="relu"`)."""
    return (type(layer) in (keras.layers.Conv1D, keras.layers.Conv2D)
            and layer.activation is keras.activations.relu)


def plain_relu(layer) -> bool:
    """A ReLU layer of max(x, 0): no cap, no slope below, no threshold."""
    return (type(layer) is keras.layers.ReLU and layer.max_value is None
            and float(layer.negative_slope) == 0.0 and float(layer.threshold) == 0.0)


class NormThenMax(BuiltWrapper):
    """`(batch, ..., channels) -> pool's output shape`: `pool(relu(norm(x)))`
    of a BatchNormalization, an optional ReLU and a channels-last max
    pool; in training, the norm (batch statistics of x in float32, its
    moving statistics updated as Keras does) applied to the max pool of
    sign(gamma) x, then the ReLU. `rectified`: x is a convolution's output
    before its ReLU, max(x, 0), which the norm applies (`rectifying`)."""

    def __init__(self, layer, pool, relu=None, rectified=False, **kwargs):
        super().__init__(layer, **kwargs)
        self.pool, self.relu, self.rectified = pool, relu, bool(rectified)

    def call(self, x, training=None, mask=None):
        norm, pool = self.layer, self.pool
        trained = training and norm.trainable and mask is None
        fused = trained and x.dtype == tf.float32 and tf.test.is_built_with_xla()
        if self.rectified and not fused:
            x = tf.nn.relu(x)
        if not trained:
            y = norm(x, training=training, mask=mask)
            return pool(self.relu(y) if self.relu is not None else y)
        channels = x.shape[-1]
        gamma = tf.cast(norm.gamma, tf.float32) if norm.scale else tf.ones([channels])
        beta = tf.cast(norm.beta, tf.float32) if norm.center else tf.zeros([channels])
        sign = tf.stop_gradient(tf.where(gamma < 0.0, -1.0, 1.0))
        if fused:
            pooled, mean, variance = pooled_with_moments(x, sign, pool, self.rectified)
        else:
            mean, variance = moments(x)
            signs = tf.cast(sign, x.dtype)
            pooled = tf.cast(pool(signed_by(x, signs)) * signs, tf.float32)
        update_moving_moments(norm, mean, variance)
        y = (pooled - mean) * (gamma * tf.math.rsqrt(variance + norm.epsilon)) + beta
        if self.relu is not None:
            y = tf.nn.relu(y)
        return tf.cast(y, norm.compute_dtype)

    def compute_output_shape(self, input_shape):
        return self.pool.compute_output_shape(input_shape)


def signed_by(x, signs):
    """x * signs: x itself where every sign is positive (no pass over x);
    the pool and its gradient stay outside the branch, where oneDNN runs
    them."""
    return tf.cond(tf.reduce_all(signs > 0), lambda: tf.identity(x), lambda: x * signs)


def pooled_with_moments(x, sign, pool, rectified=False):
    """float32 (batch, ..., channels) x, (channels,) sign of +-1, a
    channels-last max pool -> (sign pool(sign x), mean, variance), the
    moments over all axes but the last; `rectified`: all of x's ReLU,
    max(x, 0), not computed (the moments' kernel takes it, and a max of
    it is its max's). x's gradient, the pool's plus the moments', is one
    XLA kernel over x and the pool's gradient (one pass, where the moments'
    own gradient, their sum and the ReLU's make three)."""
    window, strides, padding = max_pool_arguments(pool)
    count = tf.cast(tf.size(x) // x.shape[-1], tf.float32)

    @custom_gradient
    def of(x, sign):
        mean, variance = shifted_moments(x, rectified)
        image = as_image(signed_by(x, sign))  # (batch, time, bins, channels)
        top = tf.nn.max_pool2d(image, window, strides, padding)
        pooled = tf.reshape(top, [-1, *pool.compute_output_shape(x.shape)[1:]]) * sign
        if rectified:  # max(relu(x)) = relu(max(x)), min(relu(x)) = relu(min(x))
            pooled = tf.nn.relu(pooled)

        def gradient(d_pooled, d_mean, d_variance):
            if rectified:
                d_pooled = tf.where(pooled > 0.0, d_pooled, 0.0)
            d_top = tf.reshape(d_pooled * sign, tf.shape(top))
            d_image = tf.raw_ops.MaxPoolGrad(orig_input=image, orig_output=top, grad=d_top,
                                             ksize=[1, *window, 1], strides=[1, *strides, 1],
                                             padding=padding)
            slope = 2.0 * d_variance / count
            return (pooled_and_moments_gradient(tf.reshape(d_image, tf.shape(x)), x, sign, slope,
                                                d_mean / count - slope * mean, rectified),
                    tf.zeros_like(sign))

        return (pooled, mean, variance), gradient

    return of(x, sign)


def max_pool_arguments(pool):
    """(window, strides, padding) of a MaxPooling1D or MaxPooling2D as
    tf.nn.max_pool2d takes them, a 1-D pool's over `as_image`'s rows."""
    window, strides = tuple(pool.pool_size), tuple(pool.strides)
    if len(window) == 1:
        window, strides = (*window, 1), (*strides, 1)
    return window, strides, pool.padding.upper()


def as_image(x):
    """(batch, time, [bins,] channels) -> (batch, time, bins or 1, channels)."""
    return x if len(x.shape) == 4 else tf.expand_dims(x, 2)


@tf.function(jit_compile=True)
def pooled_and_moments_gradient(d_signed, x, sign, slope, offset, rectified=False):
    """x's gradient from the pool's, of sign x, and the moments' (per
    channel: sign d_signed + slope x + offset; that last term where x > 0
    only, `rectified`: the moments of relu(x)), in one XLA kernel."""
    of_moments = x * slope + offset
    if rectified:
        of_moments = tf.where(x > 0.0, of_moments, 0.0)
    return d_signed * sign + of_moments


def moments(x):
    """(batch, ..., channels) -> (mean, variance) over all axes but the
    last, float32, and their gradient, k2 (x - mean) + k1 per channel.

    Where `pooled_with_moments` does not apply: float32 x, tf.nn.moments'
    and the gradient k2 x + k1'; bfloat16 x, where TensorFlow's bfloat16
    arithmetic costs more than its reductions: sums of x and x^2
    (`channel_sums`), the gradient k2 x + k1' in bfloat16, while every
    channel's mean is within `NEAR_ZERO` standard deviations of zero (ReLU
    outputs; the variance is then within about 1e-3 of Keras' float32 one,
    less than the output's own bfloat16 rounding); else both as Keras
    computes them, in float32."""
    @custom_gradient
    def of(x):
        count = tf.cast(tf.size(x) // x.shape[-1], tf.float32)
        axes = list(range(len(x.shape) - 1))
        near = None  # the affine gradient is exact enough
        if x.dtype == tf.bfloat16:
            mean = channel_sums(x) / count
            variance = tf.maximum(channel_sums(tf.square(x)) / count - mean * mean, 0.0)
            near = tf.reduce_all(mean * mean <= NEAR_ZERO ** 2 * variance)
            mean, variance = tf.cond(near, lambda: (mean, variance),
                                     lambda: tf.nn.moments(tf.cast(x, tf.float32), axes))
        else:
            mean, variance = tf.nn.moments(tf.cast(x, tf.float32), axes)

        def gradient(d_mean, d_variance):
            slope = 2.0 * d_variance / count

            def affine():
                return x * tf.cast(slope, x.dtype) + tf.cast(d_mean / count - slope * mean,
                                                             x.dtype)

            def centred():
                return tf.cast((tf.cast(x, tf.float32) - mean) * slope + d_mean / count, x.dtype)

            return affine() if near is None else tf.cond(near, affine, centred)

        return (mean, variance), gradient

    return of(x)


@tf.function(jit_compile=True)
def shifted_moments(x, rectified=False):
    """(rows..., channels) float32 -> (mean, variance) over all axes but
    the last (of relu(x), `rectified`): one XLA kernel, one pass over x,
    summing x - s and (x - s)^2 for s the first row (a value of each
    channel's data, so no cancellation where the mean is far from zero):
    faster than tf.nn.moments' passes over the musicnn families'
    activations, and nearer float64's variance than its float32 sums over
    millions of values (docs/performance.md, the "Training MFU, float32"
    rows)."""
    rows = tf.reshape(x, [-1, x.shape[-1]])
    if rectified:
        rows = tf.nn.relu(rows)
    shift = tf.stop_gradient(rows[0])
    centred = rows - shift
    count = tf.cast(tf.shape(rows)[0], tf.float32)
    mean = tf.reduce_sum(centred, 0) / count
    variance = tf.maximum(tf.reduce_sum(tf.square(centred), 0) / count - tf.square(mean), 0.0)
    return mean + shift, variance


def channel_sums(x):
    """(batch, ..., rows, channels) -> (channels,) float32: the sums of
    each row (bfloat16 ones accumulate in float32 and round once), then of
    those in float32."""
    rows = tf.cast(tf.reduce_sum(x, -2), tf.float32)
    return tf.reduce_sum(rows, list(range(len(rows.shape) - 1)))
