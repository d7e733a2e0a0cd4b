"""Harmonic CNN (Won, Chun, Nieto, Serra, ICASSP 2020, "Data-driven
harmonic filters for audio representation learning"), as Won, Ferraro,
Bogdanov, Serra (SMC 2020) trained it.

Reference code: minzwon/sota-music-tagging-models, `training/model.py`
(HarmonicCNN) and `training/modules.py` (HarmonicSTFT, Conv_2d,
Res_2d_mp); input 80000 samples at 16 kHz (5 s, `training/main.py`).

- front end `harmonic_stft` (`tagger.layers.HarmonicSTFT`): STFT power
  (n_fft 512, hop 256, periodic Hann, centred) through learnable
  triangular filters at 128 fundamentals (C1 upwards in half semitones)
  times harmonics 1..6, one learnable bandwidth Q, then dB: (batch, 128,
  frames, 6), harmonics as channels; 80000 samples give 313 frames.
  `input_bn`: a batch norm of the 6 channels (the original's hstft_bn).
- seven blocks, channels `n_channels` x (1, 1, 1, 1, 2, 2, 2):
  blocks 1 and 5 are the short-chunk conv block (conv 3x3 -> BN -> ReLU
  -> max-pool 2x2); the others the original's Res_2d_mp,
  `short_chunk.res_pool_block` (conv 3x3 -> BN -> ReLU -> conv 3x3 -> BN,
  plus the input, ReLU, max-pool); pools (fundamental, time) 2x2 but (2, 3) in blocks 6 and 7:
  128 x 313 -> 64 x 156 -> 32 x 78 -> 16 x 39 -> 8 x 19 -> 4 x 9 -> 2 x 3
  -> 1 x 1. A pooling larger than what is left pools all of it (shorter
  windows; PyTorch 2 refuses those, the original never met them).
- `global_max` (the original's squeeze and max over any frames left), then
  the short-chunk head `short_chunk.dense_head`: dense 2 n_channels -> BN
  -> `embedding` (ReLU) -> `head_dropout` (0.5) -> `tags`.

Batch norms use PyTorch's epsilon 1e-5 and momentum 0.1 (Keras momentum
0.9). Counts at 50 tags, n_channels 128 (tests assert them; equal to the
original's): 3,631,551 trainable (Q included), 4,876 batch-norm statistics.

Layer names: waveform (input), harmonic_stft, input_bn; block{i}_conv,
_bn, _relu, _pool (blocks 1, 5); block{i}_conv1, _bn1, _relu1, _conv2,
_bn2, _add, _relu, _pool (blocks 2-4, 6, 7); global_max, head_dense,
head_bn, embedding, head_dropout, tags.
"""

from __future__ import annotations

from tagger.models.family_spec import DROPOUT_FLAG, N_CHANNELS_FLAG, BenchCase, FamilySpec, Preset
from tagger.models.lazy import keras, layers
from tagger.models.parts import check_arguments
from tagger.models.short_chunk import BN, SAMPLE_RATE, conv_block, dense_head, res_pool_block
from tagger.models.spectrogram_input import Preprocessor

INPUT_LENGTH = 80000  # training/main.py: 'hcnn', 5 s
# raw 16 kHz waveforms, one record segment of 5 s
PREPROCESSOR = Preprocessor(segment_length=INPUT_LENGTH, sample_rate=SAMPLE_RATE)
N_FFT = 512
N_HARMONIC = 6
SEMITONE_SCALE = 2
N_CHANNELS = 128
DROPOUT = 0.5
# One row per block, input side first (layer1..7): (kind, channels in units
# of n_channels, max-pool (fundamental, time)).
BLOCKS = (
    ("conv", 1, (2, 2)),
    ("res", 1, (2, 2)),
    ("res", 1, (2, 2)),
    ("res", 1, (2, 2)),
    ("conv", 2, (2, 2)),
    ("res", 2, (2, 3)),
    ("res", 2, (2, 3)),
)


def build_hcnn(num_tags=50, *, input_length=INPUT_LENGTH, sample_rate=SAMPLE_RATE,
               n_channels=N_CHANNELS, n_harmonic=N_HARMONIC, semitone_scale=SEMITONE_SCALE,
               learn_bandwidth=True, dropout=DROPOUT) -> keras.Model:
    """Builds the Harmonic CNN (the original's HarmonicCNN).

    Args:
      num_tags: outputs of the `tags` layer (sigmoid, float32).
      input_length: samples of the `(batch, samples)` waveform (80000, the
        paper's 5 s; longer windows are max-pooled at the end).
      sample_rate: of the waveform (16000, the paper's).
      n_channels: channel unit; blocks have 1, 1, 1, 1, 2, 2, 2 of it (128).
      n_harmonic, semitone_scale: harmonics per fundamental (6) and
        fundamentals per semitone (2); see `HarmonicSTFT`.
      learn_bandwidth: Q trainable (the paper's learn_bw='only_Q') or fixed.
      dropout: before the output layer (0.5).
    """
    check_arguments(dropout, num_tags=num_tags, input_length=input_length,
                    sample_rate=sample_rate, n_channels=n_channels, n_harmonic=n_harmonic,
                    semitone_scale=semitone_scale)
    waveform = PREPROCESSOR.waveform(input_length)
    x = layers.HarmonicSTFT(sample_rate, N_FFT, n_harmonic=n_harmonic,
                            semitone_scale=semitone_scale, learn_bandwidth=learn_bandwidth,
                            dtype="float32",
                            name="harmonic_stft")(waveform)  # (batch, 128, 313, 6)
    x = keras.layers.BatchNormalization(name="input_bn", **BN)(x)
    for i, (kind, units, pool) in enumerate(BLOCKS, start=1):
        make = conv_block if kind == "conv" else res_pool_block
        x = make(x, i, units * n_channels, pool)
    # (batch, 1, 1, 2 n_channels) at the paper's input
    x = keras.layers.GlobalMaxPooling2D(name="global_max")(x)
    outputs = dense_head(x, BLOCKS[-1][1] * n_channels, num_tags, dropout)
    return keras.Model(waveform, outputs, name="hcnn")


FAMILY = FamilySpec(
    name="hcnn", build=build_hcnn, paper="Won, Chun, Nieto, Serra 2020 (Won et al. 2020)",
    preprocessor=PREPROCESSOR, flags=(N_CHANNELS_FLAG, DROPOUT_FLAG),
    demo=Preset({"n_channels": 16}), tiny={"n_channels": 4},
    bench=(BenchCase("Harmonic CNN", {}, 16),),
)
