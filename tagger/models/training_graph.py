"""The form of a model its training step runs: the same layers and
variables, computed by kernels that train faster on a CPU.

- A Conv2D of one input channel and a kernel taller than one row
  (musicnn's timbral and temporal filters, VGG's first convolution) trains
  slowly: its filter and input gradients have one channel to work on.
  Computed as `InferenceConv2D`'s taps form (the input's time shifts
  stacked as channels), the forward and backward passes of musicnn's
  timbral filters run several times faster. Kernels of `MIN_ROWS` rows
  or more, and those of no more columns than rows (`stacked_in_training`):
  VGG's and the transformer's first 3 x 3 convolutions trained faster
  stacked, the multi-scale CNN's wide 3 x 7 and 3 x 5 ones slower.
- A BatchNormalization in training mode is, in Keras, a chain of
  element-wise ops (moments, then the normalisation) and as many again
  for its gradient, each a pass over the activations; `FusedBatchNorm`
  computes it with TensorFlow's fused kernel on the input centred on the
  batch's first example (the kernel's float32 output is exact on
  centred values only): several times faster on the sample-level CNNs'
  first blocks. It updates the moving mean and variance as Keras
  does (the batch's biased variance). In bfloat16 it normalises the
  input as it is, uncentred (a bfloat16 subtraction would round the
  centred values), where oneDNN's bfloat16 kernel is fast
  (`BF16_NORM_CHANNELS`), not through casts to float32 and back.
- oneDNN's filter gradient of a float32 Conv1D (kernel of 3 or more,
  stride 1, "same") of few input channels and long inputs runs far below
  the machine's matrix-product speed (the sample-level CNNs' first block:
  128 channels, 19683 samples). `TrainingConv` computes it as one matrix
  product per kernel tap over the batch's rows flattened, less the pairs
  that cross from one example into the next (`conv1d_filter_gradient`):
  faster there, less so on shorter inputs of more channels. Layers of more input
  channels than filters (musicnn's 561 -> 64) and bfloat16 ones, where
  oneDNN is as fast or faster, keep the model's own gradient.
- A convolution's bias gradient is the product of a row of ones and the
  upstream gradient's rows (`bias_added`), in float32 for those forms and
  in bfloat16 for every convolution with a bias: TensorFlow's own sums
  bfloat16 in bfloat16, slowly and inexactly.
- The spectrogram's one-channel batch norm is folded into the kernels of
  the convolutions that read it (`tagger.models.folded_input_norm`): no
  input gradient is computed for its gamma and beta.
- A batch norm read only by a max pool of 16 or more values to one, or
  by a ReLU that such a pool alone reads (the musicnn families' norms
  before their max over frequency), normalises the pooled values
  (`tagger.models.pooled_norm`): the musicnn families' steps faster. In
  float32 it also takes the ReLU of a convolution it alone reads (the
  package Musicnn's), the convolution computed without it.
- A plain ReLU read only by a max pool runs after it, on the pooled
  values (the two commute): the sample-level CNNs' block ReLUs, forward
  and backward, on a third of the values; so does a convolution's own
  ReLU (`activation="relu"`, the multi-scale CNN's), its convolution
  computed without it.
- The stacked taps are `training_taps`' shifts, and the gradient
  of their stacking is the sum of the shifted upstream channels, each
  padded back to the input's length (`stacked_shifts`): TensorFlow's own
  gradient of each slice writes a zero tensor of the input's size and
  scatters into it, several times slower over the self-attention
  tagger's front end.
- A batch norm of a convolution of the input at a stride of its width
  (the sample-level CNNs' stem) computes its statistics from the input's
  frames and normalises by the convolution's kernel and bias
  (`tagger.models.stem_norm`): no pass over the stem's output for them.
- The Transformer encoders' exact GELU and its gradient are each one
  kernel compiled by XLA (`tagger.models.training_gelu`), not fourteen
  passes over the feed-forward block's hidden values.

Each form is exact up to the order of the float32 sums; the layers, their
variables and the saved model stay those of the model. What each form
gains, measured: docs/performance.md, "Where a training step's time goes".
"""

from __future__ import annotations

import keras
import tensorflow as tf

from tagger.layers import inference_conv2d
from tagger.layers.inference_conv2d import InferenceConv2D
from tagger.models import folded_input_norm
from tagger.models.layer_graph import calls, layer_graph
from tagger.models.pooled_norm import (
    NormThenMax,
    convolution_with_relu,
    max_after_relu,
    pooled_after,
    rectifying,
)
from tagger.models.stem_norm import Stems
from tagger.models.training_gelu import TrainingEncoder, exact_gelu_encoder
from tagger.models.training_sums import (
    BuiltWrapper,
    activation_of,
    bias_added,
    custom_gradient,
    update_moving_moments,
)

