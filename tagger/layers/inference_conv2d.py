"""A trained Conv2D computed in a form that runs faster, for inference.

`InferenceConv2D` wraps a `keras.layers.Conv2D` (its weights, unchanged)
and gives the same output, computed in forms that the CPU kernels (oneDNN,
XNNPACK's float32 and int8) run better:

- A kernel of `kh` x `kw` (time x frequency) over a one-channel input maps
  to short inner loops: XNNPACK's int8 convolution ran the musicnn timbral
  filters (7 x 38, 204 filters) at a tenth of the speed of the form below.
  Up to `MAX_TAPS` rows, the input's `kh` time shifts are stacked as
  channels and convolved with a `1 x kw` kernel of `kh` input channels
  ("taps"; a taller kernel: `MAX_TAPS` shifts, dilated rows).
- A tall kernel followed by a max over the whole frequency axis (musicnn's
  temporal filters: 128, 64 and 32 frames x 1 bin, then a max over 96
  bins) is computed in polyphase form: the time axis is cut into blocks of
  `MAX_TAPS` frames, each block's frames become channels, and one
  convolution over the blocks gives every frame of a block as
  `MAX_TAPS` x filters output channels ("polyphase"; a few zero weights,
  at most (kh + MAX_TAPS - 1) / kh times the multiply-adds, no copy of the
  input). The max over frequency is taken before the blocks are laid back
  out in time (`pool_width`).
- `signs`: the output without the conv's activation, each channel `c`
  multiplied by `signs[c]` (+1 or -1), for `PooledBatchNorm`
  (layers/pooled_batch_norm.py).

Each form is exact: the same products, only the order of the float32 sums
may differ. The training step computes one-channel convolutions in the
taps form too (`tagger.models.training_graph`).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

MAX_TAPS = 16  # time shifts stacked as channels at most; the polyphase block


def stacked_shifts(x, taps: int, length: int):
    """(batch, h, w, 1) -> (batch, length, w, taps): channel i holds the
    rows i .. i + length - 1 of `x`."""
    return ops.concatenate([x[:, i:i + length] for i in range(taps)], axis=-1)


@keras.saving.register_keras_serializable(package="tagger")
class InferenceConv2D(keras.layers.Wrapper):
    """`(batch, h, w, c) -> (batch, h', w', filters)`: the wrapped Conv2D's
    output (see the module docstring); with `pool_width`, its max over the
    width, `(batch, h', 1, filters)`, as a MaxPooling2D of `(1, w')` gives.
    `signs`: None, or one +1 or -1 per filter (the activation is then left
    out). `form` (set when built): "taps", "polyphase" or "conv"."""

    def __init__(self, layer, signs=None, pool_width=False, max_taps=MAX_TAPS, **kwargs):
        super().__init__(layer, **kwargs)
        self.max_taps = int(max_taps)  # the taps form's shifts at most
        self.signs = None if signs is None else [float(s) for s in signs]
        self.pool_width = bool(pool_width)
        if self.signs is not None and any(s not in (1.0, -1.0) for s in self.signs):
            raise ValueError(f"signs must be +1 or -1, got {sorted(set(self.signs))}")
        if self.pool_width and self.signs is None:
            raise ValueError("pool_width goes with signs (a batch norm after the pooling)")
        self.form = "conv"

    # the taps form's stacking; the training form's has a faster gradient
    stack_shifts = staticmethod(stacked_shifts)

    def build(self, input_shape):
        if not self.layer.built:
            self.layer.build(input_shape)
        conv = self.layer
        if self.signs is not None and len(self.signs) != conv.filters:
            raise ValueError(f"signs must hold one value per filter ({conv.filters}), "
                             f"got {len(self.signs)}")
        if one_channel_stride_one(conv, input_shape):
            tall = conv.kernel_size[0] > MAX_TAPS
            self.form = "polyphase" if tall and self.pool_width else "taps"
        self.built = True

    def call(self, x):
        conv = self.layer
        kernel = conv.kernel  # (kh, kw, in, filters)
        bias = conv.bias if conv.use_bias else None
        if self.signs is not None:
            signs = ops.convert_to_tensor(self.signs, dtype=kernel.dtype)
            kernel = kernel * signs
            bias = None if bias is None else bias * signs
        if self.form == "polyphase":
            y = _polyphase_max(x, kernel, conv.padding)  # (b, h', 1, filters)
        else:
            if self.form == "taps":
                y = _taps_as_channels(x, kernel, conv.padding, self.max_taps,
                                      self.stack_shifts)
            else:
                y = ops.conv(x, kernel, strides=conv.strides, padding=conv.padding,
                             dilation_rate=conv.dilation_rate)
            if self.pool_width:
                y = ops.max(y, axis=2, keepdims=True)
        if bias is not None:  # after the max: a constant per channel moves through it
            y = y + bias
        return y if self.signs is not None else conv.activation(y)

    def compute_output_shape(self, input_shape):
        shape = self.layer.compute_output_shape(input_shape)
        return (*shape[:2], 1, shape[3]) if self.pool_width else shape

    def get_config(self):
        return dict(super().get_config(), signs=self.signs, pool_width=self.pool_width,
                    max_taps=self.max_taps)


def one_channel_stride_one(conv, input_shape) -> bool:
    """Whether `conv` (a Conv2D) on `input_shape` reads one input channel
    with a kernel taller than one row, strides and dilation 1, one group,
    channels last: the convolutions computed as taps or polyphase."""
    return (input_shape[-1] == 1 and conv.kernel_size[0] > 1
            and tuple(conv.strides) == (1, 1) and tuple(conv.dilation_rate) == (1, 1)
            and getattr(conv, "groups", 1) == 1 and conv.data_format == "channels_last")


def same_padding(x, kh, kw):
    """TensorFlow's 'same' padding at stride 1: (k - 1) // 2 before, the rest after."""
    return ops.pad(x, [(0, 0), ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2), (0, 0)])


