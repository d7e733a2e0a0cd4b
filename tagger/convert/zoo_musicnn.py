"""Won et al. 2020's Musicnn (`training/model.py`, blocks Conv_V, Conv_H
and Conv_1d of `training/modules.py`) -> our `musicnn`.

Parameter names:

    spec_bn                          -> input_bn
    layers.0, layers.1 (Conv_V)      -> timbral1, timbral2 _conv / _bn
    layers.2 .. layers.4 (Conv_H)    -> temporal1 .. temporal3 _conv / _bn
    layer1 .. layer3 (Conv_1d)       -> backend1 .. backend3 _conv / _bn
    dense1 / bn / dense2             -> head_dense / head_bn / tags

The release builds it with `dataset=`: backend 512 and dense 500 for msd,
64 and 200 otherwise; both sizes (and the filter counts) are read from
the tensor shapes. Input as `training/main.py` crops it: 3 * 16000 =
48000 samples.
"""

from __future__ import annotations

from tagger.convert import mapping
from tagger.convert.mapping import shape
from tagger.convert.zoo import ZooModel, map_head

TIMBRAL, TEMPORAL, BACKEND = 2, 3, 3


def _args(state: dict) -> dict:
    return dict(num_tags=shape(state, "dense2.weight", 2)[0],
                timbral_filters=shape(state, "layers.0.conv.weight", 4)[0],
                temporal_filters=shape(state, "layers.2.conv.weight", 3)[0],
                backend_channels=shape(state, "layer1.conv.weight", 3)[0],
                dense_units=shape(state, "dense1.weight", 2)[0])


def _map(weights, args) -> None:
    mapping.batch_norm(weights, "input_bn", "spec_bn")
    ours = [f"timbral{j}" for j in range(1, TIMBRAL + 1)]
    ours += [f"temporal{j}" for j in range(1, TEMPORAL + 1)]
    for index, name in enumerate(ours):
        mapping.conv_bn(weights, name, f"layers.{index}")
    for i in range(1, BACKEND + 1):
        mapping.conv_bn(weights, f"backend{i}", f"layer{i}")
    map_head(weights)


ZOO = (
    ZooModel(
        family="musicnn", folder="musicnn", part="musicnn",
        title="Musicnn (Pons et al. 2018)", window=3 * 16000,
        approx_mb=3.1, msd_mb=32,  # 784,300 parameters (mtat, jamendo); msd 7,972,000
        holds=lambda s: "layers.0.conv.weight" in s and "dense2.weight" in s,
        args=_args, map=_map),
)
