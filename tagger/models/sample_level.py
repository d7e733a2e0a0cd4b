"""Sample-level CNNs on raw 16 kHz waveforms as Won, Ferraro, Bogdanov,
Serra (SMC 2020) trained them: `sample_level` (Lee, Park, Kim, Nam 2017,
"Sample-level deep convolutional neural networks for music auto-tagging
using raw waveforms") here, and `sample_level_se` (Kim, Lee, Nam 2018,
residual squeeze-and-excitation blocks) in `tagger.models.sample_level_se`.

Reference code: minzwon/sota-music-tagging-models, `training/model.py`
(SampleCNN, SampleCNNSE) and `training/modules.py` (Conv_1d, ResSE_1d);
input 59049 samples at 16 kHz (3.69 s, `training/main.py`).

Eleven layers, numbered 1..11 as the original's `layer1..11`, channels
`n_channels` x (1, 1, 1, 2, 2, 2, 2, 2, 2, 4, 4) = 128 ... 512:
- layer 1: a 3-sample conv of stride 3 with one sample of zero padding on
  each side (PyTorch's padding=1), no pooling: 59049 -> 19683 steps;
- layers 2..10: 3-sample convs ('same'), each followed by max-pool 3:
  19683 -> 6561 -> ... -> 1;
- layer 11: a 1-sample conv, no pooling.
Blocks: "conv" (SampleCNN, Conv_1d): conv -> BN -> ReLU (-> pool);
"res_se" (SampleCNNSE, ResSE_1d): conv -> BN -> ReLU -> conv -> BN,
scaled by its SE excitation (`samplecnn.se_scale` with a hidden layer of C
units, the original's Linear(C, C)), plus a shortcut (conv of the block's
kernel and stride -> BN where the stride or the channels change:
layers 1, 4, 10; the identity otherwise), ReLU (-> pool).
Heads: "conv": `embedding` (the 512 features) -> `dropout` (0.5) ->
`tags`; "res_se": `global_max` -> `short_chunk.dense_head` (dense 512 ->
BN -> `embedding` (ReLU) -> `head_dropout` (0.5) -> `tags`).

Not our `samplecnn` (Kim 2018's own Keras release at 22050 Hz): that one
starts with a valid stride-3 conv, has no 1-sample layer 11, a 1-sample
shortcut, SE ratio 16, dropout inside residual blocks, Keras's batch-norm
epsilon and another head. Batch norms here use PyTorch's epsilon 1e-5 and
momentum 0.1 (Keras momentum 0.9).

Other input lengths: the original squeezes the one step left after layer
11; a max over the steps left (`embedding` / `global_max`) computes that
and takes longer windows, and a pooling longer than what is left pools all
of it (shorter inputs, which the original refuses).

Counts at 50 tags and n_channels 128 (tests assert them; equal to the
original's): SampleCNN 1,869,874 trainable, 5,888 batch-norm statistics;
SampleCNNSE 6,951,858 and 14,592.

Layer names: waveform (input), to_channels (batch, samples, 1);
block{i}_pad (layer 1 only), then
conv: block{i}_conv, block{i}_bn, block{i}_relu, block{i}_pool;
res_se: block{i}_conv1, _bn1, _relu1, _conv2, _bn2, the SE layers
block{i}_se_squeeze, _se_expand, _se_excite, _se_reshape, _se_scale,
block{i}_shortcut_conv, _shortcut_bn, block{i}_add, block{i}_relu,
block{i}_pool (pool only where the layer pools); then the head.
"""

from __future__ import annotations

from tagger.config import SEGMENT_LENGTH
from tagger.models.family_spec import DROPOUT_FLAG, N_CHANNELS_FLAG, BenchCase, FamilySpec, Preset
from tagger.models.lazy import keras
from tagger.models.parts import check_arguments, tags_output
from tagger.models.samplecnn import se_scale
from tagger.models.short_chunk import BN, SAMPLE_RATE, dense_head
from tagger.models.spectrogram_input import EMBEDDING_LAYER, Preprocessor

# raw 16 kHz waveforms, one segment (training/main.py: 'sample' and 'se')
PREPROCESSOR = Preprocessor(sample_rate=SAMPLE_RATE)
N_CHANNELS = 128
DROPOUT = 0.5
SE_RATIO = 1  # the original's SE: Linear(C, C) -> ReLU -> Linear(C, C) -> sigmoid
BLOCK_TYPES = ("conv", "res_se")
# One row per layer, input side first (layer1..11): (channels in units of
# n_channels, kernel, stride, max-pool).
LAYERS = (
    (1, 3, 3, 1),
    (1, 3, 1, 3),
    (1, 3, 1, 3),
    (2, 3, 1, 3),
    (2, 3, 1, 3),
    (2, 3, 1, 3),
    (2, 3, 1, 3),
    (2, 3, 1, 3),
    (2, 3, 1, 3),
    (4, 3, 1, 3),
    (4, 1, 1, 1),
)


