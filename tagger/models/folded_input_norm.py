"""The spectrogram's batch norm folded into the convolutions that read it,
for the training step under either backend (`tagger.models.training_graph`,
`tagger.models.xla_training_graph`).

The spectrogram taggers (musicnn, the self-attention tagger, the
transformer's front end, VGG, the multi-scale CNN) normalise their
one-channel log-mel image with a BatchNormalization, y = gamma * x^ + beta,
and convolve it. x^ (the log-mel, standardised) depends on no weight, so
the only gradients that reach the norm are those of gamma and beta; yet
TensorFlow and JAX compute every first convolution's full input gradient
(and its stacked taps' and paddings') to get them: a large part of the
package Musicnn's step (docs/performance.md, the "Training MFU, float32"
rows), and of Musicnn's under JAX.
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
from keras import ops

from tagger.models.layer_graph import calls, readers
from tagger.models.training_sums import BuiltWrapper, activation_of, update_moving_moments

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


def added_to_each_example(y, example):
    """`(batch, ...) + (1, ...)`: y plus `example` in every example, as the
    product of a column of ones and the example's row: the gradient's sum
    over the batch is then a matrix product, where XLA's CPU sum over the
    leading axis is far slower (docs/jax.md, "Which backend on a CPU")."""
    ones = ops.ones((ops.shape(y)[0], 1), y.dtype)
    return y + ops.reshape(ops.matmul(ones, ops.reshape(example, (1, -1))), ops.shape(y))


class Folding:
    """The part of a training form's `call_function` (for
    keras.models.clone_model) that folds `model`'s spectrogram norms:
    `call` returns a layer's output in the folded form, or None where the
    layer is not the form's to call. `convolve(conv)` gives `(x, kernel)
    -> conv's output without bias or activation`; `add_bias(y, bias)`
    adds a bias where a norm without beta leaves one, and
    `add_offset(y, offset)` the one-example offset of beta and the bias.
    `call(..., activated=False)` leaves the convolution's activation out."""

    def __init__(self, model, convolve, add_bias=ops.add, add_offset=added_to_each_example):
        self.norms = {id(layer) for layer in model.layers if folds(model, layer)}
        self.convolve, self.add_bias, self.add_offset = convolve, add_bias, add_offset
        self.images = {}  # id(standardised image) -> (its mask, the folded norm)

    def __bool__(self) -> bool:
        return bool(self.norms)

    def call(self, layer, args, kwargs, activated=True):
        if id(layer) in self.norms:
            image, mask = NormalizedImage(layer, name=f"{layer.name}_standard",
                                          dtype=layer.dtype_policy)(*args, **kwargs)
            self.images[id(image)] = (mask, layer)
            return image
        if not args or id(args[0]) not in self.images:
            return None
        mask, norm = self.images[id(args[0])]
        if isinstance(layer, PASS_THROUGH):
            image = layer(args[0])
            self.images[id(image)] = (layer(mask), norm)
            return image
        return FoldedNormConv(layer, norm, self.convolve(layer), self.add_bias, self.add_offset,
                              activated, name=f"{layer.name}_folded",
                              dtype=layer.dtype_policy)([args[0], mask])


class NormalizedImage(BuiltWrapper):
    """`(batch, ..., 1) -> [x^ (batch, ..., 1), mask (1, ..., 1)]`: the
    wrapped BatchNormalization's input standardised (by the batch's
    moments in training, updating the moving ones as Keras does; by the
    moving ones otherwise), without gradient, and an example of ones."""

    def call(self, x, training=None, mask=None):
        norm = self.layer
        x32 = ops.stop_gradient(ops.cast(x, "float32"))
        if training and norm.trainable:
            mean, variance = ops.moments(x32, list(range(len(x.shape) - 1)))
            update_moving_moments(norm, mean, variance)
        else:
            mean = ops.cast(norm.moving_mean, "float32")
            variance = ops.cast(norm.moving_variance, "float32")
        standard = (x32 - mean) * ops.rsqrt(variance + norm.epsilon)
        dtype = norm.compute_dtype
        return [ops.cast(standard, dtype), ops.ones_like(standard[:1], dtype)]

    def compute_output_shape(self, input_shape):
        return [input_shape, (1, *input_shape[1:])]


class FoldedNormConv(BuiltWrapper):
    """`[x^, mask] -> conv(y)` of the wrapped convolution, y the folded
    norm's output, computed as the module docstring says; `convolve(x,
    kernel)` is the convolution without bias (the training form's),
    `add_bias(y, bias)` and `add_offset(y, offset)` the form's additions
    of a bias and of a one-example offset; not `activated`: without the
    convolution's activation."""

    def __init__(self, layer, norm, convolve, add_bias=ops.add,
                 add_offset=added_to_each_example, activated=True, **kwargs):
        super().__init__(layer, **kwargs)
        self.norm, self.convolve = norm, convolve
        self.add_bias, self.add_offset = add_bias, add_offset
        self.activated = bool(activated)

    def call(self, inputs):
        standard, mask = inputs
        conv, norm = self.layer, self.norm
        kernel = ops.cast(conv.kernel, "float32")
        gamma = ops.cast(norm.gamma, "float32") if norm.scale else 1.0
        y = self.convolve(standard, ops.cast(gamma * kernel, standard.dtype))
        if norm.center:  # beta's term and the bias, one example wide: one addition
            beta = ops.cast(norm.beta, "float32")
            offset = ops.cast(self.convolve(mask, ops.cast(beta * kernel, mask.dtype)),
                              "float32")
            if conv.use_bias:
                offset += ops.cast(conv.bias, "float32")
            y = self.add_offset(y, ops.cast(offset, y.dtype))
        elif conv.use_bias:
            y = self.add_bias(y, ops.cast(conv.bias, y.dtype))
        return activation_of(conv, self.activated)(y)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape[0])
