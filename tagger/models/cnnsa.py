"""CNNSA: a short-chunk ResNet front end and a BERT encoder on log-mel
spectrograms, the "Self-attention" model of Won, Ferraro, Bogdanov, Serra
(SMC 2020), after Won, Chun, Serra 2019 ("Toward interpretable music
tagging with self-attention").

Reference code: minzwon/sota-music-tagging-models, `training/model.py`
(CNNSA), `training/modules.py` (Res_2d), `training/attention_modules.py`
(BertEncoder, BertPooler); input 15 * 16000 = 240000 samples
(`training/main.py`, model type 'attention').

- front end: the short-chunk models' (`short_chunk.LOGMEL`: 128 HTK bins,
  16 kHz, n_fft 512, hop 256; `input_bn`): 240000 samples give 938
  frames, one STFT over the whole window as in the original (the window
  is one record segment of 240000 samples).
- seven Res_2d blocks (`short_chunk.res_block`), channels `n_channels` x
  (1, 1, 2, 2, 2, 2, 2) = 128, 128, 256 x 5, strides (mel, time) (2, 2)
  for blocks 1-3 and (2, 1) for blocks 4-7: 128 x 938 -> 64 x 469 -> 32 x
  235 -> 16 x 118 -> 8 -> 4 -> 2 -> 1 mel bins x 118 frames. The mel axis
  must end at one bin (n_mels at most 128); `to_sequence` drops it:
  (batch, 118, 256).
- `cls_token`: a FIXED vector prepended (the original draws it once with
  numpy's seed 0 from uniform [0, 1) and never trains it); no position
  encoding (the original's BertConfig has a position table size, but
  CNNSA adds none): 119 tokens.
- `encoder0`, `encoder1`: BERT layers (`TransformerEncoderLayer`, post-LN,
  layer norm epsilon 1e-12, 8 heads, feed-forward 4 x width = 1024 with
  exact GELU; dropout 0.4 on hidden states, 0.5 on attention
  probabilities) of width 2 x n_channels = 256.
- `embedding`: the BERT pooler (dense 256 + tanh on the [CLS] output);
  `head_dropout` (0.5); `tags` (dense, sigmoid).

Counts at 50 tags and n_channels 128 (tests assert them; equal to the
original's): 10,521,652 trainable, 9,218 batch-norm statistics (and the
256 values of the fixed [CLS] vector, which the original does not count).

Layer names: as `tagger.models.short_chunk` up to `input_bn`; its res
block names block{i}_* for i = 1..7 (the original's `layer1..7`);
to_sequence, cls_token, encoder{i}, cls_select, embedding, head_dropout,
tags. `tagger.models.attention` reads the encoders' attention.
"""

from __future__ import annotations

from tagger.models.family_spec import (
    ATTENTION_HEADS_FLAG,
    ATTENTION_LAYERS_FLAG,
    DROPOUT_FLAG,
    N_CHANNELS_FLAG,
    BenchCase,
    FamilySpec,
    Preset,
)
from tagger.models.lazy import keras, layers
from tagger.models.parts import check_arguments, tags_output
from tagger.models.self_attention import bert_pooled
from tagger.models.short_chunk import LOGMEL, SAMPLE_RATE, res_block, spectrogram_image
from tagger.models.spectrogram_input import Preprocessor

# one record segment of 15 s at 16 kHz (240000 samples), the paper's input
PREPROCESSOR = Preprocessor(LOGMEL, segment_length=15 * SAMPLE_RATE, sample_rate=SAMPLE_RATE)
N_CHANNELS = 128
# One row per block, input side first: (channels in units of n_channels,
# stride (mel, time)).
BLOCKS = (
    (1, (2, 2)),
    (1, (2, 2)),
    (2, (2, 2)),
    (2, (2, 1)),
    (2, (2, 1)),
    (2, (2, 1)),
    (2, (2, 1)),
)
ATTENTION_LAYERS, ATTENTION_HEADS = 2, 8
HIDDEN_DROPOUT, ATTENTION_DROPOUT, DROPOUT = 0.4, 0.5, 0.5


def build_cnnsa(num_tags=50, *, n_channels=N_CHANNELS, attention_layers=ATTENTION_LAYERS,
                attention_heads=ATTENTION_HEADS, hidden_dropout=HIDDEN_DROPOUT,
                attention_dropout=ATTENTION_DROPOUT, dropout=DROPOUT,
                **input_args) -> keras.Model:
    """Builds CNNSA.

    Args:
      num_tags: outputs of the `tags` layer (sigmoid, float32).
      input_args: the window and front end, as `PREPROCESSOR` (a
        `Preprocessor`) takes them; left out, the paper's.
      n_channels: channel unit of the blocks (1, 1, 2, 2, 2, 2, 2 of it;
        128: the paper); the encoder is 2 x n_channels wide.
      attention_layers, attention_heads: 2 and 8; the heads must divide
        the width.
      hidden_dropout, attention_dropout: BERT's dropout on the hidden
        states (0.4) and on the attention probabilities (0.5).
      dropout: before the output layer (0.5).
    """
    check_arguments(hidden_dropout, attention_dropout, dropout, num_tags=num_tags,
                    n_channels=n_channels, attention_layers=attention_layers,
                    attention_heads=attention_heads)
    width = BLOCKS[-1][0] * n_channels
    if width % attention_heads:
        raise ValueError(f"the encoder width 2 x n_channels = {width} must be a multiple "
                         f"of attention_heads ({attention_heads})")
    inputs, features = PREPROCESSOR(**input_args)
    halvings, n_mels = len(BLOCKS), features.shape[2]
    if n_mels > 2 ** halvings:
        raise ValueError(f"cnnsa halves the mel axis {halvings} times and reads the one bin "
                         f"left: n_mels must be at most {2 ** halvings}, got {n_mels}")
    x = spectrogram_image(features)  # (batch, mel, time, 1)
    for i, (units, stride) in enumerate(BLOCKS, start=1):
        x = res_block(x, i, units * n_channels, stride)
    frames = x.shape[2]  # (batch, 1, 118, 256) at the paper's input
    x = keras.layers.Reshape((frames, width), name="to_sequence")(x)  # (batch, time, width)
    x = layers.ClsToken(initializer=keras.initializers.RandomUniform(0.0, 1.0, seed=0),
                        trainable=False, name="cls_token")(x)  # (batch, time + 1, width)
    x = bert_pooled(x, attention_layers, attention_heads, hidden_dropout,
                    attention_dropout)  # (batch, width)
    return keras.Model(inputs, tags_output(x, num_tags, dropout), name="cnnsa")


FAMILY = FamilySpec(
    name="cnnsa", build=build_cnnsa, paper="Won, Chun, Serra 2019 (Won et al. 2020)",
    preprocessor=PREPROCESSOR, analyses=("attention",),
    flags=(N_CHANNELS_FLAG, ATTENTION_LAYERS_FLAG, ATTENTION_HEADS_FLAG, DROPOUT_FLAG),
    demo=Preset({"n_channels": 16, "attention_heads": 4}, lr=3e-3, epochs=12),
    tiny={"n_channels": 2, "attention_heads": 2}, bench=(BenchCase("CNNSA", {}, 16),),
)
