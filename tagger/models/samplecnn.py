"""Sample-level CNN on raw waveforms (Kim, Lee, Nam, ICASSP 2018).

"Sample-level CNN architectures for music auto-tagging using raw
waveforms": a strided stem and nine blocks of 3-sample convolutions, each
followed by max-pooling by 3, turn 59049 samples (3^10, about 2.68 s at
22050 Hz) into one frame; a small head maps the (multi-level) pooled
features to tag probabilities. Four block types:

- basic: Conv1D(k3) -> BN -> ReLU -> MaxPool(3)
- se:    basic, then the pooled output scaled channel-wise by its
         squeeze-and-excitation vector
- res:   residual: Conv3 -> BN -> ReLU -> Dropout(0.2) -> Conv3 -> BN,
         added to the shortcut, ReLU, MaxPool(3)
- rese:  res with SE applied after the second BN, before the add

The layer sizes, initialisers and bias/regulariser placement follow the
authors' Keras code (tae-jun/resemul), so the paper models have the same
parameter counts as the published ones.

Layer names are API (interpretation code finds layers by name). Blocks are
numbered 0.. from the input side:

    waveform (Input, (batch, samples)), stem_reshape, stem_conv, stem_bn,
    stem_relu
    basic / se:  block{i}_conv, block{i}_bn, block{i}_relu, block{i}_pool
    res / rese:  block{i}_conv1, block{i}_bn1, block{i}_relu1,
                 block{i}_dropout, block{i}_conv2, block{i}_bn2,
                 block{i}_shortcut_conv, block{i}_shortcut_bn (only where
                 the channel count changes), block{i}_add, block{i}_relu,
                 block{i}_pool
    SE (se, rese): block{i}_se_squeeze (global average pool),
                 block{i}_se_expand (Dense C*alpha, ReLU),
                 block{i}_se_excite (Dense C, sigmoid: the excitation
                 vector, (batch, C)), block{i}_se_reshape,
                 block{i}_se_scale (Multiply)
    block output: block{i}_se_scale for "se", block{i}_pool otherwise
    aggregation: block{i}_global_max per aggregated block, `aggregate`
                 (Concatenate, multi only)
    head: head_dense, head_bn, head_relu, head_dropout, tags (output)

The clip embedding for downstream use is the output of `head_relu`
(batch, 1024) for multi, (batch, 512) otherwise, at width 1.0.
"""

from __future__ import annotations

import numbers

from tagger.config import SEGMENT_LENGTH
from tagger.models.family_spec import DROPOUT_FLAG, BenchCase, FamilySpec, ModelFlag, Preset
from tagger.models.lazy import keras, layers
from tagger.models.parts import tags_output
from tagger.models.spectrogram_input import Preprocessor

# One row per block, input side first: (channels, kernel, pool).
# Kim 2018 / resemul: 128 channels, doubled before the third and ninth block.
BLOCKS = (
    (128, 3, 3),
    (128, 3, 3),
    (256, 3, 3),
    (256, 3, 3),
    (256, 3, 3),
    (256, 3, 3),
    (256, 3, 3),
    (256, 3, 3),
    (512, 3, 3),
)
STEM_CHANNELS = 128
STEM_STRIDE = 3
BLOCK_TYPES = ("basic", "se", "res", "rese")
PREPROCESSOR = Preprocessor()  # raw 22050 Hz waveforms, one 3^10-sample segment
MIN_BLOCKS = 3  # multi-level aggregation reads the last three blocks
RESIDUAL_DROPOUT = 0.2


def valid_input_lengths() -> dict[int, int]:
    """Maps every supported input length to its number of blocks.

    A model with n blocks uses the LAST n rows of `BLOCKS` and takes
    STEM_STRIDE * (product of their pools) samples: 3^(n+1), i.e.
    81 (3 blocks) ... 59049 (9 blocks, the paper). Dropping rows from the
    input side removes the finest time scales, which a shorter input does
    not need, and keeps the top of the network (the aggregated blocks, the
    head and its width) as in the paper.
    """
    lengths = {}
    for num_blocks in range(MIN_BLOCKS, len(BLOCKS) + 1):
        length = STEM_STRIDE
        for _, _, pool in BLOCKS[len(BLOCKS) - num_blocks:]:
            length *= pool
        lengths[length] = num_blocks
    return lengths


def num_blocks_for(input_length: int) -> int:
    """Number of blocks for `input_length` samples; ValueError if unsupported."""
    lengths = valid_input_lengths()
    if isinstance(input_length, bool) or not isinstance(input_length, numbers.Integral) \
            or int(input_length) not in lengths:
        raise ValueError(
            f"input_length must be one of {sorted(lengths)} (3^(n+1) samples for "
            f"n = {MIN_BLOCKS}..{len(BLOCKS)} blocks; the paper uses "
            f"{SEGMENT_LENGTH}), got {input_length!r}")
    return lengths[int(input_length)]


