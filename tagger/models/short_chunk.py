"""Short-chunk CNNs on log-mel spectrograms (Won, Ferraro, Bogdanov, Serra,
SMC 2020), shared by the `short_cnn` and `short_res` families.

"Evaluation of CNN-based automatic music tagging models". Reference code:
minzwon/sota-music-tagging-models, `training/model.py` (ShortChunkCNN,
ShortChunkCNN_Res) and `training/modules.py` (Conv_2d, Res_2d); input
lengths from `training/main.py`. The two models differ only in their
block, so one table and one head serve both:

- front end: 16 kHz audio, torchaudio's MelSpectrogram (n_fft 512, hop
  256, periodic Hann, centred with reflect padding, power 2, HTK mel scale,
  no norm, 0-8000 Hz, 128 bins) and AmplitudeToDB (10 log10(max(x,
  1e-10)), no top_db): `LOGMEL` at sample rate 16000; then `input_bn`,
  a batch norm of the one-channel image `(mel, time, 1)`.
- seven blocks, channels `n_channels` x (1, 1, 2, 2, 2, 2, 4) = 128, 128,
  256, 256, 256, 256, 512, each halving mel and time:
  "conv" (ShortChunkCNN): conv 3x3 'same' -> BN -> ReLU -> max-pool 2x2;
  "res" (ShortChunkCNN_Res): conv 3x3 stride 2 -> BN -> ReLU -> conv 3x3
  -> BN, plus the shortcut conv 3x3 stride 2 -> BN (stride 2: always),
  add, ReLU. Strided convolutions pad one row and column on each side as
  PyTorch's `padding=1` does (Keras's 'same' pads only after on even
  sizes), so an even size n gives n / 2 and an odd one (n + 1) / 2.
- the original squeezes the mel axis (one bin left) and max-pools over the
  frames left when there is more than one: `global_max`, a max over mel and
  time, computes that, and any input size reaches it.
- head: `head_dense` (width of the last block) -> `head_bn` -> `embedding`
  (ReLU; the clip embedding) -> `head_dropout` (0.5) -> `tags` (sigmoid).

PyTorch is channels-first `(batch, ch, mel, time)`; here the image is
`(batch, mel, time, ch)` with mel first, so a PyTorch pooling `(a, b)` is
`(a, b)` here too. Batch norms use PyTorch's epsilon 1e-5 and momentum 0.1
(Keras momentum 0.9).

The paper's input is 59049 samples at 16 kHz (3.69 s): 231 frames x 128
bins. The plain CNN pools it to 1 x 1, the residual one to 1 x 2 (ceil
halving: 231 -> 116 -> 58 -> 29 -> 15 -> 8 -> 4 -> 2). A pooling larger
than what is left (short windows, few mel bins) pools all of it, as
PyTorch 1.x's oversized kernels did; at the paper's input no pooling is
clamped.

Counts at 50 tags and n_channels 128 (tests assert them; equal to the
original's): ShortChunkCNN 3,687,348 trainable, 4,610 batch-norm
statistics; ShortChunkCNN_Res 12,104,244 and 11,778.

Layer names (blocks numbered 1..7 as the original's `layer1..7`):
    waveform or log_mel (input), log_mel (LogMel, raw input), transpose,
    to_image, input_bn;
    conv: block{i}_conv, block{i}_bn, block{i}_relu, block{i}_pool;
    res: block{i}_pad, block{i}_conv1, block{i}_bn1, block{i}_relu1,
         block{i}_conv2, block{i}_bn2, block{i}_shortcut_conv,
         block{i}_shortcut_bn, block{i}_add, block{i}_relu;
    global_max, head_dense, head_bn, embedding, head_dropout, tags.
"""

from __future__ import annotations

from tagger.config import LogMelConfig
from tagger.models.family_spec import DROPOUT_FLAG, N_CHANNELS_FLAG, BenchCase, FamilySpec, Preset
from tagger.models.lazy import keras
from tagger.models.parts import check_arguments, tags_output
from tagger.models.spectrogram_input import EMBEDDING_LAYER, Preprocessor

LOGMEL = LogMelConfig(n_mels=128, n_fft=512, hop_length=256, f_min=0.0, f_max=8000.0,
                      top_db=None, mel_scale="htk", power=2.0, db_multiplier=10.0,
                      amin=1e-10)
SAMPLE_RATE = 16000
# one 59049-sample chunk at 16 kHz, as training/main.py crops
PREPROCESSOR = Preprocessor(LOGMEL, sample_rate=SAMPLE_RATE)
N_CHANNELS = 128
# One row per block, input side first: channels in units of n_channels.
BLOCKS = (1, 1, 2, 2, 2, 2, 4)
BLOCK_TYPES = ("conv", "res")
POOL = 2  # the conv block's max-pool and the res block's stride, mel and time
DROPOUT = 0.5
BN = dict(epsilon=1e-5, momentum=0.9)  # PyTorch's defaults


def build_short_chunk(block: str, num_tags=50, *, n_channels=N_CHANNELS, dropout=DROPOUT,
                      name=None, **input_args) -> keras.Model:
    """The Short-chunk CNN (`block="conv"`) or Short-chunk ResNet ("res");
    see the module docstring and `build_short_cnn` for the arguments."""
    if block not in BLOCK_TYPES:
        raise ValueError(f"block must be one of {BLOCK_TYPES}, got {block!r}")
    check_arguments(dropout, n_channels=n_channels, num_tags=num_tags)
    inputs, features = PREPROCESSOR(**input_args)
    x = spectrogram_image(features)  # (batch, mel, time, 1)
    for i, units in enumerate(BLOCKS, start=1):
        channels = units * n_channels
        if block == "conv":
            x = conv_block(x, i, channels, (POOL, POOL))
        else:
            x = res_block(x, i, channels)
    # (batch, 1, 1, C) at the paper's input for "conv", (batch, 1, 2, C) for "res"
    x = keras.layers.GlobalMaxPooling2D(name="global_max")(x)  # (batch, C)
    outputs = dense_head(x, BLOCKS[-1] * n_channels, num_tags, dropout)
    return keras.Model(inputs, outputs, name=name or f"short_chunk_{block}")


