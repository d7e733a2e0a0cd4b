"""A batch norm of a strided convolution of the model's input, trained
with its statistics computed from the input's frames (`NormedStem`), for
the training forms of either backend (`tagger.models.training_graph`,
`tagger.models.xla_training_graph`).

The sample-level CNNs' stem convolves the waveform with 128 filters of 3
samples at stride 3, and normalises the result: the norm and its gradient
pass over the 128-channel output (19,683 steps of each example) several
times. With the stride equal to the kernel's width the frames p tile the
input, the convolution is y = p K + b, and over the batch mean(y) =
mean(p) K + b and var(y) = diag(K^T C K), C the frames' covariance (3 x 3
for one input channel). The norm's output is then one matrix product of
the frames, a column of ones beside them, and the kernel K gamma / s
over the bias beta + (b - mean(y)) gamma / s (s the batch's standard
deviation): the statistics, the normalisation and their gradients are
computed on small tensors, and the output's gradient meets one product
(the kernel's and the bias's gradients at once). The norm updates its
moving statistics as Keras does. Exact up to the order of float32 sums.
"""

from __future__ import annotations

import keras
from keras import ops

from tagger.models.layer_graph import calls, only_reader
from tagger.models.training_sums import BuiltWrapper, update_moving_moments

SUM_BLOCK = 256  # steps summed together first, then the blocks' sums (`blocked_sum`)


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


def blocked_sum(values):
    """`(batch, steps, ...) -> (...)`: the sum over the batch and the steps,
    of each block of `SUM_BLOCK` steps first. TensorFlow's sum over a long
    leading axis and XLA's CPU product of (width, rows) by (rows, width)
    add the rows in one sequence, losing digits over a batch's frames
    (tests/training/test_stem_norm.py)."""
    steps, rest = values.shape[1], values.shape[2:]
    blocks = -(-steps // SUM_BLOCK)
    padded = ops.pad(values, [(0, 0), (0, blocks * SUM_BLOCK - steps)] + [(0, 0)] * len(rest))
    blocked = ops.reshape(padded, (-1, blocks, SUM_BLOCK, *rest))
    return ops.sum(ops.sum(blocked, 2), (0, 1))


class Stems:
    """The part of a training form's `call_function` (for
    keras.models.clone_model) that trains `layers`' stem norms from their
    input's frames: `call` returns a layer's output in that form, or None
    where the layer is not the form's to call."""

    def __init__(self, model, layers):
        # id(a stem's norm) -> its convolution, which passes its input on to it
        self.convs = {id(norm): conv for conv in layers if (norm := stem_norm(model, conv))}
        self.passing = {id(conv) for conv in self.convs.values()}

    def __bool__(self) -> bool:
        return bool(self.convs)

    def __contains__(self, layer) -> bool:
        return id(layer) in self.convs

    def call(self, layer, args, kwargs):
        if id(layer) in self.passing:  # applied by its norm
            return args[0]
        if id(layer) in self.convs:
            return NormedStem(layer, self.convs[id(layer)], name=f"{layer.name}_stem",
                              dtype=layer.dtype_policy)(*args, **kwargs)
        return None


class NormedStem(BuiltWrapper):
    """`(batch, samples, channels) -> (batch, samples // width, filters)`:
    `norm(conv(x))`; in training, the product of the module docstring."""

    def __init__(self, layer, conv, **kwargs):
        super().__init__(layer, **kwargs)
        self.conv = conv

    def call(self, x, training=None, mask=None):
        conv, norm = self.conv, self.layer
        if not (training and norm.trainable) or mask is not None:
            return norm(conv(x), training=training, mask=mask)
        width, channels, filters = conv.kernel_size[0], x.shape[-1], conv.filters
        steps = x.shape[1] // width
        frames = ops.reshape(ops.cast(x[:, :steps * width], "float32"),
                             (-1, steps, width * channels))  # (batch, steps, width * channels)
        count = ops.cast(ops.shape(frames)[0] * steps, "float32")
        frame_mean = blocked_sum(frames) / count
        centred = frames - frame_mean
        covariance = blocked_sum(centred[..., :, None] * centred[..., None, :]) / count
        kernel = ops.reshape(ops.cast(conv.kernel, "float32"), (width * channels, filters))
        bias = ops.cast(conv.bias, "float32") if conv.use_bias else ops.zeros((filters,))
        mean = ops.matmul(frame_mean, kernel) + bias
        variance = ops.maximum(ops.sum(kernel * ops.matmul(covariance, kernel), 0), 0.0)
        update_moving_moments(norm, mean, variance)
        gamma = ops.cast(norm.gamma, "float32") if norm.scale else ops.ones((filters,))
        beta = ops.cast(norm.beta, "float32") if norm.center else ops.zeros((filters,))
        scale = gamma * ops.rsqrt(variance + norm.epsilon)
        dtype = norm.compute_dtype
        weights = ops.concatenate([kernel * scale, (beta + (bias - mean) * scale)[None]], 0)
        with_ones = ops.concatenate([frames, ops.ones_like(frames[..., :1])], -1)
        rows = ops.reshape(with_ones, (-1, width * channels + 1))  # (batch * steps, .)
        y = ops.matmul(ops.cast(rows, dtype), ops.cast(weights, dtype))
        return ops.reshape(y, (-1, steps, filters))

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)
