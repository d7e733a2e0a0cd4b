"""A trained model rewritten for inference: the same scores, computed in a
form the CPU kernels run faster (tagger.layers.inference_conv2d, pooled_batch_norm).

    fast = inference_model(model)  # model itself when nothing applies

Two rewrites, each exact up to the order of float32 sums:

- a Conv2D of one input channel with a kernel taller than one row (the
  first convolution of a spectrogram model: musicnn's timbral and temporal
  filters, VGG's first 3 x 3) is computed with its time shifts as input
  channels, or for a tall kernel followed by a max over all frequencies,
  in polyphase form (`InferenceConv2D`);
- a ReLU Conv2D followed by a BatchNormalization and then a MaxPooling2D,
  each the only reader of the one before (the musicnn package's order, its
  Musicnn and VGG), becomes the convolution without its ReLU, its channels
  negated where the batch norm's scale is negative, the pooling (inside
  the convolution's layer when it takes the max over the whole width),
  then the ReLU and the batch norm on the pooled values (`PooledBatchNorm`).

The model's layers are shared, not copied (the rewritten model holds no
second set of weights), and every layer keeps its name except the
convolutions and batch norms rewritten (wrapped as `<name>_inference` and
`<name>_pooled`): the embedding layers engines read are found by name as
before. A model that is not a functional Keras model is returned as it is.
"""

from __future__ import annotations

INFERENCE_SUFFIX = "_inference"  # of the name of a rewritten convolution's layer


def inference_model(model):
    """`model`, or an equivalent functional model that runs faster (see the
    module docstring)."""
    import keras

    from tagger.models.layer_graph import layer_graph

    if layer_graph(model) is None:  # not functional
        return model
    taps, pooled = _rewrites(model)
    if not taps and not pooled:
        return model
    from tagger.layers.inference_conv2d import InferenceConv2D
    from tagger.layers.pooled_batch_norm import PooledBatchNorm, batch_norm_signs

    chains = {id(conv): (bn, pool) for conv, bn, pool in pooled}
    skipped = {id(bn) for _, bn, _ in pooled}  # applied after the pooling
    after_pool = {id(pool): (bn, _pools_width(conv, pool)) for conv, bn, pool in pooled}

    def call(layer, *args, **kwargs):
        key = id(layer)
        if key in skipped:
            return args[0]
        if key in chains or key in taps:
            bn, pool = chains.get(key, (None, None))
            return InferenceConv2D(layer, signs=batch_norm_signs(bn) if bn else None,
                                   pool_width=bool(pool) and _pools_width(layer, pool),
                                   name=f"{layer.name}{INFERENCE_SUFFIX}",
                                   dtype=layer.dtype_policy)(*args)
        if key in after_pool:
            bn, inside = after_pool[key]
            y = args[0] if inside else layer(*args, **kwargs)  # pooled by the conv's layer
            return PooledBatchNorm(bn, batch_norm_signs(bn), name=f"{bn.name}_pooled",
                                   dtype=bn.dtype_policy)(y)
        return layer(*args, **kwargs)

    return keras.models.clone_model(model, clone_function=lambda layer: layer,
                                    call_function=call)


def image_convolutions(model) -> tuple[str, ...]:
    """The names of the layers of `model` (an `inference_model`) that
    compute a convolution of one input channel, as stacked taps or in
    polyphase form: the convolutions over a log-mel image (musicnn's
    timbral and temporal filters, VGG's first), not those of several
    channels rewritten with their batch norm after the pooling."""
    from tagger.layers.inference_conv2d import InferenceConv2D

    return tuple(layer.name for layer in model.layers
                 if isinstance(layer, InferenceConv2D) and layer.form != "conv")


def _rewrites(model):
    """(ids of the Conv2D layers of one input channel to compute as taps or
    polyphase,
    [(conv, batch norm, pooling)] of the conv-ReLU, batch norm, max pooling
    chains to reorder) in `model`."""
    import keras

    from tagger.layers.inference_conv2d import one_channel_stride_one
    from tagger.models.layer_graph import calls, only_reader

    taps, pooled = set(), []
    for layer in model.layers:
        if not isinstance(layer, keras.layers.Conv2D) or type(layer) is not keras.layers.Conv2D:
            continue
        if calls(model, layer) != 1:
            continue  # a shared layer: left as it is
        if one_channel_stride_one(layer, layer.input.shape):
            taps.add(id(layer))
        bn = only_reader(model, layer)
        pool = only_reader(model, bn) if bn is not None else None
        if (layer.activation is keras.activations.relu
                and type(bn) is keras.layers.BatchNormalization and bn.axis in (-1, 3)
                and type(pool) is keras.layers.MaxPooling2D):
            pooled.append((layer, bn, pool))
    return taps, pooled


def _pools_width(conv, pool) -> bool:
    """Whether `pool` (a MaxPooling2D) takes the max over the whole width of
    `conv`'s output, frame by frame."""
    width = conv.output.shape[2]
    return (tuple(pool.pool_size) == (1, width) and tuple(pool.strides) in ((1, width), (1, 1))
            and pool.padding == "valid" and pool.data_format == "channels_last")