MIN_ROWS = 4  # kernel rows stacked as channels whatever the columns
# Shifts stacked at most in training (inference: InferenceConv2D's 16): the
# package Musicnn's temporal filters and the self-attention tagger's front
# end trained fastest with 8 (docs/performance.md, the "Training MFU, float32"
# rows of pons_musicnn and self_attention).
TRAINING_TAPS = 8
# Kernel taps of a Conv1D whose filter gradient is matrix products
# (`gemm_filter_gradient`), each a pass over the inputs: up to this many
# they beat oneDNN's (docs/performance.md, the "Training MFU, float32" rows).
MAX_GEMM_TAPS = 7
# A bfloat16 norm runs on bfloat16 where its channels are a multiple of
# this (the sample-level CNNs' 128 to 512: a faster step than with casts to
# float32 and back); oneDNN's bfloat16 kernel is slower than the casts on
# musicnn's 204 and 51 (docs/performance.md, the "Training bfloat16 over
# float32" rows).
BF16_NORM_CHANNELS = 16
# cuDNN's fused batch norm takes no smaller epsilon (TensorFlow raises it
# to this); PyTorch-converted norms (1e-5) stay Keras' where a GPU is.
CUDNN_MIN_EPSILON = 1.001e-5


def training_model(model):
    """`model`, or a functional model of the same layers and variables in
    the faster forms of the module docstring; it computes the same function."""
    if layer_graph(model) is None:  # not functional
        return model
    # a layer the model calls twice keeps its form (an earlier training or
    # inference form's calls are not the model's)
    once = [layer for layer in model.layers if calls(model, layer) == 1]
    taps = {id(layer) for layer in once
            if type(layer) is keras.layers.Conv2D
            and inference_conv2d.one_channel_stride_one(layer, layer.input.shape)
            and stacked_in_training(layer.kernel_size)}
    stems = Stems(model, once)
    norms = {id(layer) for layer in once if fusable(layer) and layer not in stems}
    pooled = {id(layer): found for layer in once
              if id(layer) in norms and (found := pooled_after(model, layer))}
    paired = {id(relu) for _, relu in pooled.values()}
    rectified = {id(conv): id(norm) for norm in once
                 if id(norm) in pooled and (conv := rectifying(model, norm)) is not None}
    relus = {id(layer): pool for layer in once
             if id(layer) not in paired and (pool := max_after_relu(model, layer))}
    gemms = {id(layer) for layer in once if gemm_filter_gradient(layer)}
    biases = {id(layer) for layer in once if bias_gradient_as_product(layer)}
    encoders = {id(layer) for layer in once if exact_gelu_encoder(layer)}
    folding = folded_input_norm.Folding(
        model, lambda conv: convolution_of(conv, id(conv) in taps), bias_added, keras.ops.add)
    if not (taps or norms or relus or gemms or biases or encoders or stems or folding):
        return model
    awaited = {}  # id(a pooled norm's pool) -> (the norm, its call's arguments); its ReLU's: None
    after_pool = {}  # id(a max pool) -> the ReLU before it in the model, applied after it

    def call(layer, *args, **kwargs):
        if (stem := stems.call(layer, args, kwargs)) is not None:
            return stem
        # a convolution's own ReLU: applied after its pool, as a ReLU layer's,
        # or by the pooled norm that reads it
        moved = id(layer) in relus and convolution_with_relu(layer)
        if moved:
            after_pool[id(relus[id(layer)])] = keras.layers.ReLU(
                name=f"{layer.name}_relu", dtype=layer.dtype_policy)
        linear = moved or id(layer) in rectified
        if (folded := folding.call(layer, args, kwargs, activated=not linear)) is not None:
            return folded
        if id(layer) in taps:  # signs of +1: the taps without the activation
            return TrainingTapsConv2D(layer, name=f"{layer.name}_taps", dtype=layer.dtype_policy,
                                      max_taps=training_taps(layer),
                                      signs=[1.0] * layer.filters if linear else None)(*args)
        if id(layer) in pooled:  # applied by its pool, the ReLU between passing x on
            pool, relu = pooled[id(layer)]
            awaited[id(pool)] = (layer, kwargs)
            if relu is not None:
                awaited[id(relu)] = None
            return args[0]
        if id(layer) in awaited:
            waiting = awaited.pop(id(layer))
            if waiting is None:  # the ReLU
                return args[0]
            norm, norm_kwargs = waiting
            return NormThenMax(norm, layer, pooled[id(norm)][1],
                               rectified=id(norm) in rectified.values(),
                               name=f"{norm.name}_pooled",
                               dtype=norm.dtype_policy)(args[0], **norm_kwargs)
        if id(layer) in relus and not linear:  # after its pool: max(relu(x)) = relu(max(x))
            after_pool[id(relus[id(layer)])] = layer
            return args[0]
        if id(layer) in after_pool:
            return after_pool.pop(id(layer))(layer(*args, **kwargs))
        if id(layer) in norms:
            return FusedBatchNorm(layer, name=f"{layer.name}_fused",
                                  dtype=layer.dtype_policy)(*args, **kwargs)
        if id(layer) in encoders:
            return TrainingEncoder(layer, name=f"{layer.name}_gelu",
                                   dtype=layer.dtype_policy)(*args, **kwargs)
        if id(layer) in gemms or id(layer) in biases or linear:
            gemm = id(layer) in gemms
            return TrainingConv(layer, gemm, not linear,
                                name=f"{layer.name}_{'gemm' if gemm else 'bias'}",
                                dtype=layer.dtype_policy)(*args, **kwargs)
        return layer(*args, **kwargs)

    return keras.models.clone_model(model, clone_function=lambda layer: layer,
                                    call_function=call)


