"""Won et al. 2020's HarmonicCNN (`training/model.py`; HarmonicSTFT,
Conv_2d and Res_2d_mp of `training/modules.py`) -> our `hcnn`.

Parameter names:

    hstft.bw_Q (the learnt bandwidth Q, shape (1,))  -> harmonic_stft/bw_q
    hstft_bn                                         -> input_bn
    layer1, layer5 (Conv_2d): .conv / .bn            -> block{i}_conv / _bn
    layer2-4, 6, 7 (Res_2d_mp): .conv_1 / bn_1 / conv_2 / bn_2
                                                     -> block{i}_conv1 / bn1 / conv2 / bn2
    dense1 / bn / dense2                             -> head_dense / head_bn / tags

Buffers: HarmonicSTFT keeps its centre frequencies, bin frequencies and
zero as plain attributes, not in the state dict; the one it stores is its
torchaudio Spectrogram's `hstft.spec.window`, checked to be the periodic
Hann window of 512 samples (`zoo.check_hann_window`). The harmonics
(layer1's input channels) are read from the shapes; the fundamentals per
semitone are not in the file: the paper's 2. Input as `training/main.py`
crops it: 80000 samples at 16 kHz.
"""

from __future__ import annotations

from tagger.convert import mapping
from tagger.convert.mapping import shape
from tagger.convert.zoo import ZooModel, check_hann_window, map_head

WINDOW = "hstft.spec.window"
N_FFT = 512
CONV_LAYERS, RES_LAYERS = (1, 5), (2, 3, 4, 6, 7)


def _args(state: dict) -> dict:
    channels, harmonics = shape(state, "layer1.conv.weight", 4)[:2]
    return dict(num_tags=shape(state, "dense2.weight", 2)[0], n_channels=channels,
                n_harmonic=harmonics)


def _front_end(state: dict, source: str, spec):
    """No front-end keywords (a waveform model); the STFT window checked."""
    check_hann_window(state.get(WINDOW), N_FFT, source)
    return {}, (WINDOW,)


def _map(weights, args) -> None:
    weights.set_layer("harmonic_stft", bw_q=weights.take("hstft.bw_Q"))
    mapping.batch_norm(weights, "input_bn", "hstft_bn")
    for i in CONV_LAYERS:
        mapping.conv_bn(weights, f"block{i}", f"layer{i}")
    for i in RES_LAYERS:
        mapping.res_block(weights, f"block{i}", f"layer{i}", shortcut=False)
    map_head(weights)


ZOO = (
    ZooModel(
        family="hcnn", folder="hcnn", part="hcnn",
        title="Harmonic CNN (Won, Chun, Nieto, Serra 2020)", window=80000,
        approx_mb=14.5,  # 3,631,551 parameters
        holds=lambda s: "hstft_bn.weight" in s and "layer7.conv_1.weight" in s,
        args=_args, map=_map, front_end=_front_end),
)
