"""The form of a model its training step runs under Keras's JAX backend:
the same layers and variables, in keras.ops forms whose gradients XLA's
CPU compiler turns into matrix products and element-wise passes.

- A Conv2D of a kernel of more than one tap, of stride 1 or of "valid"
  padding with strides (a residual block's downsampling): XLA computes
  its filter gradient as a convolution far below the speed of a matrix
  product (a 3 x 3 layer of 128 channels: a quarter of it), and with one
  input channel (musicnn's timbral filters, the first convolution after
  a spectrogram's batch norm) its input gradient too. `PatchesConv2D`
  stacks the input's column shifts as channels: at stride 1 it takes
  their product by every row of the kernel at once and sums its row
  groups shifted, with the gradient written out in the same form
  (`stride_one_product`); with strides it sums one matrix product by the
  kernel's rows per row shift of the patches, the patches' gradient laid
  row by row (`row_shifts_product`); an input of up to
  `MAX_TAP_ROW_CHANNELS` channels has every shift of every channel stacked
  as a row of one matrix (`tap_rows_product`): its forward and backward
  passes are matrix products and shifted sums. Stacked taps or column
  patches of MADE_AGAIN_BYTES or more are not held for the backward pass,
  which stacks them again from the input; a stride-1 output is one buffer
  (`computed_once`), and patches of more than BACKWARD_PIECE_BYTES have
  their backward pass in pieces of the batch.
- A max pool whose windows are made of tiles of its input (along each
  axis a pool size equal to the stride, a multiple of it, or 1; "valid"):
  XLA's gradient of a window max is a select-and-scatter, lowered on the
  CPU to index arrays, a reduction over them and a scatter. `TiledMaxPool`
  reshapes the windows onto an axis of their own and takes the max over
  it: the gradient is element-wise, the maxima found again in the
  backward pass (`window_max`).
- The spectrogram's one-channel batch norm is folded into the kernels of
  the convolutions that read it (`tagger.models.folded_input_norm`, as in
  TensorFlow's form): no input gradient is computed for its gamma and
  beta, where XLA computed each first convolution's whole input gradient
  for them.
- The sample-level CNNs' stem norm takes its statistics from the
  waveform's frames, its output one matrix product
  (`tagger.models.stem_norm`, as in TensorFlow's form): no pass over the
  stem's output for the statistics or their gradients.

TensorFlow's form's norm of the pooled values (`tagger.models.pooled_norm`)
is not among them: XLA fuses a norm's element-wise passes into the pool's
reduction already, and Musicnn's step ran slower with it.

Each form computes the layer's function exactly up to the order of the
float32 sums (a pool's gradient is shared among equal maxima, where the
pooling layer's goes to one of them; an infinite stride-1 output is NaN,
`computed_once`). TensorFlow's step has forms of its
own (`tagger.models.training_graph`). What each gains: docs/jax.md.
"""

from __future__ import annotations

import math
import re

import keras
from keras import ops

from tagger.layers.inference_conv2d import same_padding
from tagger.models import folded_input_norm
from tagger.models.layer_graph import calls, layer_graph
from tagger.models.stem_norm import Stems

# Copies of its input a PatchesConv2D would hold (`copies_held`): more
# than this keep the model's own convolution.
MAX_PATCH_TAPS = 512
# The bytes from which a stacked copy of a layer's input (`tap_rows_product`'s
# taps, `stride_one_product`'s patches) is made again in the backward pass
# rather than held from the forward pass: a smaller one costs more in compile
# time (the stacking compiled twice) and copying than it saves
MADE_AGAIN_BYTES = 32 << 20
# The bytes of column patches up to which `stride_one_product`'s backward
# pass takes the whole batch at once; above, pieces of the batch one after
# another, each holding its patches, stacked output gradient and patches'
# gradient alone
BACKWARD_PIECE_BYTES = 256 << 20
# Input channels up to which a Conv2D's every shift of every channel is a
# row of one matrix (`tap_rows_product`): measured at 1 (the spectrogram
# families) and 6 (the Harmonic CNN), both faster so (docs/jax.md); no
# family has 2 to 5, 7 or 8
MAX_TAP_ROW_CHANNELS = 8


