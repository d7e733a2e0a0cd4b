"""Won et al. 2020's CNNSA (`training/model.py`; Res_2d of
`training/modules.py`, BertEncoder and BertPooler of
`training/attention_modules.py`) -> our `cnnsa`.

Parameter names:

    spec_bn, layer{i}.conv_1 ... bn_3 (i = 1..7)   -> as short_res's
                                                    (`zoo_short_chunk.map_res_blocks`)
    encoder.layer.{j}.attention / intermediate / output (j = 0, 1)
                                                 -> encoder{j} (`self_attention.bert_layer`)
    pooler.dense                                 -> embedding (dense + tanh)
    dense                                        -> tags

The [CLS] vector is not in the file: the original draws it with
`np.random.seed(0); np.random.random((1, 256))` and never trains it
(`self_attention.cls_vector`). The heads are not in the file either: the
original's BertConfig has 8. The spectrogram front end is checked as the
other mel models' (`zoo.mel_front_end`). Input as `training/main.py`
crops it: 15 * 16000 = 240000 samples.
"""

from __future__ import annotations

from tagger.convert import mapping
from tagger.convert.mapping import ConversionError, shape
from tagger.convert.self_attention import bert_layer, cls_vector
from tagger.convert.zoo import ZooModel
from tagger.convert.zoo_short_chunk import map_res_blocks

HEADS = 8  # BertConfig(num_attention_heads=8)
BLOCKS = 7
PREFIX = "encoder.layer."


def _args(state: dict) -> dict:
    layers = len({k[len(PREFIX):].split(".")[0] for k in state if k.startswith(PREFIX)})
    width = shape(state, "pooler.dense.weight", 2)[0]
    if width % HEADS or layers < 1:
        raise ConversionError(f"the file's encoder has {layers} layers of width {width}, not "
                              f"the original's layers of {HEADS} heads; is it CNNSA's "
                              "best_model.pth?")
    return dict(num_tags=shape(state, "dense.weight", 2)[0],
                n_channels=shape(state, "layer1.conv_1.weight", 4)[0],
                attention_layers=layers, attention_heads=HEADS)


def _map(weights, args) -> None:
    map_res_blocks(weights, BLOCKS)
    for j in range(args["attention_layers"]):
        bert_layer(weights, f"encoder{j}", f"{PREFIX}{j}", HEADS)
    mapping.dense(weights, "embedding", "pooler.dense")
    mapping.dense(weights, "tags", "dense")
    width = weights.model.get_layer("embedding").units
    weights.set_layer("cls_token", token=cls_vector(width))


ZOO = (
    ZooModel(
        family="cnnsa", folder="attention", part="cnnsa",
        title="CNNSA: short-chunk ResNet front end + self-attention (Won et al. 2019)",
        window=15 * 16000, approx_mb=42,  # 10,521,652 parameters
        holds=lambda s: "pooler.dense.weight" in s and "layer1.conv_1.weight" in s,
        args=_args, map=_map),
)
