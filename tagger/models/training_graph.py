"""The form of a model its training step runs: the same layers and
variables, computed by kernels that train faster on a CPU.

- A Conv2D of one input channel and a kernel taller than one row
  (musicnn's timbral and temporal filters, VGG's first convolution) trains
  slowly: its filter and input gradients have one channel to work on.
  Computed as `InferenceConv2D`'s taps form (the input's time shifts
  stacked as channels), the forward and backward passes of musicnn's
  timbral filters run about four times faster. Kernels of `MIN_ROWS` rows
  or more, and those of no more columns than rows (`stacked_in_training`):
  VGG's and the
  transformer's first 3 x 3 convolutions trained 1.08x and 1.10x faster
  stacked, the multi-scale CNN's wide 3 x 7 and 3 x 5 ones slower.
- A BatchNormalization in training mode is, in Keras, a chain of
  element-wise ops (moments, then the normalisation) and as many again
  for its gradient, each a pass over the activations; `FusedBatchNorm`
  computes it with TensorFlow's fused kernel on the input centred on the
  batch's first example (the kernel's one-pass variance is exact on
  centred values only): about three times faster on the sample-level
  CNNs' first blocks. It updates the moving mean and variance as Keras
  does (the batch's biased variance).
- The stacked taps are at most `TRAINING_TAPS` shifts, and the gradient
  of their stacking is the sum of the shifted upstream channels, each
  padded back to the input's length (`stacked_shifts`): TensorFlow's own
  gradient of each slice writes a zero tensor of the input's size and
  scatters into it, five times slower over the self-attention tagger's
  front end.

Each form is exact up to the order of the float32 sums; the layers, their
variables and the saved model stay those of the model.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tagger.layers import inference_conv2d
from tagger.layers.inference_conv2d import InferenceConv2D

MIN_ROWS = 4  # kernel rows stacked as channels whatever the columns
# Shifts stacked at most in training (inference: InferenceConv2D's 16): the
# package Musicnn's 128-, 64- and 32-frame temporal filters trained 1.1x
# faster as 8 shifts at dilation 8, the self-attention tagger's front end
# 1.15x; 32 or more were slower.
TRAINING_TAPS = 8
# cuDNN's fused batch norm takes no smaller epsilon (TensorFlow raises it
# to this); PyTorch-converted norms (1e-5) stay Keras' where a GPU is.
CUDNN_MIN_EPSILON = 1.001e-5


def training_model(model):
    """`model`, or a functional model of the same layers and variables in
    the faster forms of the module docstring; it computes the same function."""
    if isinstance(model, keras.Sequential) or not hasattr(model, "_operations"):
        return model
    taps = {id(layer) for layer in model.layers
            if type(layer) is keras.layers.Conv2D and len(layer._inbound_nodes) == 1
            and inference_conv2d.one_channel_stride_one(layer, layer.input.shape)
            and stacked_in_training(layer.kernel_size)}
    norms = {id(layer) for layer in model.layers if fusable(layer)}
    if not taps and not norms:
        return model

    def call(layer, *args, **kwargs):
        if id(layer) in taps:
            return TrainingTapsConv2D(layer, name=f"{layer.name}_taps",
                                      max_taps=TRAINING_TAPS, dtype=layer.dtype_policy)(*args)
        if id(layer) in norms:
            return FusedBatchNorm(layer, name=f"{layer.name}_fused",
                                  dtype=layer.dtype_policy)(*args, **kwargs)
        return layer(*args, **kwargs)

    return keras.models.clone_model(model, clone_function=lambda layer: layer,
                                    call_function=call)


def stacked_in_training(kernel_size) -> bool:
    """Whether a one-channel Conv2D of `kernel_size` (rows, columns) trains
    as taps: `MIN_ROWS` rows or more, or no more columns than rows (3 x 3,
    3 x 1)."""
    rows, columns = kernel_size
    return rows >= MIN_ROWS or columns <= rows


def stacked_shifts(x, taps: int, length: int):
    """`inference_conv2d.stacked_shifts` (b, h, w, 1) -> (b, length, w,
    taps), its gradient the sum of each channel of the upstream gradient
    padded back to rows i .. i + length - 1 of (b, h, w, 1)."""
    @tf.custom_gradient
    def stacked(v):
        def gradient(upstream):
            return tf.add_n([tf.pad(upstream[..., i:i + 1],
                                    [[0, 0], [i, taps - 1 - i], [0, 0], [0, 0]])
                             for i in range(taps)])

        return inference_conv2d.stacked_shifts(v, taps, length), gradient

    return stacked(x)


class TrainingTapsConv2D(InferenceConv2D):
    """InferenceConv2D's taps form, stacked by `stacked_shifts`."""

    stack_shifts = staticmethod(stacked_shifts)


def fusable(layer) -> bool:
    """A plain BatchNormalization over the last axis of a 2-D to 4-D input
    (no renorm, no cross-replica moments), with an epsilon the devices'
    fused kernels take."""
    if type(layer) is not keras.layers.BatchNormalization or len(layer._inbound_nodes) != 1:
        return False
    rank = len(layer.input.shape)
    small_epsilon = layer.epsilon < CUDNN_MIN_EPSILON and tf.config.list_physical_devices("GPU")
    return (2 <= rank <= 4 and layer.axis in (-1, rank - 1) and not layer.renorm
            and not layer.synchronized and not small_epsilon)


class FusedBatchNorm(keras.layers.Wrapper):
    """`(batch, ..., channels) -> the same shape`: the wrapped
    BatchNormalization; in training, computed by the fused kernel
    (float32, as Keras computes it) and its moving statistics updated."""

    def build(self, input_shape):
        if not self.layer.built:
            self.layer.build(input_shape)
        self.built = True

    def call(self, x, training=None, mask=None):
        norm = self.layer
        if not (training and norm.trainable) or mask is not None:
            return norm(x, training=training, mask=mask)
        channels = x.shape[-1]
        x32 = tf.cast(x, tf.float32)
        shape = tf.shape(x32)
        axes = list(range(len(x.shape) - 1))
        shift = tf.stop_gradient(tf.reduce_mean(x32[:1], axes))  # the kernel's one-pass
        image = x32 - shift  # variance is exact on centred values only
        while len(image.shape) < 4:  # (batch, [time,] channels) -> NHWC
            image = tf.expand_dims(image, -2)
        gamma = tf.cast(norm.gamma, tf.float32) if norm.scale else tf.ones([channels])
        beta = tf.cast(norm.beta, tf.float32) if norm.center else tf.zeros([channels])
        none = tf.constant([], tf.float32)
        y, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=image, scale=gamma, offset=beta, mean=none, variance=none,
            epsilon=norm.epsilon, exponential_avg_factor=1.0, data_format="NHWC",
            is_training=True)
        count = tf.cast(tf.size(x32) // channels, tf.float32)
        biased = variance * (count - 1.0) / tf.maximum(count, 1.0)  # the kernel's is not
        momentum = norm.momentum
        norm.moving_mean.assign(tf.cast(norm.moving_mean, tf.float32) * momentum
                                + tf.stop_gradient(mean + shift) * (1.0 - momentum))
        norm.moving_variance.assign(tf.cast(norm.moving_variance, tf.float32) * momentum
                                    + tf.stop_gradient(biased) * (1.0 - momentum))
        return tf.cast(tf.reshape(y, shape), norm.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape
