"""The form of a model its training step runs under Keras's JAX backend:
the same layers and variables, in keras.ops forms whose gradients XLA's
CPU compiler turns into matrix products and element-wise passes.

- A Conv2D of one input channel, stride 1 (musicnn's timbral filters,
  VGG's and Won et al. 2020's first convolutions after the spectrogram's
  batch norm): XLA computes its input and filter gradients as
  convolutions with one channel on one side, far below the speed of a
  matrix product. `PatchesConv2D` stacks the input's kh x kw shifts as
  channels and multiplies them by the kernel's rows: its forward and
  backward passes are matrix products and shifted sums.
- A max pool whose windows tile its input (pool size = strides, "valid"):
  XLA's gradient of a window max is a select-and-scatter, lowered on the
  CPU to index arrays, a reduction over them and a scatter. `TiledMaxPool`
  reshapes the windows onto an axis of their own and takes the max over
  it: the gradient is element-wise.

Each form computes the layer's function exactly up to the order of the
float32 sums (a pool's gradient is shared among equal maxima, where the
pooling layer's goes to one of them). TensorFlow's step has forms of its
own (`tagger.models.training_graph`). What each gains: docs/jax.md.
"""

from __future__ import annotations

import keras
from keras import ops

from tagger.models.layer_graph import calls, layer_graph

# A PatchesConv2D holds kh * kw copies of its input: kernels of more taps
# than this keep the model's own convolution.
MAX_PATCH_TAPS = 512


def xla_training_model(model):
    """`model`, or a functional model of the same layers and variables in
    the forms of the module docstring; it computes the same function."""
    if layer_graph(model) is None:  # not functional
        return model
    once = [layer for layer in model.layers if calls(model, layer) == 1]
    patches = {id(layer) for layer in once if patches_in_training(layer)}
    pools = {id(layer) for layer in once if tiles_its_input(layer)}
    if not (patches or pools):
        return model

    def call(layer, *args, **kwargs):
        if id(layer) in patches:
            return PatchesConv2D(layer, name=f"{layer.name}_patches",
                                 dtype=layer.dtype_policy)(*args, **kwargs)
        if id(layer) in pools:
            return TiledMaxPool(layer.pool_size, name=f"{layer.name}_tiled",
                                dtype=layer.dtype_policy)(*args, **kwargs)
        return layer(*args, **kwargs)

    return keras.models.clone_model(model, clone_function=lambda layer: layer,
                                    call_function=call)


def patches_in_training(layer) -> bool:
    """Whether `layer` is a plain Conv2D that trains as `PatchesConv2D`: one
    input channel of known size, stride, dilation and groups 1, channels
    last, at most MAX_PATCH_TAPS kernel taps, a kernel of more than one."""
    if type(layer) is not keras.layers.Conv2D:
        return False
    shape = layer.input.shape
    rows, columns = layer.kernel_size
    return (shape[-1] == 1 and None not in shape[1:] and 1 < rows * columns <= MAX_PATCH_TAPS
            and tuple(layer.strides) == (1, 1) and tuple(layer.dilation_rate) == (1, 1)
            and layer.groups == 1 and layer.data_format == "channels_last")


def tiles_its_input(layer) -> bool:
    """Whether `layer` is a MaxPooling1D or 2D whose windows tile its input:
    pool size equal to the strides, "valid" padding, channels last."""
    if type(layer) not in (keras.layers.MaxPooling1D, keras.layers.MaxPooling2D):
        return False
    return (tuple(layer.pool_size) == tuple(layer.strides) and layer.padding == "valid"
            and layer.data_format == "channels_last")


def shifted_patches(x, rows: int, columns: int):
    """(batch, h, w, 1) -> (batch, h - rows + 1, w - columns + 1, rows *
    columns): channel i * columns + j holds x shifted by i rows and j
    columns (a stride-1 "valid" convolution's windows, row-major)."""
    height, width = x.shape[1] - rows + 1, x.shape[2] - columns + 1
    return ops.concatenate([x[:, i:i + height, j:j + width]
                            for i in range(rows) for j in range(columns)], axis=-1)


class PatchesConv2D(keras.layers.Wrapper):
    """`(batch, h, w, 1) -> (batch, h', w', filters)`: the wrapped Conv2D's
    output, as its input's shifted patches times its kernel's rows."""

    def build(self, input_shape):
        if not self.layer.built:
            self.layer.build(input_shape)
        self.built = True

    def call(self, x):
        conv = self.layer
        rows, columns = conv.kernel_size
        if conv.padding == "same":  # TensorFlow's: (k - 1) // 2 before, the rest after
            x = ops.pad(x, [(0, 0), ((rows - 1) // 2, rows // 2),
                            ((columns - 1) // 2, columns // 2), (0, 0)])
        kernel = ops.reshape(ops.cast(conv.kernel, x.dtype), (rows * columns, conv.filters))
        y = ops.matmul(shifted_patches(x, rows, columns), kernel)
        if conv.use_bias:
            y = y + ops.cast(conv.bias, y.dtype)
        return y if conv.activation is None else conv.activation(y)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)


class TiledMaxPool(keras.layers.Layer):
    """`(batch, *spatial, channels) -> (batch, *spatial // pool, channels)`:
    the max over each window of `pool_size` (one size per spatial axis)
    that tiles the input, a remainder left out as "valid" pooling leaves
    it."""

    def __init__(self, pool_size, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = tuple(int(p) for p in pool_size)

    def call(self, x):
        counts = [size // pool for size, pool in zip(x.shape[1:-1], self.pool_size)]
        kept = tuple(slice(0, n * pool) for n, pool in zip(counts, self.pool_size))
        x = x[(slice(None), *kept)]
        windows = [d for n, pool in zip(counts, self.pool_size) for d in (n, pool)]
        x = ops.reshape(x, (-1, *windows, x.shape[-1]))
        return ops.max(x, axis=tuple(range(2, 2 * len(counts) + 1, 2)))

    def compute_output_shape(self, input_shape):
        spatial = [size // pool for size, pool in zip(input_shape[1:-1], self.pool_size)]
        return (input_shape[0], *spatial, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size}
