"""Self-attention music tagger (Won, Chun, Serra 2019).

"Toward Interpretable Music Tagging with Self-Attention" (arXiv 1906.04972)
and its ICML 2019 workshop visualisation paper. Reference code:
minzwon/self-attention-music-tagging (`training/`, architecture
`pons_won`, trained with `--conv_channels 16`).

Architecture, on a log-mel image `(mel, time)`:
- `input_bn`: batch norm of the one-channel spectrogram.
- Pons front end, c = `conv_channels`. Vertical (timbral) filters span 90%
  and 40% of the mel bins (86 and 38 of 96, rounded down), widths 7/3/1
  with c/2c/4c channels, no padding along frequency ("same" along time),
  each followed by batch norm, ReLU and a max over the remaining
  frequency positions. Horizontal (temporal) filters of 165/129/65/33
  frames with c/2c/4c/8c channels run over the frequency-averaged input,
  each followed by batch norm and ReLU. Concatenation gives 14c + 15c =
  29c channels per frame.
- `frontend_projection`: 1x1 convolution to `attention_channels`, batch
  norm, ReLU.
- `cls_token`: a FIXED vector prepended to the sequence (the original draws
  it once from uniform [0, 1) and never trains it); `positions`:
  sinusoidal encodings, zero at the [CLS] position.
- `encoder0` .. `encoder{L-1}`: BERT layers (post-LN, layer norm epsilon
  1e-12, feed-forward 4x with exact GELU, `attention_dropout` on the
  attention probabilities and the hidden states).
- `embedding`: BERT pooler, dense `attention_channels` + tanh on the [CLS]
  output; `head_dropout` (0.5); `tags`: dense sigmoid.

Parameters at the original's size (96 mel bins x 256 frames, c = 16, 512
channels, 2 layers, 50 tags), trainable:
    input_bn 2; vertical 9680 + 8352 + 5696 + 4304 + 3744 + 2624;
    horizontal 2688 + 4224 + 4352 + 4608; projection 238080 + 1024
                                                  front end     289,378
    per encoder layer: q, k, v, out 4 x 262656, 2 layer norms 2048,
    FF 1050624 + 1049088 = 3,152,384; two layers             6,304,768
    pooler 262,656; tags 25,650                      total   6,882,452
(the count does not depend on the number of frames; tests assert it).

Log-mel mapping to 22050 Hz. The paper uses 16 kHz audio, n_fft 512 (32
ms), hop 256 (16 ms), 96 mel bins up to 8 kHz. We keep the durations:
n_fft 704 and hop 352 (31.9 ms, 15.96 ms), f_max 8000 Hz. Keeping the frame
rate keeps the musical meaning of the temporal filters (165 frames = 2.6
s) and of the attention length; keeping n_fft = 512 instead would shrink
them by 27%. The paper's features are librosa's `amplitude_to_db` applied
to a power spectrogram, i.e. 20*log10(power) clamped 80 dB below the clip's
peak: on our 10*log10(power) scale that is a 40 dB range, so `top_db=40`
(per 59049-sample segment here, per clip there). The input batch norm
absorbs the factor of 2.

Released variant (`visualize/vismodel.py`, the code the published
`ponswon.pth` loads into): conv_channels 8, and instead of the sinusoidal
table a learned position table (BERT embeddings: 271 rows, added to the
sequence, then layer norm with epsilon 1e-12 and dropout). Here
`positions="learned"` with `max_positions=271` adds `positions`
(`LearnedPositions`), `positions_norm` and `positions_dropout`; the
paper's sinusoidal table stays the default.

Default window: 2 segments (118098 samples, 5.36 s, 336 frames, 337
tokens with [CLS]). The paper trains on 256 frames = 4.1 s: 1.53 segments;
2 segments is the nearest whole number (1 would be 2.68 s, barely longer
than the 165-frame temporal filter), and the model accepts any length.

Attention: `tagger.models.attention.attention_model(model)` returns every
layer's attention scores; `override_model` / `tag_contributions` force the
last layer's attention (the paper's tag-wise contribution maps).
"""