def build_sample_level(num_tags=50, *, input_length=SEGMENT_LENGTH, n_channels=N_CHANNELS,
                       dropout=DROPOUT) -> keras.Model:
    """Builds the sample-level CNN (the original's SampleCNN).

    Args:
      num_tags: outputs of the `tags` layer (sigmoid, float32).
      input_length: samples of the `(batch, samples)` waveform, 16 kHz
        (59049, the paper's; longer windows are max-pooled at the end).
      n_channels: channel unit; layers have 1, 1, 1, 2 (x6), 4, 4 of it
        (128: the paper).
      dropout: before the output layer (0.5).
    """
    return sample_level_model("conv", num_tags, input_length=input_length,
                              n_channels=n_channels, dropout=dropout, name="sample_level")


def sample_level_model(block: str, num_tags=50, *, input_length=SEGMENT_LENGTH,
                       n_channels=N_CHANNELS, dropout=DROPOUT, name=None) -> keras.Model:
    """SampleCNN (`block="conv"`) or SampleCNNSE ("res_se"); see the module
    docstring and `build_sample_level` for the arguments."""
    if block not in BLOCK_TYPES:
        raise ValueError(f"block must be one of {BLOCK_TYPES}, got {block!r}")
    check_arguments(dropout, num_tags=num_tags, input_length=input_length,
                    n_channels=n_channels)
    waveform = PREPROCESSOR.waveform(input_length)
    x = keras.layers.Reshape((int(input_length), 1), name="to_channels")(waveform)
    for i, (units, kernel, stride, pool) in enumerate(LAYERS, start=1):
        make = conv_block if block == "conv" else res_se_block
        x = make(x, i, units * n_channels, kernel, stride, pool)
    # (batch, 19683, 128) after layer 1 ... (batch, 1, 512) after layer 11
    width = LAYERS[-1][0] * n_channels
    if block == "conv":
        x = keras.layers.GlobalMaxPooling1D(name=EMBEDDING_LAYER)(x)  # (batch, 512)
        outputs = tags_output(x, num_tags, dropout, "dropout")
    else:
        x = keras.layers.GlobalMaxPooling1D(name="global_max")(x)  # (batch, 512)
        outputs = dense_head(x, width, num_tags, dropout)
    return keras.Model(waveform, outputs, name=name or f"sample_level_{block}")


def conv_block(x, i, channels, kernel, stride, pool):
    """The original's Conv_1d: (batch, T, C_in) -> (batch, T / stride / pool, C)."""
    x, padding = _padded(x, i, kernel, stride)
    x = keras.layers.Conv1D(channels, kernel, strides=stride, padding=padding,
                            name=f"block{i}_conv")(x)
    x = keras.layers.BatchNormalization(name=f"block{i}_bn", **BN)(x)
    x = keras.layers.ReLU(name=f"block{i}_relu")(x)
    return _pool(x, i, pool)


def res_se_block(x, i, channels, kernel, stride, pool):
    """The original's ResSE_1d: (batch, T, C_in) -> (batch, T / stride / pool, C)."""
    x, padding = _padded(x, i, kernel, stride)
    y = keras.layers.Conv1D(channels, kernel, strides=stride, padding=padding,
                            name=f"block{i}_conv1")(x)
    y = keras.layers.BatchNormalization(name=f"block{i}_bn1", **BN)(y)
    y = keras.layers.ReLU(name=f"block{i}_relu1")(y)
    y = keras.layers.Conv1D(channels, kernel, padding="same", name=f"block{i}_conv2")(y)
    y = keras.layers.BatchNormalization(name=f"block{i}_bn2", **BN)(y)
    y = se_scale(y, i, channels, SE_RATIO)
    if stride > 1 or x.shape[-1] != channels:
        x = keras.layers.Conv1D(channels, kernel, strides=stride, padding=padding,
                                name=f"block{i}_shortcut_conv")(x)
        x = keras.layers.BatchNormalization(name=f"block{i}_shortcut_bn", **BN)(x)
    x = keras.layers.Add(name=f"block{i}_add")([x, y])
    x = keras.layers.ReLU(name=f"block{i}_relu")(x)
    return _pool(x, i, pool)


def _padded(x, i, kernel, stride):
    """(input, padding) of a conv with PyTorch's padding=kernel // 2: Keras's
    'same' pads alike at stride 1; a strided conv gets the zeros explicitly
    ('same' would pad only after the samples)."""
    if stride == 1:
        return x, "same"
    return keras.layers.ZeroPadding1D(kernel // 2, name=f"block{i}_pad")(x), "valid"


def _pool(x, i, pool):
    if pool == 1:
        return x
    pool = min(pool, x.shape[1])  # what is left, when less than the pooling
    return keras.layers.MaxPooling1D(pool, name=f"block{i}_pool")(x)


def sample_level_family(name: str, build, paper: str, label: str,
                        analyses=()) -> FamilySpec:
    """The FamilySpec of a sample-level model: both read one 59049-sample
    window of raw 16 kHz audio and take the same flags and presets."""
    return FamilySpec(
        name=name, build=build, paper=f"{paper} (Won et al. 2020)",
        preprocessor=PREPROCESSOR, flags=(N_CHANNELS_FLAG, DROPOUT_FLAG),
        analyses=analyses, demo=Preset({"n_channels": 16}), tiny={"n_channels": 4},
        bench=(BenchCase(label, {}, 16),),
    )


FAMILY = sample_level_family("sample_level", build_sample_level, "Lee et al. 2017",
                             "Sample-level CNN")
