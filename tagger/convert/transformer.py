"""Music Tagging Transformer checkpoints (Won, Choi, Serra 2021) -> our
`transformer` model.

Source: minzwon/semi-supervised-music-tagging-transformer, `data/
teacher.ckpt` (conv_ndim 128, attention_ndim 256) and `data/
compact_student.ckpt` (attention_ndim 64). Both are PyTorch state dicts
whose keys are the `MusicTaggingTransformer` module's prefixed with
`network.`; the student file also carries the teacher it was trained from
as `teacher_network.*`, which is skipped. Parameter names (src/models.py,
src/modules.py):

    spec.spectrogram.window, spec.mel_scale.fb   torchaudio MelSpectrogram
        buffers: checked against our front end, not weights (a file saved
        without them gets the paper's settings, n_mels from frontend.fc)
    frontend.input_bn                            -> input_bn
    frontend.layer{1,2,3}.conv_1/bn_1/conv_2/bn_2 -> block{b}_conv1/bn1/conv2/bn2
    frontend.layer1.conv_3/bn_3                  -> block1_shortcut_conv/bn
    frontend.fc                                  -> frontend_projection
    cls_token (d,)                               -> cls_token
    pos_embedding (1, max_len + 1, d)            -> positions
    transformer.layers.{i}.0.fn.norm             -> encoder{i}/attention_norm
    transformer.layers.{i}.0.fn.fn.to_qkv (3 d, d), no bias: q, k, v in
        that order, each '(h d)' -> encoder{i}/attention/{query,key,value}_kernel
    transformer.layers.{i}.0.fn.fn.to_out.0      -> encoder{i}/attention/output_*
    transformer.layers.{i}.1.fn.norm             -> encoder{i}/ffn_norm
    transformer.layers.{i}.1.fn.fn.net.0 / .3    -> encoder{i}/intermediate / ffn_output
    mlp_head.0 (LayerNorm) / mlp_head.1          -> embedding / tags

Front end: torchaudio's MelSpectrogram (22050 Hz, n_fft 1024, hop 512,
HTK mel scale without normalisation over 0-11025 Hz, power 2) and
AmplitudeToDB() (10 log10, floor 1e-10, no top_db): `LOGMEL` below,
computed as the original did, one centred STFT over the whole input
(`stft_over="window"`; the models trained here take one per 59049-sample
segment). The original trained on 220500-sample crops (10 s, 431 frames)
and averaged 8 such crops per song at test time; ours takes 4 segments
(236196 samples, 10.7 s, 462 frames, 115 tokens), the whole-segment window
nearest to 10 s, so that eval.py can run it on raw records (whole
segments). The learned position table holds 513 rows, enough for both.
Tags: the CALS top-50 in `src/msd_config.py` order.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tagger.config import LogMelConfig
from tagger.convert import mapping
from tagger.convert.converter import Converter, Option
from tagger.convert.mapping import ConversionError, WeightMap
from tagger.datasets.msd.tags import CALS_TAGS  # src/msd_config.py order

LOGMEL = LogMelConfig(n_mels=128, n_fft=1024, hop_length=512, f_min=0.0, f_max=11025.0,
                      top_db=None, mel_scale="htk", mel_norm=None, power=2.0,
                      db_multiplier=10.0, amin=1e-10)
SAMPLE_RATE = 22050
SIZES = {"teacher": 256, "student": 64}  # attention_ndim of the released files
HEADS = 8
PREFIX = "network."
TEACHER_PREFIX = "teacher_network."



def convert(path: str, size: str | None = None, segments: int = 4):
    """Returns (model, info) for a teacher/student checkpoint at `path`."""
    from tagger.models.transformer import build_transformer

    source = path.rsplit("/", 1)[-1]
    state = mapping.read_torch_file(path)
    tensors = {k[len(PREFIX):]: v for k, v in state.items() if k.startswith(PREFIX)}
    if "cls_token" not in tensors or "frontend.fc.weight" not in tensors:
        raise ConversionError(
            f"{source} is not a Music Tagging Transformer checkpoint (no "
            f"'{PREFIX}cls_token' / '{PREFIX}frontend.fc.weight'); --from transformer "
            "takes teacher.ckpt or compact_student.ckpt")
    dim = int(tensors["cls_token"].shape[-1])
    found = next((name for name, d in SIZES.items() if d == dim), None)
    if size is not None and found != size:
        advice = f"pass --size {found}" if found else "not a released size: leave out --size"
        raise ConversionError(
            f"{source} holds a model of attention width {dim}, not the {size} "
            f"({SIZES[size]}); {advice}")
    conv_ndim = int(tensors["frontend.layer1.conv_1.weight"].shape[0]) \
        if "frontend.layer1.conv_1.weight" in tensors else 128
    layers = len({k.split(".")[2] for k in tensors if k.startswith("transformer.layers.")})
    max_len = int(tensors["pos_embedding"].shape[1]) - 1 if "pos_embedding" in tensors else 512
    num_tags = int(tensors["mlp_head.1.weight"].shape[0]) \
        if "mlp_head.1.weight" in tensors else len(CALS_TAGS)
    if dim % HEADS or layers < 1:
        raise ConversionError(f"{source}: attention width {dim} with {layers} layers is "
                              "not a Music Tagging Transformer of 8 heads")
    logmel = _front_end(tensors, source)
    args = dict(num_tags=num_tags, segments=segments, conv_ndim=conv_ndim,
                attention_ndim=dim, attention_layers=layers, attention_heads=HEADS,
                attention_max_len=max_len, stft_over="window")
    model = build_transformer(logmel=logmel, sample_rate=SAMPLE_RATE, **args)

    weights = WeightMap(state, model, source)
    weights.skip_prefix(TEACHER_PREFIX)  # the student file's teacher
    weights.skip(PREFIX + "spec.spectrogram.window")  # checked by _front_end
    weights.skip(PREFIX + "spec.mel_scale.fb")
    _map(weights, PREFIX, layers)
    weights.finish()
    info = dict(model="transformer", model_args=args, sample_rate=SAMPLE_RATE,
                window_segments=segments, logmel=dataclasses.asdict(logmel),
                size=found, default_tags=CALS_TAGS)
    return model, info


def _front_end(tensors: dict, source: str) -> LogMelConfig:
    """Our log-mel settings, checked against the torchaudio buffers the
    checkpoint stores (the Hann window and the mel filter bank)."""
    window = tensors.get("spec.spectrogram.window")
    bank = tensors.get("spec.mel_scale.fb")
    if window is None and bank is None:  # saved without buffers: the paper's settings
        fc = tensors.get("frontend.fc.weight")
        conv = tensors.get("frontend.layer1.conv_1.weight")
        if fc is None or conv is None or fc.shape[1] % conv.shape[0]:
            return LOGMEL
        return dataclasses.replace(LOGMEL, n_mels=8 * (fc.shape[1] // conv.shape[0]))
    if window is None or bank is None:
        raise ConversionError(f"{source} holds only one of the MelSpectrogram buffers "
                              "'network.spec.spectrogram.window' / 'network.spec.mel_scale.fb'")
    n_fft = len(window)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)  # periodic
    logmel = dataclasses.replace(LOGMEL, n_fft=n_fft, hop_length=n_fft // 2,
                                 n_mels=int(bank.shape[-1]))
    if bank.shape[0] != 1 + n_fft // 2 or not np.allclose(window, hann, atol=1e-6):
        raise ConversionError(f"{source}: the stored STFT window ({n_fft}) or mel filter "
                              f"bank {bank.shape} is not torchaudio's Hann/HTK front end")
    from tagger.layers.mel_filters import mel_filter_bank  # Keras: not for the tag lists

    ours = mel_filter_bank(SAMPLE_RATE, n_fft, logmel.n_mels, logmel.f_min, logmel.f_max,
                           scale="htk", norm=None)
    # torchaudio computes the bank in float32: up to ~2e-5 from ours on peaks of 1
    if np.abs(bank - ours).max() > 1e-4:
        raise ConversionError(
            f"{source}: the stored mel filter bank differs from the HTK bank over "
            f"0-11025 Hz at 22050 Hz (max difference {np.abs(bank - ours).max():.3g}); "
            "the file was trained with other spectrogram settings")
    return logmel


def _map(weights: WeightMap, p: str, layers: int) -> None:
    mapping.batch_norm(weights, "input_bn", f"{p}frontend.input_bn")
    for b in (1, 2, 3):  # block 1 (1 -> conv_ndim channels): the only one with a shortcut conv
        mapping.res_block(weights, f"block{b}", f"{p}frontend.layer{b}", shortcut=b == 1)
    mapping.dense(weights, "frontend_projection", f"{p}frontend.fc")
    weights.set_layer("cls_token", token=weights.take(f"{p}cls_token"))
    table = weights.take(f"{p}pos_embedding")
    weights.set_layer("positions", embeddings=None if table is None else table[0])
    for i in range(layers):
        _layer(weights, f"encoder{i}", f"{p}transformer.layers.{i}")
    mapping.layer_norm(weights, "embedding", f"{p}mlp_head.0")
    mapping.dense(weights, "tags", f"{p}mlp_head.1")


def _layer(weights: WeightMap, name: str, m: str) -> None:
    """One pre-norm layer: Residual(PreNorm(Attention)), Residual(PreNorm(FF))."""
    qkv = weights.take(f"{m}.0.fn.fn.to_qkv.weight")  # (3 inner, d): q, k, v
    q = k = v = None
    if qkv is not None:
        if qkv.shape[0] % 3:
            raise ConversionError(f"{weights.source}: {m}.0.fn.fn.to_qkv.weight has shape "
                                  f"{qkv.shape}; expected (3 x inner, dim)")
        q, k, v = np.split(qkv, 3, axis=0)
    weights.set_layer(
        name,
        **{"attention_norm/gamma": weights.take(f"{m}.0.fn.norm.weight"),
           "attention_norm/beta": weights.take(f"{m}.0.fn.norm.bias"),
           "attention/query_kernel": mapping.heads(q, HEADS),
           "attention/key_kernel": mapping.heads(k, HEADS),
           "attention/value_kernel": mapping.heads(v, HEADS),
           "attention/output_kernel": mapping.heads_out(
               weights.take(f"{m}.0.fn.fn.to_out.0.weight"), HEADS),
           "attention/output_bias": weights.take(f"{m}.0.fn.fn.to_out.0.bias"),
           "ffn_norm/gamma": weights.take(f"{m}.1.fn.norm.weight"),
           "ffn_norm/beta": weights.take(f"{m}.1.fn.norm.bias"),
           "intermediate/kernel": mapping.dense_kernel(weights.take(f"{m}.1.fn.fn.net.0.weight")),
           "intermediate/bias": weights.take(f"{m}.1.fn.fn.net.0.bias"),
           "ffn_output/kernel": mapping.dense_kernel(weights.take(f"{m}.1.fn.fn.net.3.weight")),
           "ffn_output/bias": weights.take(f"{m}.1.fn.fn.net.3.bias")})


CONVERTER = Converter(
    "transformer", convert, lambda options: tuple(CALS_TAGS),
    options=(Option("size", tuple(SIZES), help="teacher (width 256) or student (64) the "
                    "file must hold (default: read from the file)"),))
