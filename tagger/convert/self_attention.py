"""The self-attention tagger's released weights (Won, Chun, Serra 2019) ->
our `self_attention` model.

Source: minzwon/self-attention-music-tagging, `models/ponswon.pth`, a
PyTorch state dict of the `MTSA` module of `visualize/vismodel.py` (the
released variant: conv_channels 8, BERT embeddings with a learned table of
271 positions and a layer norm; the training code's `model.py` has the
paper's sinusoidal table instead). Keys may carry DataParallel's
`module.` prefix. Parameter names (training/front_end/pons_*.py,
training/back_end/bert_attention.py, visualize/vismodel.py):

    front_end.input_bn                      -> input_bn
    front_end.layers.{0..5}.conv / .bn      -> vertical{0..5}_conv / _bn
        (filters 86 and 38 mel bins high, widths 7/3/1)
    front_end.layers.{6..9}.conv / .bn      -> horizontal{0..3}_conv / _bn
        (Conv1d over the frequency-averaged input, lengths 165/129/65/33)
    front_end.conv1x1 / front_end.bn        -> frontend_projection / frontend_bn
    back_end.embedding.position_embeddings  -> positions (271 rows)
    back_end.embedding.LayerNorm            -> positions_norm
    back_end.encoder.layer.{i}.attention.self.{query,key,value}
                                            -> encoder{i}/attention/*_kernel, *_bias
    back_end.encoder.layer.{i}.attention.output.dense / .LayerNorm
                                            -> encoder{i}/attention/output_*, attention_norm
    back_end.encoder.layer.{i}.intermediate.dense -> encoder{i}/intermediate
    back_end.encoder.layer.{i}.output.dense / .LayerNorm
                                            -> encoder{i}/ffn_output, ffn_norm
    back_end.pooler.dense                   -> embedding (dense + tanh)
    classifier                              -> tags

The [CLS] vector is not in the file: the original draws it as
`np.random.seed(0); np.random.random((1, channels))` and never trains it;
`cls_vector` recomputes that draw.

Front end: the release was trained on librosa features computed offline
(preprocessing/mtat/preprocess.py): 16 kHz audio, `melspectrogram(n_fft
512, hop 256, 96 mels)` (Slaney mel scale and area norm, power 2, up to 8
kHz), then `amplitude_to_db` (20 log10 with floor 1e-5, top_db 80 below
the peak): `LOGMEL` below, at sample rate 16000. One 59049-sample segment
at 16 kHz (3.7 s) gives 231 frames; with [CLS] 232 of the 271 positions.
Tags: the MagnaTagATune top-50 by descending frequency.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tagger.config import LogMelConfig
from tagger.convert import mapping
from tagger.convert.converter import Converter
from tagger.convert.mapping import ConversionError, WeightMap

LOGMEL = LogMelConfig(n_mels=96, n_fft=512, hop_length=256, f_min=0.0, f_max=8000.0,
                      top_db=80.0, mel_scale="slaney", mel_norm="slaney", power=2.0,
                      db_multiplier=20.0, amin=1e-5)
SAMPLE_RATE = 16000
SEGMENTS = 1
HEADS = 8
VERTICAL, HORIZONTAL = 6, 4  # front_end.layers 0-5 and 6-9


def cls_vector(channels: int) -> np.ndarray:
    """The original's fixed [CLS]: numpy's legacy generator seeded with 0,
    `channels` uniform [0, 1) draws."""
    return np.random.RandomState(0).random_sample((1, channels))[0].astype(np.float32)


def default_tags():
    from tagger.datasets.mtt import MTT_TOP50

    return MTT_TOP50


def convert(path: str):
    """Returns (model, info) for `ponswon.pth` at `path`."""
    from tagger.models.self_attention import build_self_attention

    source = path.rsplit("/", 1)[-1]
    state = mapping.read_torch_file(path)  # DataParallel's prefix removed
    if "front_end.conv1x1.weight" not in state or "classifier.weight" not in state:
        raise ConversionError(
            f"{source} is not the self-attention tagger's weights (no "
            "'front_end.conv1x1.weight' / 'classifier.weight'); --from self_attention "
            "takes ponswon.pth")
    table = state.get("back_end.embedding.position_embeddings.weight")
    if table is None:
        raise ConversionError(
            f"{source} has no learned position table (back_end.embedding."
            "position_embeddings.weight): it is not the released variant "
            "(visualize/vismodel.py) that --from self_attention converts")
    channels = int(state["front_end.conv1x1.weight"].shape[0])
    concat = int(state["front_end.conv1x1.weight"].shape[1])
    if concat % 29:
        raise ConversionError(f"{source}: the front end gives {concat} channels, not 29 x "
                              "conv_channels")
    layers = len({k.split(".")[3] for k in state if k.startswith("back_end.encoder.layer.")})
    args = dict(num_tags=int(state["classifier.weight"].shape[0]), segments=SEGMENTS,
                conv_channels=concat // 29, attention_channels=channels,
                attention_layers=layers, attention_heads=HEADS, positions="learned",
                max_positions=int(table.shape[0]))
    if channels % HEADS or layers < 1:
        raise ConversionError(f"{source}: width {channels} with {layers} layers is not the "
                              "released 8-head encoder")
    model = build_self_attention(logmel=LOGMEL, sample_rate=SAMPLE_RATE, **args)
    weights = WeightMap(state, model, source)
    _map(weights, layers)
    weights.set_layer("cls_token", token=cls_vector(channels))
    weights.finish()
    info = dict(model="self_attention", model_args=args, sample_rate=SAMPLE_RATE,
                window_segments=SEGMENTS, logmel=dataclasses.asdict(LOGMEL),
                default_tags=default_tags())
    return model, info


def _map(weights: WeightMap, layers: int) -> None:
    mapping.batch_norm(weights, "input_bn", "front_end.input_bn")
    for i in range(VERTICAL + HORIZONTAL):
        ours = f"vertical{i}" if i < VERTICAL else f"horizontal{i - VERTICAL}"
        mapping.conv_bn(weights, ours, f"front_end.layers.{i}")
    mapping.conv(weights, "frontend_projection", "front_end.conv1x1")
    mapping.batch_norm(weights, "frontend_bn", "front_end.bn")
    weights.set_layer("positions", embeddings=weights.take(
        "back_end.embedding.position_embeddings.weight"))
    mapping.layer_norm(weights, "positions_norm", "back_end.embedding.LayerNorm")
    for i in range(layers):
        bert_layer(weights, f"encoder{i}", f"back_end.encoder.layer.{i}", HEADS)
    mapping.dense(weights, "embedding", "back_end.pooler.dense")
    mapping.dense(weights, "tags", "classifier")


def bert_layer(weights: WeightMap, layer_name: str, prefix: str, num_heads: int) -> None:
    """One BERT layer of pytorch-pretrained-BERT's key layout (`prefix`.attention.
    self.{query,key,value}, .attention.output.dense / .LayerNorm, .intermediate.
    dense, .output.dense / .LayerNorm) -> our TransformerEncoderLayer `layer_name`."""
    values = {}
    for part in ("query", "key", "value"):
        values[f"attention/{part}_kernel"] = mapping.heads(
            weights.take(f"{prefix}.attention.self.{part}.weight"), num_heads)
        values[f"attention/{part}_bias"] = mapping.heads_bias(
            weights.take(f"{prefix}.attention.self.{part}.bias"), num_heads)
    values["attention/output_kernel"] = mapping.heads_out(
        weights.take(f"{prefix}.attention.output.dense.weight"), num_heads)
    values["attention/output_bias"] = weights.take(f"{prefix}.attention.output.dense.bias")
    values["attention_norm/gamma"] = weights.take(f"{prefix}.attention.output.LayerNorm.weight")
    values["attention_norm/beta"] = weights.take(f"{prefix}.attention.output.LayerNorm.bias")
    values["intermediate/kernel"] = mapping.dense_kernel(
        weights.take(f"{prefix}.intermediate.dense.weight"))
    values["intermediate/bias"] = weights.take(f"{prefix}.intermediate.dense.bias")
    values["ffn_output/kernel"] = mapping.dense_kernel(
        weights.take(f"{prefix}.output.dense.weight"))
    values["ffn_output/bias"] = weights.take(f"{prefix}.output.dense.bias")
    values["ffn_norm/gamma"] = weights.take(f"{prefix}.output.LayerNorm.weight")
    values["ffn_norm/beta"] = weights.take(f"{prefix}.output.LayerNorm.bias")
    weights.set_layer(layer_name, **values)


CONVERTER = Converter("self_attention", convert, lambda options: tuple(default_tags()))