def xla_training_model(model):
    """`model`, or a functional model of the same layers and variables in
    the forms of the module docstring; it computes the same function. The
    forms are for XLA's CPU programs: on a GPU, cuDNN's convolutions and
    XLA's own pooling gradient are the fast ones."""
    if layer_graph(model) is None:  # not functional
        return model
    once = [layer for layer in model.layers if calls(model, layer) == 1]
    patches = {id(layer) for layer in once if patches_in_training(layer)}
    pools = {id(layer) for layer in once if tiles_its_input(layer)}
    folding = folded_input_norm.Folding(
        model, lambda conv: convolution_of(conv, id(conv) in patches))
    stems = Stems(model, once)
    if not (patches or pools or folding or stems):
        return model

    def call(layer, *args, **kwargs):
        if (stem := stems.call(layer, args, kwargs)) is not None:
            return stem
        if (folded := folding.call(layer, args, kwargs)) is not None:
            return folded
        if id(layer) in patches:
            return PatchesConv2D(layer, name=f"{layer.name}_patches",
                                 dtype=layer.dtype_policy)(*args, **kwargs)
        if id(layer) in pools:
            return TiledMaxPool(layer.pool_size, layer.strides, name=f"{layer.name}_tiled",
                                dtype=layer.dtype_policy)(*args, **kwargs)
        return layer(*args, **kwargs)

    return keras.models.clone_model(model, clone_function=lambda layer: layer,
                                    call_function=call)


def patches_in_training(layer) -> bool:
    """Whether `layer` is a plain Conv2D that trains as `PatchesConv2D`:
    input of known size, dilation and groups 1, channels last, stride 1 or
    "valid" padding, a kernel of more than one tap and at most
    MAX_PATCH_TAPS copies of the input held."""
    if type(layer) is not keras.layers.Conv2D:
        return False
    shape = layer.input.shape
    return (None not in shape[1:] and math.prod(layer.kernel_size) > 1
            and copies_held(layer.kernel_size, shape[-1]) <= MAX_PATCH_TAPS
            and (tuple(layer.strides) == (1, 1) or layer.padding == "valid")
            and tuple(layer.dilation_rate) == (1, 1)
            and layer.groups == 1 and layer.data_format == "channels_last")


def convolution_of(conv, as_patches: bool):
    """`(x, kernel) -> conv's output without bias or activation`: as
    `patches_product` or Keras's convolution."""
    if as_patches:
        return lambda x, kernel: patches_product(conv, x, kernel)
    return lambda x, kernel: ops.conv(x, kernel, strides=conv.strides, padding=conv.padding,
                                      dilation_rate=conv.dilation_rate)


def copies_held(kernel_size, channels: int) -> int:
    """The copies of its input a PatchesConv2D of `kernel_size` (rows,
    columns) holds: one per tap as `tap_rows_product`, else one per
    column shift."""
    rows, columns = kernel_size
    return rows * columns if channels <= MAX_TAP_ROW_CHANNELS else columns


def tiles_its_input(layer) -> bool:
    """Whether `layer` is a MaxPooling1D or 2D whose windows are made of
    tiles of its input: along each axis a pool size equal to the stride, a
    multiple of it (windows of several tiles) or 1 (every stride-th
    element); "valid" padding, channels last."""
    if type(layer) not in (keras.layers.MaxPooling1D, keras.layers.MaxPooling2D):
        return False
    return (all(pool % stride == 0 or pool == 1
                for pool, stride in zip(layer.pool_size, layer.strides))
            and layer.padding == "valid" and layer.data_format == "channels_last")


def column_patches(x, columns: int, width: int, stride: int = 1):
    """(batch, h, w, c) -> (batch, h, width, columns * c): channels j * c
    ... j * c + c - 1 hold x shifted by j columns, every `stride` column
    of it."""
    return ops.concatenate([along(x, 2, j, width, stride) for j in range(columns)], axis=-1)


def patches_product(conv, x, kernel):
    """`(batch, h, w, c) -> (batch, h', w', filters)`: the Conv2D `conv`'s
    convolution of x by `kernel` (its own, or one of its shape) without
    bias or activation, as x's shifted patches times the kernel's rows."""
    rows, columns = conv.kernel_size
    channels = x.shape[-1]
    if conv.padding == "same":  # stride 1 (patches_in_training)
        x = same_padding(x, rows, columns)
    sr, sc = conv.strides
    height, width = (x.shape[1] - rows) // sr + 1, (x.shape[2] - columns) // sc + 1
    if channels <= MAX_TAP_ROW_CHANNELS:  # every shift of every channel stacked: one product
        return tap_rows_product(x, kernel, height, width, (sr, sc))
    if (sr, sc) == (1, 1):
        return stride_one_product(x, kernel)
    return row_shifts_product(column_patches(x, columns, width, sc), kernel, height, sr)


def row_shifts_product(patches, kernel, height: int, stride: int = 1):
    """`(batch, h, width, columns * c), (rows, columns, c, filters) ->
    (batch, height, width, filters)`: a matrix product by the kernel's
    rows per row shift of `patches` (every `stride` row). Its gradient
    written out: the patches' as each row's product placed on the rows it
    read (`interleaved_rows`), where autodiff padded each to the patches'
    size and held them all before their sum."""
    rows, columns, channels, filters = kernel.shape
    span = columns * channels

    @ops.custom_gradient
    def product(patches, kernel):
        y = summed([ops.matmul(along(patches, 1, row, height, stride),
                               ops.reshape(kernel[row], (span, filters)))
                    for row in range(rows)])

        def grad(*args, upstream=None):  # the one argument under JAX and TensorFlow
            dy = args[0] if upstream is None else upstream
            flat = ops.reshape(dy, (-1, filters))
            dkernel = ops.stack([ops.reshape(ops.matmul(ops.transpose(ops.reshape(
                along(patches, 1, row, height, stride), (-1, span))), flat),
                (columns, channels, filters)) for row in range(rows)])
            parts = [ops.matmul(dy, ops.transpose(ops.reshape(kernel[row], (span, filters))))
                     for row in range(rows)]
            return interleaved_rows(parts, stride, patches.shape[1]), dkernel

        return y, grad

    return product(patches, kernel)