def _taps_as_channels(x, kernel, padding, max_taps, stack):
    """conv2d(x, kernel) for x (batch, h, w, 1) and kernel (kh, kw, 1, f),
    stride 1: the input's shifts 0..c-1 in time stacked as c channels (c:
    kh, at most `max_taps`; `stack(x, c, length)` stacks them), convolved
    with the kernel's rows regrouped as (ceil(kh / c), kw, c, f) at
    dilation c in time."""
    kh, kw, _, filters = kernel.shape
    taps = min(kh, max_taps)
    rows = -(-kh // taps)  # dilated rows of the regrouped kernel
    if padding == "same":
        x = same_padding(x, kh, kw)
    extra = rows * taps - kh  # zero rows that round the kernel up to whole dilated rows
    if extra:
        x = ops.pad(x, [(0, 0), (0, extra), (0, 0), (0, 0)])
        kernel = ops.pad(kernel, [(0, extra), (0, 0), (0, 0), (0, 0)])
    length = x.shape[1] - taps + 1
    x = stack(x, taps, length)  # (b, length, w, c)
    # kernel row r * taps + i -> row r, channel i
    kernel = ops.reshape(kernel, (rows, taps, kw, filters))
    kernel = ops.transpose(kernel, (0, 2, 1, 3))  # (rows, kw, taps, filters)
    # one row: no dilation (TensorFlow computes a dilated convolution
    # between space-to-batch and batch-to-space copies)
    return ops.conv(x, kernel, padding="valid", dilation_rate=(taps, 1) if rows > 1 else 1)


def _polyphase_max(x, kernel, padding):
    """max over the width of conv2d(x, kernel), (batch, h', 1, f), for x
    (batch, h, w, 1) and kernel (kh, kw, 1, f), stride 1, in polyphase form:
    with blocks of P = MAX_TAPS frames, output frame q P + r is
    sum over j, p of W[j, p, r] x[(q + j) P + p], W[j, p, r] = kernel[j P + p - r]
    (zero outside the kernel): a convolution of J = ceil((kh + P - 1) / P)
    rows over the blocks, with P input and P x f output channels."""
    kh, kw, _, filters = kernel.shape
    block = MAX_TAPS
    if padding == "same":
        x = same_padding(x, kh, kw)
    height = x.shape[1] - kh + 1  # output frames
    rows = -(-(kh + block - 1) // block)
    blocks = -(-height // block)
    length = (blocks + rows - 1) * block  # frames the blocks read
    x = ops.pad(x, [(0, 0), (0, max(0, length - x.shape[1])), (0, 0), (0, 0)])[:, :length]
    width = x.shape[2]
    x = ops.reshape(x, (-1, blocks + rows - 1, block, width))
    x = ops.transpose(x, (0, 1, 3, 2))  # (b, blocks + rows - 1, w, P)
    taps = np.arange(rows)[:, None, None] * block + np.arange(block)[None, :, None] \
        - np.arange(block)[None, None, :]  # (rows, P: p, P: r) -> kernel row
    taps = np.where((taps >= 0) & (taps < kh), taps, kh)  # kh: a zero row
    padded = ops.pad(ops.reshape(kernel, (kh, kw, filters)), [(0, 1), (0, 0), (0, 0)])
    weights = ops.take(padded, taps.reshape(-1), axis=0)  # (rows * P * P, kw, f)
    weights = ops.reshape(weights, (rows, block, block, kw, filters))
    weights = ops.transpose(weights, (0, 3, 1, 2, 4))  # (rows, kw, p, r, f)
    weights = ops.reshape(weights, (rows, kw, block, block * filters))
    y = ops.conv(x, weights, padding="valid")  # (b, blocks, w', P * f)
    y = ops.max(y, axis=2)  # (b, blocks, P * f)
    y = ops.reshape(y, (-1, blocks * block, filters))[:, :height]
    return ops.expand_dims(y, 2)  # (b, h', 1, f)
