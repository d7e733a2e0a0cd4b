"""Multi-scale CNN on log-mel spectrograms (Dabral, Deshmukh, Malapati 2018).

"A Multi-scale Convolutional Neural Network Architecture for Music
Auto-Tagging". Reference code: many-facedgod/Music-Tagger (Theano, the
authors' original) and amalad/Multi-Scale-Music-Tagger (PyTorch port).

The spectrogram is treated as a one-channel image `(mel, time)`; kernels and
pools below are written (mel, time) as in the paper:

- scale 1 (full resolution): conv 50 (3x7) -> max-pool (2,4) -> conv 100
  (3x5) -> pool (2,4) -> conv 70 (3x3) -> pool (2,2)
- scale 2 (input average-pooled (2,4) once): conv 100 (3x5) -> pool (2,4)
  -> conv 70 (3x3) -> pool (2,2)
- scale 3 (average-pooled twice): conv 70 (3x3) -> pool (2,2)
- concat (210 channels) -> conv 70 (3x3) -> conv 70 (3x3) -> pool (2,2) ->
  flatten -> batch norm -> dropout -> dense 500 ReLU (`embedding`) -> dense
  `num_tags` sigmoid (`tags`). Same padding, ReLU after every convolution.

Parameters. The paper's input is 128 mel bins x 628 frames (29.1 s at
11025 Hz, hop 512). Trainable parameters, with biases:
    convolutions: scale 1: 1100 + 75100 + 63070; scale 2: 1600 + 63070;
                  scale 3: 700; merge: 132370 + 44170          = 381,180
    flatten: 70 ch x 8 mel x 9 frames = 5040; batch norm gamma+beta = 10,080
    dense 5040 -> 500: 2,520,500; dense 500 -> 50: 25,050
    total                                                  = 2,936,810
which is what both reference implementations hold (checked layer by layer
against their code, and asserted in tests/models/test_multiscale.py).

Log-mel mapping to 22050 Hz. The paper computes librosa's default mel
spectrogram of 11025 Hz audio: n_fft 2048 (186 ms), hop 512 (46.4 ms), 128
bins over 0-5512.5 Hz, natural log. At 22050 Hz we keep the same durations
(n_fft 4096, hop 1024) and the same band (f_max 5512.5 Hz): the frames then
have the paper's time and frequency resolution, the pools cover the same
musical durations, and the flattened size, and with it every parameter
count, stays the paper's. The log base only scales the input. No top_db.

Default window: 10 segments of 59049 samples (26.8 s, 580 frames), the
whole clip as the records hold it; the paper feeds the whole 29.1 s clip
(628 frames, which would need 10.9 segments; an MTT clip yields 10). The
pooled time axis is 9 for both 580 and 628 frames, so the default model has
the paper's parameter count exactly.

Deviations from the reference code, on purpose:
- `input_norm`: the original standardises each mel bin with statistics of
  the whole dataset before training. Here a batch normalisation without
  scale and offset (no trainable weights; moving statistics) does that job
  inside the model, so raw and log-mel inputs need no external statistics.
  `normalize_input=False` removes it.
- dropout: the Theano original keeps units with probability 0.6
  (`DropOutLayer(..., 0.6)` takes keep_prob), i.e. drops 40%; the PyTorch
  port drops 60%. The default follows the authors' original: 0.4.
- sub-sampling: the original average-pools both sub-sampled inputs (the
  PyTorch port max-pools the second); we follow the original.
"""

from __future__ import annotations

from tagger.config import LogMelConfig
from tagger.models.family_spec import DROPOUT_FLAG, BenchCase, FamilySpec, Preset
from tagger.models.lazy import keras, layers
from tagger.models.parts import tags_output
from tagger.models.spectrogram_input import EMBEDDING_LAYER, Preprocessor

# The paper's features (11025 Hz, n_fft 2048, hop 512) in 22050 Hz samples.
LOGMEL = LogMelConfig(n_mels=128, n_fft=4096, hop_length=1024, f_min=0.0,
                      f_max=5512.5, top_db=None)
PREPROCESSOR = Preprocessor(LOGMEL, segments=10)