def build_samplecnn(num_tags=50, block="se", multi=True, alpha=16, dropout=0.5,
                    weight_decay=0.0, input_length=SEGMENT_LENGTH,
                    width=1.0) -> keras.Model:
    """Sample-level CNN (Kim, Lee, Nam 2018): `(batch, input_length)` float32
    waveform in [-1, 1] -> `(batch, num_tags)` sigmoid probabilities.

    Args:
        num_tags: output units (50 for MagnaTagATune top-50).
        block: one of "basic", "se", "res", "rese".
        multi: multi-level aggregation: concatenate the global max pools of
            the last three blocks (256 + 256 + 512 = 1024 features);
            otherwise only the last block's (512).
        alpha: SE amplifying ratio: the SE hidden layer has C * alpha
            units (alpha > 1 widens it; 16 in the paper). Ignored by
            "basic" and "res".
        dropout: rate of the head's dropout before the output layer.
        weight_decay: L2 factor on every convolution kernel (as in
            resemul; dense layers are not regularised). Default 0: the paper
            code's 1e-6 "decay" was Keras's per-step learning-rate decay,
            not L2.
        input_length: 59049 (paper, 9 blocks) or a shorter 3^(n+1) using
            the last n blocks; see `valid_input_lengths`.
        width: multiplies every channel count (stem, blocks; SE and head
            widths follow). 1.0 is the paper; smaller for tests and demos.

    The output layer is float32 whatever the global dtype policy, so the
    model works under mixed precision.
    """
    if block not in BLOCK_TYPES:
        raise ValueError(
            f"unknown block {block!r}; valid blocks: {', '.join(BLOCK_TYPES)}")
    num_blocks = num_blocks_for(input_length)
    input_length = int(input_length)
    _check_positive("num_tags", num_tags, integer=True)
    _check_positive("width", width)
    _check_positive("alpha", alpha)
    if not isinstance(dropout, numbers.Real) or not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
    if not isinstance(weight_decay, numbers.Real) or weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay!r}")

    stem_channels = _scaled("width", STEM_CHANNELS, width)
    table = [(_scaled("width", c, width), k, p)
             for c, k, p in BLOCKS[len(BLOCKS) - num_blocks:]]
    use_se = block in ("se", "rese")
    if use_se:
        for channels, _, _ in table:
            _scaled("alpha", channels, alpha)
    regularizer = keras.regularizers.L2(weight_decay) if weight_decay > 0 else None

    waveform = PREPROCESSOR.waveform(input_length)
    x = keras.layers.Reshape((input_length, 1), name="stem_reshape")(waveform)
    x = keras.layers.Conv1D(
        stem_channels, 3, strides=STEM_STRIDE, padding="valid",
        kernel_initializer="he_uniform", kernel_regularizer=regularizer,
        name="stem_conv")(x)  # (batch, 19683, 128) for 59049 samples
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)

    outputs = []
    for i, (channels, kernel, pool) in enumerate(table):
        if block in ("basic", "se"):
            x = _basic_block(x, i, channels, kernel, pool, regularizer)
            if use_se:
                x = se_scale(x, i, channels, alpha)
        else:
            x = _residual_block(x, i, channels, kernel, pool, regularizer,
                                alpha if use_se else None)
        outputs.append(x)  # (batch, 6561, 128), (batch, 2187, 128), ... (batch, 1, 512)

    aggregated = outputs[-3:] if multi else outputs[-1:]
    first = len(outputs) - len(aggregated)
    pooled = [keras.layers.GlobalMaxPooling1D(name=f"block{first + j}_global_max")(h)
              for j, h in enumerate(aggregated)]
    if multi:
        x = keras.layers.Concatenate(name="aggregate")(pooled)  # (batch, 1024)
    else:
        x = pooled[0]  # (batch, 512)

    features = x.shape[-1]
    x = keras.layers.Dense(features, name="head_dense")(x)
    x = keras.layers.BatchNormalization(name="head_bn")(x)
    x = keras.layers.ReLU(name="head_relu")(x)  # the embedding
    name = f"samplecnn_{block}" + ("_multi" if multi else "")
    return keras.Model(waveform, tags_output(x, num_tags, dropout), name=name)


def _conv(x, name, channels, kernel, regularizer, initializer="he_uniform"):
    return keras.layers.Conv1D(
        channels, kernel, padding="same", kernel_initializer=initializer,
        kernel_regularizer=regularizer, name=name)(x)