from __future__ import annotations

from tagger.config import LogMelConfig
from tagger.models.family_spec import (
    ATTENTION_HEADS_FLAG,
    ATTENTION_LAYERS_FLAG,
    BenchCase,
    FamilySpec,
    ModelFlag,
    Preset,
)
from tagger.models.lazy import keras, layers
from tagger.models.parts import tags_output
from tagger.models.short_chunk import BN, spectrogram_image
from tagger.models.spectrogram_input import EMBEDDING_LAYER, Preprocessor

LOGMEL = LogMelConfig(n_mels=96, n_fft=704, hop_length=352, f_min=0.0,
                      f_max=8000.0, top_db=40.0)
PREPROCESSOR = Preprocessor(LOGMEL, segments=2)

# Vertical filters: (height as tenths of the mel bins, width in frames,
# channel multiplier of conv_channels).
VERTICAL = ((9, 7, 1), (9, 3, 2), (9, 1, 4), (4, 7, 1), (4, 3, 2), (4, 1, 4))
# Horizontal filters: (length in frames, channel multiplier).
HORIZONTAL = ((165, 1), (129, 2), (65, 4), (33, 8))
POSITIONS = ("sinusoidal", "learned")


def build_self_attention(num_tags=50, *, conv_channels=16,
                         attention_channels=512, attention_layers=2,
                         attention_heads=8, attention_dropout=0.4,
                         fc_dropout=0.5, positions="sinusoidal",
                         max_positions=271, **input_args) -> keras.Model:
    """Builds the self-attention tagger (Pons front end + BERT encoder).

    Args:
      num_tags: outputs of the `tags` layer (sigmoid, float32).
      input_args: the window and front end, as `PREPROCESSOR` (a
        `Preprocessor`) takes them; left out, the paper's.
      conv_channels: c; the front end gives 29c channels (16 in the paper's
        training scripts).
      attention_channels: encoder width (512); must divide by the heads.
      attention_layers, attention_heads: 2 and 8.
      attention_dropout: BERT's dropout on attention probabilities and
        hidden states. 0.4: the value the original training used (the
        command line default; the model class's own default is 0.1).
      fc_dropout: before `tags` (0.5).
      positions: "sinusoidal" (the paper's, fixed, zero at [CLS]) or
        "learned" (the released checkpoint's: a trained table of
        `max_positions` rows, then layer norm and dropout).
      max_positions: rows of the learned table, [CLS] included (271 in the
        release); the window must give at most max_positions - 1 frames.

    The penultimate representation is `embedding` (the BERT pooler output).
    """
    if positions not in POSITIONS:
        raise ValueError(f"positions must be one of {POSITIONS}, got {positions!r}")
    if attention_channels % attention_heads:
        raise ValueError(
            f"attention_channels ({attention_channels}) must be a multiple of "
            f"attention_heads ({attention_heads})")
    inputs, features = PREPROCESSOR(**input_args)
    frames, n_mels = features.shape[1], features.shape[2]
    if (4 * n_mels) // 10 < 1:
        raise ValueError(
            f"the vertical filters span 90% and 40% of the mel bins; need at "
            f"least 3 mel bins, got n_mels={n_mels}")
    if positions == "learned" and frames + 1 > max_positions:
        raise ValueError(
            f"{frames} frames and [CLS] need {frames + 1} positions but the learned "
            f"table has max_positions={max_positions}; use a shorter window")

    image = spectrogram_image(features)  # (batch, mel, time, 1)

    branches = []
    for i, (tenths, width, multiplier) in enumerate(VERTICAL):
        height = (tenths * n_mels) // 10
        y = image
        if width > 1:
            y = keras.layers.ZeroPadding2D(((0, 0), (width // 2, width // 2)),
                                           name=f"vertical{i}_pad")(y)
        y = keras.layers.Conv2D(conv_channels * multiplier, (height, width),
                                name=f"vertical{i}_conv")(y)
        y = keras.layers.BatchNormalization(name=f"vertical{i}_bn", **BN)(y)
        y = keras.layers.ReLU(name=f"vertical{i}_relu")(y)
        y = keras.layers.MaxPooling2D((n_mels - height + 1, 1),
                                      name=f"vertical{i}_pool")(y)  # (batch, 1, time, ch)
        branches.append(keras.layers.Reshape((frames, conv_channels * multiplier),
                                             name=f"vertical{i}_squeeze")(y))
    y = keras.layers.AveragePooling2D((n_mels, 1), name="horizontal_average")(image)
    averaged = keras.layers.Reshape((frames, 1), name="horizontal_squeeze")(y)
    for i, (length, multiplier) in enumerate(HORIZONTAL):
        y = keras.layers.Conv1D(conv_channels * multiplier, length, padding="same",
                                name=f"horizontal{i}_conv")(averaged)
        y = keras.layers.BatchNormalization(name=f"horizontal{i}_bn", **BN)(y)
        branches.append(keras.layers.ReLU(name=f"horizontal{i}_relu")(y))
    x = keras.layers.Concatenate(name="frontend_concat")(branches)  # (batch, time, 29c)
    x = keras.layers.Conv1D(attention_channels, 1, name="frontend_projection")(x)
    x = keras.layers.BatchNormalization(name="frontend_bn", **BN)(x)
    x = keras.layers.ReLU(name="frontend_relu")(x)  # (batch, time, channels)

    x = layers.ClsToken(initializer=keras.initializers.RandomUniform(0.0, 1.0, seed=0),
                        trainable=False, name="cls_token")(x)  # (batch, time + 1, channels)
    if positions == "sinusoidal":
        x = layers.SinusoidalPositions(zero_first=True, name="positions")(x)
    else:
        x = layers.LearnedPositions(max_positions, name="positions")(x)
        x = keras.layers.LayerNormalization(epsilon=1e-12, name="positions_norm")(x)
        x = layers.PhiloxDropout(attention_dropout, name="positions_dropout")(x)
    x = bert_pooled(x, attention_layers, attention_heads, attention_dropout, attention_dropout)
    return keras.Model(inputs, tags_output(x, num_tags, fc_dropout), name="self_attention")


def bert_pooled(x, num_layers, heads, dropout, attention_dropout):
    """`encoder0..`: BERT layers (post-LN, layer norm epsilon 1e-12,
    feed-forward 4 x width with exact GELU, `dropout` on the hidden states,
    `attention_dropout` on the attention probabilities), then BERT's
    pooler: `cls_select` and `embedding`, dense tanh on the [CLS] output:
    (batch, tokens, width) -> (batch, width)."""
    width = x.shape[-1]
    for i in range(num_layers):
        x, _ = layers.TransformerEncoderLayer(
            heads, 4 * width, norm_first=False, dropout=dropout,
            attention_dropout=attention_dropout, activation_dropout=0.0, activation="gelu",
            layer_norm_epsilon=1e-12, use_qkv_bias=True, name=f"encoder{i}")(x)
    x = layers.SelectToken(0, name="cls_select")(x)
    return keras.layers.Dense(width, activation="tanh", name=EMBEDDING_LAYER)(x)


FAMILY = FamilySpec(
    name="self_attention", build=build_self_attention, paper="Won, Chun, Serra 2019",
    preprocessor=PREPROCESSOR, analyses=("attention",),
    flags=(ModelFlag("conv_channels", help="front-end channel unit c", metavar="N"),
           ModelFlag("attention_channels", help="encoder width", metavar="N"),
           ATTENTION_LAYERS_FLAG, ATTENTION_HEADS_FLAG),
    demo=Preset({"conv_channels": 4, "attention_channels": 64, "attention_heads": 4,
                 "attention_dropout": 0.1}),
    tiny={"conv_channels": 2, "attention_channels": 16, "attention_layers": 2,
          "attention_heads": 2},
    bench=(BenchCase("self-attention", {}, 16),),
)
