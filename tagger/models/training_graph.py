"""The form of a model its training step runs: the same layers and
variables, its convolutions of one input channel computed as stacked taps.

A Conv2D of one input channel and a kernel taller than one row (musicnn's
timbral and temporal filters, VGG's first convolution) trains slowly on
CPU: its filter and input gradients have one channel to work on. Computed
as `InferenceConv2D`'s taps form (the input's time shifts stacked as
channels), the forward and backward passes of musicnn's timbral filters
run about four times faster. Kernels of `MIN_ROWS` rows or more only: with
3 rows (VGG's first convolution, the multi-scale CNN's and the
transformer's) the stacked form trained no faster, the multi-scale CNN's
slower. The form is exact up to the order of the float32 sums, and the
layers, their variables and the saved model stay those of the model.
"""

from __future__ import annotations

MIN_ROWS = 4  # kernel rows (time shifts stacked as channels)


def training_model(model):
    """`model`, or a functional model of the same layers and variables
    whose one-channel convolutions of `MIN_ROWS` rows or more are computed
    as stacked taps (see the module docstring); it computes the same function."""
    import keras

    from tagger.layers.inference_conv2d import InferenceConv2D, one_channel_stride_one

    if isinstance(model, keras.Sequential) or not hasattr(model, "_operations"):
        return model
    taps = {id(layer) for layer in model.layers
            if type(layer) is keras.layers.Conv2D and len(layer._inbound_nodes) == 1
            and one_channel_stride_one(layer, layer.input.shape)
            and layer.kernel_size[0] >= MIN_ROWS}
    if not taps:
        return model

    def call(layer, *args, **kwargs):
        if id(layer) in taps:
            return InferenceConv2D(layer, name=f"{layer.name}_taps",
                                   dtype=layer.dtype_policy)(*args)
        return layer(*args, **kwargs)

    return keras.models.clone_model(model, clone_function=lambda layer: layer,
                                    call_function=call)
