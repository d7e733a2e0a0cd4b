"""resemul's published models (Kim, Lee, Nam 2018) -> our `samplecnn`.

Source: tae-jun/resemul, `se-multi-auc_0.9111-tfrmodel.hdf5` and
`rese-multi-auc_0.9113-tfrmodel.hdf5`: whole models saved by Keras 2.0.5's
ModelCheckpoint. Layout: group `model_weights` (or the file root for
`save_weights` files) with attribute `layer_names`; one group per layer
with attribute `weight_names` (e.g. `conv1d_3/kernel:0`). Keras 2 names
layers by class and creation order (conv1d_1, batch_normalization_1,
dense_1, ...), so the mapping follows resemul's `model.py` creation order,
per class:

    stem:  Conv1D(k3, stride 3), BN
    se block:   Conv1D(k3), BN, Dense(C x alpha, relu), Dense(C, sigmoid)
    rese block: [shortcut Conv1D(k1), BN where channels change: created
                first], Conv1D(k3), BN, Conv1D(k3), BN, Dense, Dense
    head:  Dense(features), BN, Dense(50, sigmoid)

Kernels are already Keras layouts (Conv1D (k, in, out), Dense (in, out));
batch norms hold gamma, beta, moving_mean, moving_variance with Keras's
epsilon 1e-3 in both versions. Layer numbers need not start at 1 (a
process that built other models first); their order is what counts.
Input: raw 22050 Hz waveforms, 59049 samples. Tags: the MagnaTagATune
top-50 in ascending frequency (`sort_values().tail(50)` in
data/preprocessing/annotation_processing.py).
"""

from __future__ import annotations

import re

from tagger.convert.converter import Converter, Option
from tagger.convert.mapping import ConversionError, WeightMap

BLOCK_CHANNELS = (128, 128, 256, 256, 256, 256, 256, 256, 512)  # width 1.0
STEM = 128
_NAME = re.compile(r"^(conv1d|batch_normalization|dense)_(\d+)$")
_WEIGHTS = {"conv1d": ("kernel", "bias"),
            "batch_normalization": ("gamma", "beta", "moving_mean", "moving_variance"),
            "dense": ("kernel", "bias")}


def default_tags():
    from tagger.datasets.mtt import MTT_TOP50

    return tuple(reversed(MTT_TOP50))


def read_keras2_file(path: str) -> dict:
    """{layer name: {weight name: array}} of a Keras 2 HDF5 model or weights file."""
    import h5py

    source = path.rsplit("/", 1)[-1]
    try:
        handle = h5py.File(path, "r")
    except FileNotFoundError:
        from tagger.errors import UserError

        raise UserError(f"{path!r} not found") from None
    except OSError:
        raise ConversionError(f"{source} is not an HDF5 file; --from resemul takes the "
                              "published Keras 2 .hdf5 model") from None
    with handle:
        group = handle["model_weights"] if "model_weights" in handle else handle
        if "layer_names" not in group.attrs:
            raise ConversionError(f"{source} is an HDF5 file but not a Keras model (no "
                                  "layer_names); --from resemul takes the published .hdf5")
        layers = {}
        for raw in group.attrs["layer_names"]:
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            names = [n.decode() if isinstance(n, bytes) else str(n)
                     for n in group[name].attrs.get("weight_names", [])]
            if names:
                layers[name] = {n.rsplit("/", 1)[-1].split(":")[0]: group[name][n][()]
                                for n in names}
    return layers


def our_order(block: str, num_blocks: int = 9) -> dict:
    """Our layer names with weights, per Keras 2 class, in resemul's
    creation order."""
    order = {"conv1d": ["stem_conv"], "batch_normalization": ["stem_bn"], "dense": []}
    channels = STEM
    for i, c in enumerate(BLOCK_CHANNELS[-num_blocks:]):
        if block == "se":
            order["conv1d"].append(f"block{i}_conv")
            order["batch_normalization"].append(f"block{i}_bn")
        else:
            if c != channels:
                order["conv1d"].append(f"block{i}_shortcut_conv")
                order["batch_normalization"].append(f"block{i}_shortcut_bn")
            order["conv1d"] += [f"block{i}_conv1", f"block{i}_conv2"]
            order["batch_normalization"] += [f"block{i}_bn1", f"block{i}_bn2"]
        order["dense"] += [f"block{i}_se_expand", f"block{i}_se_excite"]
        channels = c
    order["batch_normalization"].append("head_bn")
    order["dense"] += ["head_dense", "tags"]
    return order


def convert(path: str, block: str | None = None):
    """Returns (model, info) for a resemul .hdf5 at `path`."""
    from tagger.models.samplecnn import build_samplecnn

    source = path.rsplit("/", 1)[-1]
    layers = read_keras2_file(path)
    others = sorted(name for name in layers if not _NAME.match(name))
    if others:
        raise ConversionError(f"{source} has layers resemul's models do not: "
                              f"{', '.join(others[:4])}; is it the right file?")
    numbered = sorted((match.group(1), int(match.group(2)), name) for name in layers
                      if (match := _NAME.match(name)))
    by_class = {key: [name for kind, _, name in numbered if kind == key]
                for key in _WEIGHTS}  # each class in creation order
    convs = len(by_class["conv1d"])
    found = {10: "se", 21: "rese"}.get(convs)
    if found is None:
        raise ConversionError(f"{source} has {convs} Conv1D layers; the published SE+multi "
                              "has 10 and ReSE+multi 21")
    if block is not None and block != found:
        raise ConversionError(f"{source} holds a {found} model ({convs} Conv1D layers), not "
                              f"{block}; pass --block {found}")
    stem = layers[by_class["conv1d"][0]]["kernel"]
    width = stem.shape[-1] / STEM
    head = layers[by_class["dense"][-1]]["kernel"] if by_class["dense"] else None
    if head is None or stem.shape[:2] != (3, 1):
        raise ConversionError(f"{source} does not start with the 3-sample stem convolution "
                              "or lacks the output layer; is it a resemul model?")
    expand = layers[by_class["dense"][0]]["kernel"]
    alpha = expand.shape[1] / expand.shape[0]
    args = dict(num_tags=int(head.shape[-1]), block=found, multi=True,
                alpha=int(alpha) if alpha == int(alpha) else alpha, width=width)
    try:
        model = build_samplecnn(**args)
    except ValueError as error:
        raise ConversionError(f"{source}: stem of {stem.shape[-1]} channels and SE ratio "
                              f"{alpha:g} do not give a resemul model ({error})") from None

    tensors = {f"{layer}/{w}": v for layer, ws in layers.items() for w, v in ws.items()}
    weights = WeightMap(tensors, model, source)
    order = our_order(found)
    for key, ours in order.items():
        theirs = by_class[key]
        if len(theirs) != len(ours):
            raise ConversionError(f"{source} has {len(theirs)} {key} layers, a {found}+multi "
                                  f"model has {len(ours)}")
        for our_name, their_name in zip(ours, theirs):
            weights.set_layer(our_name, **{w: weights.take(f"{their_name}/{w}")
                                           for w in _WEIGHTS[key]})
    weights.finish()
    info = dict(model="samplecnn", model_args=args, sample_rate=22050, window_segments=1,
                logmel=None, default_tags=default_tags())
    return model, info


CONVERTER = Converter(
    "resemul", convert, lambda options: tuple(default_tags()),
    options=(Option("block", ("se", "rese"), help="the block type the file must hold "
                    "(default: read from the file)"),))
