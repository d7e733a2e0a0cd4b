"""Won et al. 2020's ShortChunkCNN, ShortChunkCNN_Res and FCN
(`training/model.py`, blocks Conv_2d and Res_2d of `training/modules.py`)
-> our `short_cnn`, `short_res` and `fcn`.

Parameter names:

    spec_bn                                      -> input_bn
    ShortChunkCNN, FCN: layer{i}.conv / .bn      -> block{i}_conv / _bn
    ShortChunkCNN_Res: layer{i}.conv_1 / bn_1 / conv_2 / bn_2
                                                 -> block{i}_conv1 / bn1 / conv2 / bn2
                       layer{i}.conv_3 / bn_3    -> block{i}_shortcut_conv / _bn
    short chunk: dense1 / bn / dense2            -> head_dense / head_bn / tags
    FCN: dense                                   -> tags

Inputs as `training/main.py` crops them: 59049 samples (short chunk),
29 * 16000 = 464000 (FCN).
"""

from __future__ import annotations

from tagger.config import SEGMENT_LENGTH
from tagger.convert import mapping
from tagger.convert.zoo import ZooModel, channels_and_tags, map_head

SHORT_BLOCKS, FCN_BLOCKS = 7, 5
SHORT_CHUNK = SEGMENT_LENGTH


def _map_plain(blocks: int):
    def map_blocks(weights, args) -> None:
        mapping.batch_norm(weights, "input_bn", "spec_bn")
        for i in range(1, blocks + 1):
            mapping.conv_bn(weights, f"block{i}", f"layer{i}")
        if blocks == FCN_BLOCKS:
            mapping.dense(weights, "tags", "dense")
        else:
            map_head(weights)
    return map_blocks


def _map_res(weights, args) -> None:
    map_res_blocks(weights)
    map_head(weights)


def map_res_blocks(weights, blocks: int = SHORT_BLOCKS) -> None:
    """spec_bn and the Res_2d blocks layer1..`blocks` (always strided, so
    each has its conv_3 / bn_3 shortcut) -> input_bn and block{i}_*."""
    mapping.batch_norm(weights, "input_bn", "spec_bn")
    for i in range(1, blocks + 1):
        mapping.res_block(weights, f"block{i}", f"layer{i}")


ZOO = (
    ZooModel(
        family="short_res", folder="short_res", part="short-res",
        title="Short-chunk ResNet", window=SHORT_CHUNK, approx_mb=48,
        holds=lambda s: "layer1.conv_1.weight" in s and "dense2.weight" in s,
        args=channels_and_tags("layer1.conv_1.weight", 4, "dense2.weight"), map=_map_res),
    ZooModel(
        family="short_cnn", folder="short", part="short-cnn",
        title="Short-chunk CNN", window=SHORT_CHUNK, approx_mb=15,
        holds=lambda s: "layer7.conv.weight" in s and "dense2.weight" in s,
        args=channels_and_tags("layer1.conv.weight", 4, "dense2.weight"),
        map=_map_plain(SHORT_BLOCKS)),
    ZooModel(
        family="fcn", folder="fcn", part="fcn",
        title="FCN (Choi, Fazekas, Sandler 2016)", window=29 * 16000, approx_mb=1.8,
        holds=lambda s: ("layer5.conv.weight" in s and "dense.weight" in s
                         and "layer6.conv.weight" not in s),
        args=channels_and_tags("layer1.conv.weight", 4, "dense.weight"),
        map=_map_plain(FCN_BLOCKS)),
)