def interleaved_rows(parts, stride: int, rows: int):
    """`rows` rows of which row r + stride * t is the sum of parts[r][:, t]
    (each `(batch, height, w, c)`): the rows of each phase mod `stride`
    summed, then laid in turn."""
    height = parts[0].shape[1]
    per_phase = -(-rows // stride)
    phases = []
    for phase in range(stride):
        terms = [padded(parts[r], (r // stride, per_phase - height - r // stride))
                 for r in range(phase, len(parts), stride)]
        phases.append(summed(terms) if terms else ops.zeros_like(phases[0]))
    laid = ops.stack(phases, axis=2)  # (batch, per_phase, stride, w, c)
    return ops.reshape(laid, (-1, per_phase * stride, *laid.shape[3:]))[:, :rows]


@ops.custom_gradient
def stride_one_product(x, kernel):
    """`(batch, h, w, c), (rows, columns, c, filters) -> (batch, h - rows
    + 1, w - columns + 1, filters)`: the "valid" convolution at stride 1.
    x's column patches times every row of the kernel in one matrix
    product, (batch, h, w', rows * filters), whose row groups, each
    shifted by its row, sum to the output. Its gradient written out in the
    same form: the output gradient shifted by each row, stacked as the row
    groups (one copy), times the patches for the kernel's and times the
    kernel for the patches', whose column groups, each shifted back, sum
    to the input's. No row slice of the patches is copied (as matrix
    product operands they were: by autodiff XLA's CPU compiler kept every
    one of them for the backward pass), and patches of MADE_AGAIN_BYTES or
    more (columns times the size of x) are made again there
    (`zero_after`), not held. The backward pass of patches of more than
    BACKWARD_PIECE_BYTES is taken in pieces of the batch, each after the
    last (`batch_pieces`), each holding its share of the patches, the
    stacked output gradient and the patches' gradient. The output is one
    buffer (`computed_once`)."""
    rows, columns, channels, filters = kernel.shape
    height, width = x.shape[1] - rows + 1, x.shape[2] - columns + 1
    patches = column_patches(x, columns, width)
    held = None if made_again(patches) else patches
    pieces = batch_pieces(patches)
    wide = ops.reshape(ops.transpose(kernel, (1, 2, 0, 3)), (columns * channels, rows * filters))
    products = ops.matmul(patches, wide)
    y = summed([along(products[..., r * filters:(r + 1) * filters], 1, r, height)
                for r in range(rows)])
    y = computed_once(y)

    def grad(*args, upstream=None):  # the one argument under JAX and TensorFlow
        dy = args[0] if upstream is None else upstream
        dxs, dwides = [], []
        for start, stop in pieces:
            # a piece waits for the last one's products: the compiler's
            # schedule would stack every piece's copies first and hold them
            wait = (zero_after(dwides[-1]) + zero_after(dxs[-1])) if dxs else 0
            piece_dy = dy[start:stop] + wait
            shifted = ops.concatenate([padded(piece_dy, (r, rows - 1 - r)) for r in range(rows)],
                                      axis=-1)
            piece = (held[start:stop] if held is not None else
                     column_patches(x[start:stop] + zero_after(piece_dy), columns, width))
            dwides.append(ops.matmul(ops.transpose(ops.reshape(piece, (-1, columns * channels))),
                                     ops.reshape(shifted, (-1, rows * filters))))
            dpatches = ops.matmul(shifted, ops.transpose(wide))
            dxs.append(summed([padded(dpatches[..., j * channels:(j + 1) * channels], (0, 0),
                                      (j, columns - 1 - j)) for j in range(columns)]))
        dkernel = ops.transpose(ops.reshape(summed(dwides), (columns, channels, rows, filters)),
                                (2, 0, 1, 3))
        return (ops.concatenate(dxs, axis=0) if len(dxs) > 1 else dxs[0]), dkernel

    return y, grad


def batch_pieces(copy):
    """[(start, stop)]: the examples of `copy` (batch, ...) in pieces of
    near-equal size, its bytes over BACKWARD_PIECE_BYTES (rounded up) of
    them, at most one per example (one piece where the batch's size is
    unknown as the step is traced)."""
    batch = copy.shape[0]
    if batch is None:
        return [(0, None)]
    pieces = max(1, min(batch, -(-nbytes(copy) // max(BACKWARD_PIECE_BYTES, 1))))
    bounds = [batch * k // pieces for k in range(pieces + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def summed(parts):
    """The sum of a list of tensors of one shape."""
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def padded(x, rows, columns=(0, 0)):
    """(batch, h, w, c) -> (batch, h + sum(rows), w + sum(columns), c):
    zeros (before, after) along the rows and the columns."""
    return ops.pad(x, [(0, 0), rows, columns, (0, 0)])


def tap_rows_product(x, kernel, height: int, width: int, strides=(1, 1)):
    """`(batch, h, w, c), (rows, columns, c, filters) -> (batch, height,
    width, filters)`: the convolution as one matrix product by the kernel's
    taps, each channel's shifts (every `strides` row and column) stacked as
    rows of one (taps * c, batch * height * width) matrix: the column
    shifts of x, then the row shifts of those (`stacked_shifts`), each a
    contiguous copy. A slice per tap ran as fast, but XLA compiled hundreds
    of them for Musicnn's timbral filters, slowly; one copy from copies of
    x laid end to end ran slower. Stacked as channels instead (an
    interleaved copy of x per tap), the product and its gradient ran
    slower (CRNN's first block). Stacked taps of MADE_AGAIN_BYTES or more
    (the size of x times its taps) are not held for the backward pass: the
    kernel's gradient stacks them again there (`kernel_gradient_from_taps`);
    x's gradient needs the kernel alone."""
    rows, columns, channels, filters = kernel.shape
    taps = stacked_taps(x, rows, columns, height, width, strides)
    again = made_again(taps)
    fixed = ops.reshape(ops.stop_gradient(kernel) if again else kernel,
                        (rows * columns * channels, filters))
    y = ops.reshape(ops.matmul(ops.transpose(taps), fixed), (-1, height, width, filters))
    return y + kernel_gradient_from_taps(x, kernel, height, width, strides) if again else y


def stacked_taps(x, rows: int, columns: int, height: int, width: int, strides=(1, 1)):
    """`(batch, h, w, c) -> (rows * columns * c, batch * height * width)`:
    x's column shifts, then the row shifts of those (`stacked_shifts`),
    every `strides` row and column, each tap's channels a row apiece."""
    sr, sc = strides
    planes = ops.transpose(x, (3, 0, 1, 2))  # (c, batch, h, w)
    taps = stacked_shifts(stacked_shifts(planes, 3, columns, width, sc), 3, rows, height, sr)
    return ops.reshape(taps, (rows * columns * x.shape[-1], -1))


def made_again(copy) -> bool:
    """Whether the stacked copy `copy` is made again in the backward pass
    (MADE_AGAIN_BYTES or more; a size unknown as the step is traced is
    taken as more)."""
    return None in copy.shape or nbytes(copy) >= MADE_AGAIN_BYTES


def nbytes(tensor) -> int:
    """The bytes of a tensor of known shape."""
    bits = int(re.search(r"\d+$", keras.backend.standardize_dtype(tensor.dtype)).group())
    return math.prod(tensor.shape) * bits // 8


def kernel_gradient_from_taps(x, kernel, height: int, width: int, strides=(1, 1)):
    """Zeros of `tap_rows_product`'s output shape whose gradient is the
    kernel's gradient of that product (and none of x's): the taps stacked
    again in the backward pass, times the output gradient. They are
    stacked from x plus a zero computed from the output gradient
    (`zero_after`): from x alone XLA's CPU compiler, which expands the
    barriers that keep a recomputation apart (`keras.remat`), merged them
    with the forward's copy and held that."""
    rows, columns, channels, filters = kernel.shape

    @ops.custom_gradient
    def zeros(x, kernel):
        def grad(*args, upstream=None):  # the one argument under JAX and TensorFlow
            dy = args[0] if upstream is None else upstream
            taps = stacked_taps(x + zero_after(dy), rows, columns, height, width, strides)
            dkernel = ops.matmul(taps, ops.reshape(ops.cast(dy, taps.dtype), (-1, filters)))
            return ops.zeros_like(x), ops.cast(
                ops.reshape(dkernel, (rows, columns, channels, filters)), kernel.dtype)

        return ops.zeros((ops.shape(x)[0], height, width, filters), x.dtype), grad

    return zeros(x, kernel)


def computed_once(y):
    """y, as one buffer: divided by 1 + 0 * y, a division the compiler does
    not copy into each of y's consumers (the identity for finite values;
    an infinite one becomes NaN). A sum of shifted slices of a product (or
    of products) is cheap to it, so each of the next layers' element-wise
    passes, forward and backward, summed them again and the product (rows
    times y's size) was held to the end of the backward pass. A divisor of
    one element is no use: the compiler multiplies by its reciprocal."""
    return y / (1 + y * 0)


def zero_after(x):
    """A zero that XLA's CPU compiler cannot fold, computed from one element
    of `x`: what adds it waits for `x` (the compiler's schedule would stack
    a backward pass's taps as soon as their input exists, and hold them)."""
    first = x[(0,) * len(x.shape)]
    return ops.cast(ops.isnan(first), x.dtype) * 0


def stacked_shifts(x, axis: int, taps: int, length: int, stride: int = 1):
    """`(taps, *x.shape)` with x's axis `axis` of `length`: [k] holds x's
    elements k + stride * t along it, t < length. Where taps = a * b (a the
    largest divisor up to its square root), the a shifts of x by k < a
    first, then b shifts of those by a multiple of a: a + b slices in place
    of taps."""
    n = x.shape[axis]
    if taps - 1 + stride * (length - 1) >= n:
        raise ValueError(f"{taps} shifts of {length} every {stride} exceed {n} elements")
    a = max([d for d in range(1, math.isqrt(taps) + 1) if taps % d == 0])
    if a == 1:
        return ops.stack([along(x, axis, k, length, stride) for k in range(taps)])
    b = taps // a
    near = ops.stack([along(x, axis, k, a * (b - 1) + stride * (length - 1) + 1)
                      for k in range(a)])
    far = ops.stack([along(near, axis + 1, a * k, length, stride) for k in range(b)])
    return ops.reshape(far, (taps, *far.shape[2:]))


def along(x, axis: int, start: int, length: int, stride: int = 1):
    """x's elements start + stride * t, t < length, along `axis`."""
    kept = slice(start, start + stride * (length - 1) + 1, stride)
    return x[(slice(None),) * axis + (kept,)]


def window_max(windows, axes: tuple):
    """`windows`' max over `axes`, its gradient shared among each window's
    equal maxima, as autodiff shares it, but found again in the backward
    pass from the windows and their maxima: autodiff held a float32 mask
    of the windows' size from the forward pass."""
    @ops.custom_gradient
    def kept_max(windows):
        top = ops.max(windows, axis=axes, keepdims=True)

        def grad(*args, upstream=None):  # the one argument under JAX and TensorFlow
            dy = args[0] if upstream is None else upstream
            at_max = ops.equal(windows + zero_after(dy), top)
            count = ops.sum(ops.cast(at_max, dy.dtype), axis=axes, keepdims=True)
            return ops.where(at_max, dy / count, ops.zeros_like(dy))

        return top, grad

    return ops.squeeze(kept_max(windows), axis=axes)


class PatchesConv2D(keras.layers.Wrapper):
    """`(batch, h, w, c) -> (batch, h', w', filters)`: the wrapped Conv2D's
    output, as its input's shifted patches times its kernel's rows."""

    def build(self, input_shape):
        if not self.layer.built:
            self.layer.build(input_shape)
        self.built = True

    def call(self, x):
        conv = self.layer
        y = patches_product(conv, x, ops.cast(conv.kernel, x.dtype))
        if conv.use_bias:
            y = y + ops.cast(conv.bias, y.dtype)
        return y if conv.activation is None else conv.activation(y)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)


class TiledMaxPool(keras.layers.Layer):
    """`(batch, *spatial, channels) -> (batch, *(spatial - pool) // strides
    + 1, channels)`: the max over each window of `pool_size` (one size per
    spatial axis) every `strides` (the pool size where None), "valid"
    pooling's. Where the windows tile the input, the max over each tile;
    else, axis by axis, the max over each tile of `strides` and then over
    the tiles each window spans (`strided_max`)."""

    def __init__(self, pool_size, strides=None, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = tuple(int(p) for p in pool_size)
        self.strides = self.pool_size if strides is None else tuple(int(s) for s in strides)

    def call(self, x):
        if self.strides != self.pool_size:
            for axis, (pool, stride) in enumerate(zip(self.pool_size, self.strides), start=1):
                x = strided_max(x, axis, pool, stride)
            return x
        counts = [size // pool for size, pool in zip(x.shape[1:-1], self.pool_size)]
        kept = tuple(slice(0, n * pool) for n, pool in zip(counts, self.pool_size))
        x = x[(slice(None), *kept)]
        windows = [d for n, pool in zip(counts, self.pool_size) for d in (n, pool)]
        x = ops.reshape(x, (-1, *windows, x.shape[-1]))
        return window_max(x, tuple(range(2, 2 * len(counts) + 1, 2)))

    def compute_output_shape(self, input_shape):
        spatial = [(size - pool) // stride + 1 for size, pool, stride
                   in zip(input_shape[1:-1], self.pool_size, self.strides)]
        return (input_shape[0], *spatial, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides}


def strided_max(x, axis: int, pool: int, stride: int):
    """x's max along `axis` over each window of `pool` every `stride`
    ("valid"), the pool size 1 or a multiple of the stride: every
    stride-th element, or the max over each tile of `stride` elements
    (`window_max`) and then over the pool // stride tiles each window
    spans (shifted slices: the gradient element-wise, where XLA's for an
    overlapping window max is a scatter)."""
    count = (x.shape[axis] - pool) // stride + 1
    if pool == 1:
        return along(x, axis, 0, count, stride)
    spans = pool // stride
    tiles = count + spans - 1
    x = along(x, axis, 0, tiles * stride)
    x = ops.reshape(x, (-1, *x.shape[1:axis], tiles, stride, *x.shape[axis + 1:]))
    tops = window_max(x, (axis + 1,))
    top = along(tops, axis, 0, count)
    for k in range(1, spans):
        top = ops.maximum(top, along(tops, axis, k, count))
    return top
