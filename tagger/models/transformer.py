"""Music Tagging Transformer (Won, Choi, Serra, ISMIR 2021).

"Semi-supervised Music Tagging Transformer". Reference code:
minzwon/semi-supervised-music-tagging-transformer (`src/models.py`,
`src/modules.py`; teacher conv_ndim 128 / attention_ndim 256, compact
student attention_ndim 64).

Architecture, on a log-mel image `(mel, time)`:
- `input_bn`: batch norm of the one-channel spectrogram.
- three residual blocks `block1..3`: conv 3x3 -> BN -> ReLU -> conv 3x3 ->
  BN, plus the shortcut (identity, or conv 3x3 + BN where the channels
  change, i.e. in block 1), ReLU, max-pool (2,2), (2,2), (2,1) in (mel,
  time): mel / 8, time / 4.
- `to_sequence` + `frontend_projection`: per time step, the (channels x
  mel/8) map flattened channel-major (as the original) and projected to
  `attention_ndim`.
- `cls_token` (learned), `positions` (learned, attention_max_len + 1
  rows), `sequence_dropout`.
- `encoder0..3`: pre-norm Transformer layers (layer norm epsilon 1e-5),
  `attention_heads` heads of width attention_ndim / heads (32 for the
  teacher, 8 for the student), query/key/value without bias, MLP 4x with
  exact GELU, dropout after the attention projection, after the GELU and
  after the MLP; no dropout on the attention probabilities.
- `cls_select`, `embedding` (layer norm of the [CLS] output), `tags`
  (dense sigmoid).

Parameters at the original's input, 128 mel bins x 431 frames (10 s at
22050 Hz, hop 512), trainable. Front end: input_bn 2; block 1: conv 1280 +
BN 256 + conv 147584 + BN 256 + shortcut conv 1280 + BN 256 = 150,912;
blocks 2 and 3: 2 x (147584 + 256) x 2 = 591,360; then with d =
attention_ndim and 16 x 128 = 2048 flattened features per step:
    projection 2048 d + d; [CLS] d; positions 513 d;
    per layer: 2 layer norms 4d, qkv 3d^2, out d^2 + d,
               MLP (4d^2 + 4d) + (4d^2 + d)      = 12 d^2 + 10 d;
    head: layer norm 2d, tags 50 d + 50.
Teacher d = 256: 742,274 + 524,544 + 256 + 131,328 + 4 x 788,992
    + 13,362 = 4,567,732.
Student d = 64: 742,274 + 131,136 + 64 + 32,832 + 4 x 49,792 + 3,378
    = 1,108,852.
(The counts do not depend on the number of frames; tests assert them.)

Log-mel: the paper already works at 22050 Hz: n_fft 1024, hop 512, 128
mel bins over 0-11025 Hz, 10*log10 of power with no top_db clamp
(torchaudio's AmplitudeToDB defaults); these are the defaults here.

Default window: 4 segments (236196 samples, 10.7 s, 464 frames, 116
tokens + [CLS]), the nearest whole number of segments to the paper's 10 s
training crops. Any window up to attention_max_len tokens (about 2048
frames, 17 segments) fits the position table.

STFT: per 59049-sample segment by default (`stft_over="segment"`, as the
records hold log-mel frames: 4 x 116 = 464 frames). The original computed
one STFT over its whole input crop; `stft_over="window"` does that (462
frames for 4 segments, 115 tokens), and the converted checkpoints use it
(`tagger.convert.transformer`).
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
from tagger.models.short_chunk import res_pool_block, spectrogram_image
from tagger.models.spectrogram_input import EMBEDDING_LAYER, Preprocessor

LOGMEL = LogMelConfig(n_mels=128, n_fft=1024, hop_length=512, f_min=0.0,
                      f_max=11025.0, top_db=None)
PREPROCESSOR = Preprocessor(LOGMEL, segments=4)
SIZES = {"teacher": 256, "student": 64}  # attention_ndim

# Residual blocks: max-pool (mel, time) after each; conv_ndim channels.
BLOCKS = ((2, 2), (2, 2), (2, 1))
LN_EPSILON = 1e-5


def build_transformer(num_tags=50, *, size="teacher", conv_ndim=128, attention_ndim=None,
                      attention_layers=4, attention_heads=8, attention_max_len=512,
                      dropout=0.1, **input_args) -> keras.Model:
    """Builds the Music Tagging Transformer.

    Args:
      num_tags: outputs of the `tags` layer (sigmoid, float32).
      input_args: the window and front end, as `PREPROCESSOR` (a
        `Preprocessor`) takes them; left out, the paper's.
      size: "teacher" (attention_ndim 256) or "student" (64, the paper's
        compact student); ignored when attention_ndim is given.
      conv_ndim: channels of the residual front end (128).
      attention_ndim: Transformer width; heads of width ndim / heads.
      attention_layers, attention_heads: 4 and 8.
      attention_max_len: longest token sequence without [CLS] (512).
      dropout: 0.1, on the token sequence and inside the encoder.

    The penultimate representation is `embedding` (the layer-normed [CLS]
    output).
    """
    if attention_ndim is None:
        if size not in SIZES:
            raise ValueError(
                f"size must be one of {tuple(SIZES)}, got {size!r}; or pass "
                "attention_ndim")
        attention_ndim = SIZES[size]
    if attention_ndim % attention_heads:
        raise ValueError(
            f"attention_ndim ({attention_ndim}) must be a multiple of "
            f"attention_heads ({attention_heads})")
    inputs, features = PREPROCESSOR(**input_args)
    frames, n_mels = features.shape[1], features.shape[2]
    if n_mels < 8:
        raise ValueError(
            f"the residual front end halves the mel axis three times and needs "
            f"at least 8 mel bins, got n_mels={n_mels}")
    tokens = frames // 4
    if not 1 <= tokens <= attention_max_len:
        raise ValueError(
            f"{frames} frames give {tokens} tokens (frames / 4); need 1 to "
            f"attention_max_len={attention_max_len}: use a window of 4 to "
            f"{4 * attention_max_len + 3} frames or raise attention_max_len")

    x = spectrogram_image(features)  # (batch, mel, time, 1)
    for b, pool in enumerate(BLOCKS, start=1):
        x = res_pool_block(x, b, conv_ndim, pool, relu="relu2")
    # (batch, mel / 8, time / 4, ch) -> (batch, time / 4, ch * mel / 8)
    x = keras.layers.Permute((2, 3, 1), name="time_first")(x)
    x = keras.layers.Reshape((tokens, conv_ndim * (n_mels // 8)), name="to_sequence")(x)
    x = keras.layers.Dense(attention_ndim, name="frontend_projection")(x)

    x = layers.ClsToken(initializer=keras.initializers.RandomNormal(stddev=1.0),
                        name="cls_token")(x)  # (batch, tokens + 1, ndim)
    x = layers.LearnedPositions(attention_max_len + 1, name="positions")(x)
    x = layers.PhiloxDropout(dropout, name="sequence_dropout")(x)
    for i in range(attention_layers):
        x, _ = layers.TransformerEncoderLayer(
            attention_heads, 4 * attention_ndim, norm_first=True, dropout=dropout,
            attention_dropout=0.0, activation_dropout=dropout, activation="gelu",
            layer_norm_epsilon=LN_EPSILON, use_qkv_bias=False, name=f"encoder{i}")(x)
    x = layers.SelectToken(0, name="cls_select")(x)
    x = keras.layers.LayerNormalization(epsilon=LN_EPSILON, name=EMBEDDING_LAYER)(x)
    return keras.Model(inputs, tags_output(x, num_tags), name="transformer")


FAMILY = FamilySpec(
    name="transformer", build=build_transformer, paper="Won, Choi, Serra 2021",
    preprocessor=PREPROCESSOR, analyses=("attention",),
    flags=(ModelFlag("size", "choice", "teacher (attention width 256) or student (64)",
                     choices=tuple(SIZES)),
           ModelFlag("conv_ndim", help="front-end channels", metavar="N"),
           ModelFlag("attention_ndim", help="encoder width (default: from --size)",
                     metavar="N"),
           ATTENTION_LAYERS_FLAG, ATTENTION_HEADS_FLAG),
    demo=Preset({"size": "student", "conv_ndim": 32}),
    tiny={"conv_ndim": 4, "attention_ndim": 16, "attention_layers": 2,
          "attention_heads": 2},
    bench=(BenchCase("transformer (teacher)", {"size": "teacher"}, 16),
           BenchCase("transformer (student)", {"size": "student"}, 16)),
)