def convolution_of(conv, stacked: bool):
    """`(x, kernel) -> conv's output without bias or activation`: as
    stacked taps (`training_taps` shifts) or TensorFlow's convolution."""
    if stacked:
        return lambda x, kernel: inference_conv2d._taps_as_channels(
            x, kernel, conv.padding, training_taps(conv), inference_conv2d.stacked_shifts)
    return lambda x, kernel: keras.ops.conv(x, kernel, strides=conv.strides,
                                            padding=conv.padding,
                                            dilation_rate=conv.dilation_rate)


def training_taps(conv) -> int:
    """The shifts a one-channel Conv2D stacks in training: all its kernel's
    rows where it has at least twice as many filters (Won et al.'s Musicnn,
    67 and 38 rows of 204 filters: a faster step than at 8 shifts),
    else at most `TRAINING_TAPS` (fewer filters: the copies cost more
    than the dilated rows)."""
    rows = conv.kernel_size[0]
    return rows if conv.filters >= 2 * rows else TRAINING_TAPS


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
    @custom_gradient
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
    if type(layer) is not keras.layers.BatchNormalization:
        return False
    rank = len(layer.input.shape)
    small_epsilon = layer.epsilon < CUDNN_MIN_EPSILON and tf.config.list_physical_devices("GPU")
    return (2 <= rank <= 4 and layer.axis in (-1, rank - 1) and not layer.renorm
            and not layer.synchronized and not small_epsilon)