def _basic_block(x, i, channels, kernel, pool, regularizer):
    """Conv -> BN -> ReLU -> MaxPool: (batch, T, C_in) -> (batch, T / pool, C)."""
    x = _conv(x, f"block{i}_conv", channels, kernel, regularizer)
    x = keras.layers.BatchNormalization(name=f"block{i}_bn")(x)
    x = keras.layers.ReLU(name=f"block{i}_relu")(x)
    return keras.layers.MaxPooling1D(pool, name=f"block{i}_pool")(x)


def se_scale(x, i, channels, alpha):
    """Multiplies `x` (batch, T, C) by its SE excitation (batch, C)."""
    s = keras.layers.GlobalAveragePooling1D(name=f"block{i}_se_squeeze")(x)  # (batch, C)
    s = keras.layers.Dense(round(channels * alpha), activation="relu",
                           name=f"block{i}_se_expand")(s)  # (batch, C * alpha)
    s = keras.layers.Dense(channels, activation="sigmoid",
                           name=f"block{i}_se_excite")(s)  # (batch, C)
    s = keras.layers.Reshape((1, channels), name=f"block{i}_se_reshape")(s)
    return keras.layers.Multiply(name=f"block{i}_se_scale")([x, s])


def _residual_block(x, i, channels, kernel, pool, regularizer, alpha):
    """Res (alpha None) or ReSE block: (batch, T, C_in) -> (batch, T / pool, C)."""
    if x.shape[-1] != channels:
        shortcut = _conv(x, f"block{i}_shortcut_conv", channels, 1, regularizer,
                         initializer="glorot_uniform")
        shortcut = keras.layers.BatchNormalization(name=f"block{i}_shortcut_bn")(shortcut)
    else:
        shortcut = x
    x = _conv(x, f"block{i}_conv1", channels, kernel, regularizer)
    x = keras.layers.BatchNormalization(name=f"block{i}_bn1")(x)
    x = keras.layers.ReLU(name=f"block{i}_relu1")(x)
    x = layers.PhiloxDropout(RESIDUAL_DROPOUT, name=f"block{i}_dropout")(x)
    x = _conv(x, f"block{i}_conv2", channels, kernel, regularizer)
    x = keras.layers.BatchNormalization(name=f"block{i}_bn2")(x)
    if alpha is not None:
        x = se_scale(x, i, channels, alpha)
    x = keras.layers.Add(name=f"block{i}_add")([shortcut, x])
    x = keras.layers.ReLU(name=f"block{i}_relu")(x)
    return keras.layers.MaxPooling1D(pool, name=f"block{i}_pool")(x)


def _check_positive(name, value, integer=False):
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
        what = "a positive integer" if integer else "a positive number"
        raise ValueError(f"{name} must be {what}, got {value!r}")


def _scaled(name, channels, factor):
    """round(channels * factor), which must be at least 1."""
    units = round(channels * factor)
    if units < 1:
        raise ValueError(
            f"{name}={factor!r} leaves {channels} channels with {units} units; "
            f"use {name} >= {1 / channels:g}")
    return units


FAMILY = FamilySpec(
    name="samplecnn", build=build_samplecnn, paper="Kim, Lee, Nam 2018",
    preprocessor=PREPROCESSOR, schedule="staged",
    flags=(ModelFlag("block", "choice", "block type", default="se",
                     choices=("se", "rese", "res", "basic")),
           ModelFlag("no_multi", "switch", "disable multi-level feature aggregation",
                     argument="multi"),
           ModelFlag("alpha", help="amplifying ratio of SE blocks", default=16, metavar="A"),
           ModelFlag("width", "positive_float", "channel width multiplier (1.0: the paper)",
                     default=1.0, metavar="W"),
           ModelFlag("weight_decay", "non_negative_float", "L2 weight decay on conv kernels",
                     default=0.0, metavar="WD"),
           DROPOUT_FLAG),
    embedding_layer="head_relu", int8=True, analyses=("excitations",),
    se_blocks=("se", "rese"), run_name_args=("block", "multi"),
    demo=Preset({"block": "rese", "multi": True, "alpha": 16, "width": 0.125},
                batch_size=8, lr=0.003, epochs=4),
    tiny={"block": "rese", "multi": True, "alpha": 2, "width": 1 / 16},
    bench=(BenchCase("SE+multi", {"block": "se", "multi": True}, 23, hand_flops=True),
           BenchCase("ReSE+multi", {"block": "rese", "multi": True}, 23, hand_flops=True)),
)
