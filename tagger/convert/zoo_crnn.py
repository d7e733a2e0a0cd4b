"""Won et al. 2020's CRNN (`training/model.py`, block Conv_2d of
`training/modules.py`) -> our `crnn`.

Parameter names:

    spec_bn                                  -> input_bn
    layer1 .. layer4 (Conv_2d) .conv / .bn   -> block{i}_conv / _bn
    layer5 (nn.GRU, 2 layers) *_l0 / *_l1    -> gru1 / embedding
    dense                                    -> tags

Input as `training/main.py` crops it: 29 * 16000 = 464000 samples.
"""

from __future__ import annotations

from tagger.convert import mapping
from tagger.convert.mapping import shape
from tagger.convert.zoo import ZooModel

BLOCKS = 4
GRU_LAYERS = ("gru1", "embedding")  # ours, for the original's layer5 l0, l1


def _args(state: dict) -> dict:
    return dict(num_tags=shape(state, "dense.weight", 2)[0],
                n_channels=shape(state, "layer1.conv.weight", 4)[0],
                rnn_units=shape(state, "layer5.weight_hh_l0", 2)[1])


def _map(weights, args) -> None:
    mapping.batch_norm(weights, "input_bn", "spec_bn")
    for i in range(1, BLOCKS + 1):
        mapping.conv_bn(weights, f"block{i}", f"layer{i}")
    for index, name in enumerate(GRU_LAYERS):
        mapping.gru(weights, name, "layer5", index)
    mapping.dense(weights, "tags", "dense")


ZOO = (
    ZooModel(
        family="crnn", folder="crnn", part="crnn",
        title="CRNN (Choi, Fazekas, Sandler, Cho 2017)", window=29 * 16000,
        approx_mb=1.6,  # 394,100 parameters
        holds=lambda s: "layer5.weight_ih_l0" in s and "layer4.conv.weight" in s,
        args=_args, map=_map),
)