def dense_head(x, width, num_tags, dropout):
    """The originals' dense1 -> bn -> ReLU -> dropout -> dense2 -> sigmoid
    (short chunk, Musicnn): (batch, features) -> `embedding` (batch,
    width) -> `tags` (batch, num_tags), float32."""
    x = keras.layers.Dense(width, name="head_dense")(x)
    x = keras.layers.BatchNormalization(name="head_bn", **BN)(x)
    x = keras.layers.ReLU(name=EMBEDDING_LAYER)(x)  # (batch, width): the embedding
    return tags_output(x, num_tags, dropout)


def spectrogram_image(features):
    """(batch, frames, mels) log-mel -> the batch-normed image (batch, mel,
    time, 1), the original's `unsqueeze(1)` + `spec_bn`."""
    frames, n_mels = features.shape[1], features.shape[2]
    x = keras.layers.Permute((2, 1), name="transpose")(features)  # (batch, mel, time)
    x = keras.layers.Reshape((n_mels, frames, 1), name="to_image")(x)
    return keras.layers.BatchNormalization(name="input_bn", **BN)(x)


def conv_block(x, i, channels, pool):
    """The original's Conv_2d: conv 3x3 'same' -> BN -> ReLU -> max-pool
    `pool` (mel, time), clamped to what is left: (batch, M, T, C_in) ->
    (batch, M / pool, T / pool, C)."""
    x = keras.layers.Conv2D(channels, 3, padding="same", name=f"block{i}_conv")(x)
    x = keras.layers.BatchNormalization(name=f"block{i}_bn", **BN)(x)
    x = keras.layers.ReLU(name=f"block{i}_relu")(x)
    pool = tuple(min(p, size) for p, size in zip(pool, x.shape[1:3]))
    return keras.layers.MaxPooling2D(pool, name=f"block{i}_pool")(x)


def res_block(x, i, channels, stride=POOL):
    """The original's Res_2d with stride 2: (batch, M, T, C_in) -> (batch,
    ceil(M / 2), ceil(T / 2), C)."""
    padded = keras.layers.ZeroPadding2D(1, name=f"block{i}_pad")(x)  # PyTorch's padding=1
    y = keras.layers.Conv2D(channels, 3, strides=stride, name=f"block{i}_conv1")(padded)
    y = keras.layers.BatchNormalization(name=f"block{i}_bn1", **BN)(y)
    y = keras.layers.ReLU(name=f"block{i}_relu1")(y)
    y = keras.layers.Conv2D(channels, 3, padding="same", name=f"block{i}_conv2")(y)
    y = keras.layers.BatchNormalization(name=f"block{i}_bn2", **BN)(y)
    shortcut = keras.layers.Conv2D(channels, 3, strides=stride,
                                   name=f"block{i}_shortcut_conv")(padded)
    shortcut = keras.layers.BatchNormalization(name=f"block{i}_shortcut_bn", **BN)(shortcut)
    x = keras.layers.Add(name=f"block{i}_add")([shortcut, y])
    return keras.layers.ReLU(name=f"block{i}_relu")(x)


def res_pool_block(x, i, channels, pool, relu="relu"):
    """The Harmonic CNN's Res_2d_mp (the Music Tagging Transformer's block
    with `relu="relu2"`): conv 3x3 -> BN -> ReLU -> conv 3x3 -> BN, plus the
    input (through conv 3x3 -> BN where its channels are not `channels`),
    ReLU `block{i}_{relu}`, max-pool `pool` clamped to what is left:
    (batch, M, T, C_in) -> (batch, M / pool, T / pool, C)."""
    y = keras.layers.Conv2D(channels, 3, padding="same", name=f"block{i}_conv1")(x)
    y = keras.layers.BatchNormalization(name=f"block{i}_bn1", **BN)(y)
    y = keras.layers.ReLU(name=f"block{i}_relu1")(y)
    y = keras.layers.Conv2D(channels, 3, padding="same", name=f"block{i}_conv2")(y)
    y = keras.layers.BatchNormalization(name=f"block{i}_bn2", **BN)(y)
    if x.shape[-1] != channels:
        x = keras.layers.Conv2D(channels, 3, padding="same", name=f"block{i}_shortcut_conv")(x)
        x = keras.layers.BatchNormalization(name=f"block{i}_shortcut_bn", **BN)(x)
    x = keras.layers.Add(name=f"block{i}_add")([x, y])
    x = keras.layers.ReLU(name=f"block{i}_{relu}")(x)
    pool = tuple(min(p, size) for p, size in zip(pool, x.shape[1:3]))
    return keras.layers.MaxPooling2D(pool, name=f"block{i}_pool")(x)


def short_chunk_family(name: str, build, label: str) -> FamilySpec:
    """The FamilySpec of a short-chunk model: both read one 59049-sample
    chunk at 16 kHz through the same front end and take the same flags and
    presets; only the block (and so the factory) differs."""
    return FamilySpec(
        name=name, build=build, paper="Won, Ferraro, Bogdanov, Serra 2020",
        preprocessor=PREPROCESSOR, flags=(N_CHANNELS_FLAG, DROPOUT_FLAG),
        demo=Preset({"n_channels": 16}), tiny={"n_channels": 4},
        bench=(BenchCase(label, {}, 16),),
    )