# Per scale, its convolutions: (filters, kernel (mel, time), max-pool (mel, time)).
SCALES = (
    ((50, (3, 7), (2, 4)), (100, (3, 5), (2, 4)), (70, (3, 3), (2, 2))),
    ((100, (3, 5), (2, 4)), (70, (3, 3), (2, 2))),
    ((70, (3, 3), (2, 2)),),
)
SUBSAMPLE = (2, 4)  # average pool between consecutive scales' inputs
# After concatenation: (filters, kernel, max-pool or None).
MERGE = ((70, (3, 3), None), (70, (3, 3), (2, 2)))
DENSE_UNITS = 500
BN_EPSILON = 1e-3  # the original's batch norm settings (= Keras defaults)
BN_MOMENTUM = 0.99


def build_multiscale(num_tags=50, *, dropout=0.4, normalize_input=True,
                     bn_momentum=BN_MOMENTUM, **input_args) -> keras.Model:
    """Builds the multi-scale CNN tagger.

    Args:
      num_tags: outputs of the `tags` layer (sigmoid, float32).
      input_args: the window and front end, as `PREPROCESSOR` (a
        `Preprocessor`) takes them; left out, the paper's.
      dropout: rate before the 500-unit dense layer (0.4, see above).
      normalize_input: per-mel standardisation layer `input_norm`.
      bn_momentum: of the moving statistics of both batch norms (0.99, the
        original's). Runs of a few hundred steps want 0.9: with 0.99 the
        statistics used at inference still lag behind the training batches.

    The penultimate representation is the layer `embedding` (500 ReLU units).
    The window is fixed at build time (the dense layer reads the flattened
    feature map): at least 64 frames and 16 mel bins.
    """
    inputs, features = PREPROCESSOR(**input_args)
    frames, n_mels = features.shape[1], features.shape[2]
    if n_mels < 16:
        raise ValueError(
            f"the multi-scale CNN halves the mel axis four times and needs at "
            f"least 16 mel bins, got n_mels={n_mels}")
    if frames < 64:
        raise ValueError(
            f"the multi-scale CNN pools time by 64 in all and needs at least 64 "
            f"frames, got {frames}; use a longer window")

    x = keras.layers.Permute((2, 1), name="transpose")(features)  # (batch, mel, time)
    x = keras.layers.Reshape((n_mels, frames, 1), name="to_image")(x)
    if normalize_input:
        x = keras.layers.BatchNormalization(
            center=False, scale=False, epsilon=BN_EPSILON, momentum=bn_momentum,
            name="input_norm")(x)

    scale_input = x
    branches = []
    for s, convs in enumerate(SCALES, start=1):
        if s > 1:
            scale_input = keras.layers.AveragePooling2D(
                SUBSAMPLE, name=f"subsample{s - 1}")(scale_input)
        y = scale_input
        for c, (filters, kernel, pool) in enumerate(convs, start=1):
            y = keras.layers.Conv2D(filters, kernel, padding="same", activation="relu",
                                    name=f"scale{s}_conv{c}")(y)
            y = keras.layers.MaxPooling2D(pool, name=f"scale{s}_pool{c}")(y)
        branches.append(y)  # (batch, mel / 16, time / 32, 70 | 70 | 70)
    x = keras.layers.Concatenate(name="concat")(branches)  # 210 channels
    for c, (filters, kernel, pool) in enumerate(MERGE, start=1):
        x = keras.layers.Conv2D(filters, kernel, padding="same", activation="relu",
                                name=f"merge_conv{c}")(x)
        if pool is not None:
            x = keras.layers.MaxPooling2D(pool, name="merge_pool")(x)
    # Flatten channel-major, as the original's (channels, mel, time) layout.
    x = keras.layers.Permute((3, 1, 2), name="channels_first")(x)
    x = keras.layers.Flatten(name="flatten")(x)  # (batch, 70 * mel/16 * time/64)
    x = keras.layers.BatchNormalization(
        epsilon=BN_EPSILON, momentum=bn_momentum, name="flatten_bn")(x)
    x = layers.PhiloxDropout(dropout, name="dropout")(x)
    x = keras.layers.Dense(DENSE_UNITS, activation="relu", name=EMBEDDING_LAYER)(x)
    return keras.Model(inputs, tags_output(x, num_tags), name="multiscale")


FAMILY = FamilySpec(
    name="multiscale", build=build_multiscale, paper="Dabral et al. 2018",
    preprocessor=PREPROCESSOR, flags=(DROPOUT_FLAG,), demo=Preset({"bn_momentum": 0.9}),
    tiny={"dropout": 0.0}, bench=(BenchCase("multi-scale CNN", {}, 16),),
)
