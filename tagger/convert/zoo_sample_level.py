"""Won et al. 2020's SampleCNN and SampleCNNSE (`training/model.py`, blocks
Conv_1d and ResSE_1d of `training/modules.py`) -> our `sample_level` and
`sample_level_se`.

Parameter names (i = 1..11 in both):

    SampleCNN: layer{i}.conv / .bn            -> block{i}_conv / _bn
               dense                          -> tags
    SampleCNNSE: layer{i}.conv_1 / bn_1 / conv_2 / bn_2
                                              -> block{i}_conv1 / bn1 / conv2 / bn2
                 layer{i}.dense1 / dense2 (SE) -> block{i}_se_expand / _se_excite
                 layer{i}.conv_3 / bn_3       -> block{i}_shortcut_conv / _bn (layers
                                                 1, 4 and 10: stride or channels change)
                 dense1 / bn / dense2         -> head_dense / head_bn / tags

Raw waveforms: no front end, no buffers beside the batch norms'. Input as
`training/main.py` crops it: 59049 samples at 16 kHz.
"""

from __future__ import annotations

from tagger.config import SEGMENT_LENGTH
from tagger.convert import mapping
from tagger.convert.zoo import ZooModel, channels_and_tags, map_head

LAYERS = 11
INPUT_LENGTH = SEGMENT_LENGTH


def _raw_front_end(state: dict, source: str, spec):
    """A waveform model: no front-end keywords, no buffers to check."""
    return {}, ()


def _map_conv(weights, args) -> None:
    for i in range(1, LAYERS + 1):
        mapping.conv_bn(weights, f"block{i}", f"layer{i}")
    mapping.dense(weights, "tags", "dense")


def _map_res_se(weights, args) -> None:
    ours = {layer.name for layer in weights.model.layers}
    for i in range(1, LAYERS + 1):
        mapping.res_block(weights, f"block{i}", f"layer{i}",
                          shortcut=f"block{i}_shortcut_conv" in ours)
        mapping.dense(weights, f"block{i}_se_expand", f"layer{i}.dense1")
        mapping.dense(weights, f"block{i}_se_excite", f"layer{i}.dense2")
    map_head(weights)


ZOO = (
    ZooModel(
        family="sample_level_se", folder="se", part="sample-level-se",
        title="Sample-level CNN + SE (Kim, Lee, Nam 2018)", window=INPUT_LENGTH,
        approx_mb=28,  # 6,951,858 parameters
        holds=lambda s: "layer11.conv_1.weight" in s and "layer1.dense1.weight" in s,
        args=channels_and_tags("layer1.conv_1.weight", 3, "dense2.weight"), map=_map_res_se,
        front_end=_raw_front_end),
    ZooModel(
        family="sample_level", folder="sample", part="sample-level",
        title="Sample-level CNN (Lee et al. 2017)", window=INPUT_LENGTH,
        approx_mb=7.5,  # 1,869,874 parameters
        holds=lambda s: "layer11.conv.weight" in s and "dense.weight" in s,
        args=channels_and_tags("layer1.conv.weight", 3, "dense.weight"), map=_map_conv,
        front_end=_raw_front_end),
)