class FusedBatchNorm(BuiltWrapper):
    """`(batch, ..., channels) -> the same shape`: the wrapped
    BatchNormalization; in training, computed by the fused kernel
    (statistics in float32, as Keras computes them; a bfloat16 input of
    `BF16_NORM_CHANNELS` channels normalised as it is) and its moving
    statistics updated."""

    def call(self, x, training=None, mask=None):
        norm = self.layer
        if not (training and norm.trainable) or mask is not None:
            return norm(x, training=training, mask=mask)
        channels = x.shape[-1]
        # bfloat16 goes to the kernel as it is (its statistics are float32
        # all the same): the casts to float32 and back cost as much as the norm
        as_it_is = x.dtype == tf.bfloat16 and channels % BF16_NORM_CHANNELS == 0
        values = x if as_it_is else tf.cast(x, tf.float32)
        shape = tf.shape(values)
        if as_it_is:  # uncentred: a bfloat16 subtraction would round the centred values
            image, shift = values, 0.0
        else:  # the kernel's float32 normalisation is exact on centred values only
            axes = list(range(len(x.shape) - 1))
            shift = tf.stop_gradient(tf.reduce_mean(values[:1], axes))
            image = values - shift
        while len(image.shape) < 4:  # (batch, [time,] channels) -> NHWC
            image = tf.expand_dims(image, -2)
        gamma = tf.cast(norm.gamma, tf.float32) if norm.scale else tf.ones([channels])
        beta = tf.cast(norm.beta, tf.float32) if norm.center else tf.zeros([channels])
        none = tf.constant([], tf.float32)
        y, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=image, scale=gamma, offset=beta, mean=none, variance=none,
            epsilon=norm.epsilon, exponential_avg_factor=1.0, data_format="NHWC",
            is_training=True)
        count = tf.cast(tf.size(values) // channels, tf.float32)
        biased = variance * (count - 1.0) / tf.maximum(count, 1.0)  # the kernel's is not
        update_moving_moments(norm, mean + shift, biased)
        return tf.cast(tf.reshape(y, shape), norm.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape


def gemm_filter_gradient(layer) -> bool:
    """A float32 Conv1D of an odd kernel of 3 to `MAX_GEMM_TAPS`, stride
    and dilation 1, "same" padding, one group, no more input channels than filters, and
    an input at least as long as its kernel: its filter gradient is
    computed as `conv1d_filter_gradient`."""
    if type(layer) is not keras.layers.Conv1D:
        return False
    (kernel,), (length, channels) = layer.kernel_size, layer.input.shape[1:]
    return (layer.compute_dtype == "float32" and 3 <= kernel <= MAX_GEMM_TAPS and kernel % 2
            and layer.strides == (1,) and layer.dilation_rate == (1,)
            and layer.padding == "same" and layer.groups == 1
            and layer.data_format == "channels_last" and channels is not None
            and channels <= layer.filters and length is not None and length >= kernel)


def conv1d_filter_gradient(x, upstream, kernel: int):
    """(b, t, c) inputs, (b, t, f) upstream gradient -> (kernel, c, f), the
    filter gradient of a "same" stride-1 Conv1D: for each tap j, the
    product of the inputs shifted by j - kernel // 2 rows and the upstream
    gradient over all b * t rows at once, less the pairs that cross into
    the next or previous example (zero padding in the convolution)."""
    channels, filters = x.shape[-1], upstream.shape[-1]
    length = tf.shape(x)[1]
    rows = tf.reshape(x, [-1, channels])
    grads = tf.reshape(upstream, [-1, filters])
    count = tf.shape(rows)[0]

    def product(a, b):
        return tf.matmul(tf.reshape(a, [-1, channels]), tf.reshape(b, [-1, filters]),
                         transpose_a=True)

    taps = []
    for j in range(kernel):
        shift = j - kernel // 2
        if shift == 0:
            taps.append(product(rows, grads))
        elif shift > 0:  # x[t + shift] with dy[t]; the last rows of b met b + 1's first
            taps.append(product(rows[shift:], grads[:count - shift])
                        - product(x[1:, :shift], upstream[:-1, length - shift:]))
        else:
            back = -shift  # x[t - back] with dy[t]; b's first rows met b - 1's last
            taps.append(product(rows[:count - back], grads[back:])
                        - product(x[:-1, length - back:], upstream[1:, :back]))
    return tf.stack(taps)


def conv1d_same(x, kernel):
    """(b, t, c), (k, c, f) -> (b, t, f): the "same" stride-1 convolution
    TensorFlow computes, its filter gradient `conv1d_filter_gradient`."""
    @custom_gradient
    def convolve(x, kernel):
        def gradient(upstream):
            d_x = tf.raw_ops.Conv2DBackpropInput(
                input_sizes=tf.shape(x[:, None]), filter=kernel[None],
                out_backprop=upstream[:, None], strides=[1, 1, 1, 1], padding="SAME")
            return d_x[:, 0], conv1d_filter_gradient(x, upstream, kernel.shape[0])

        return tf.nn.conv1d(x, kernel, 1, "SAME"), gradient

    return convolve(x, kernel)


class TrainingConv(BuiltWrapper):
    """`(batch, ..., channels) -> (batch, ..., filters)`: the wrapped
    Conv1D or Conv2D, its bias added by `bias_added`; with `gemm` (a
    `gemm_filter_gradient` Conv1D), its filter gradient computed by
    `conv1d_filter_gradient`; not `activated`, without its activation."""

    def __init__(self, layer, gemm=False, activated=True, **kwargs):
        super().__init__(layer, **kwargs)
        self.gemm, self.activated = bool(gemm), bool(activated)

    def call(self, x):
        conv = self.layer
        kernel = tf.cast(conv.kernel, x.dtype)
        y = conv1d_same(x, kernel) if self.gemm else conv.convolution_op(x, kernel)
        if conv.use_bias:
            y = bias_added(y, tf.cast(conv.bias, y.dtype))
        return activation_of(conv, self.activated)(y)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)


def bias_gradient_as_product(layer) -> bool:
    """A Conv1D or Conv2D with a bias, "valid" or "same" padding, computing
    in bfloat16 or float16 (where TensorFlow's own bias gradient is slow
    and inexact)."""
    return (type(layer) in (keras.layers.Conv1D, keras.layers.Conv2D)
            and layer.use_bias
            and layer.compute_dtype in ("bfloat16", "float16")
            and layer.padding in ("valid", "same")  # causal pads in Conv1D.call
            and layer.data_format == "channels_last")
