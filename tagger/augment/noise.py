"""Additive Gaussian noise whose standard deviation is a random fraction,
U[0.3, 0.5], of the crop's own standard deviation (torchaudio-augmentations
Noise(min_snr=0.3, max_snr=0.5); p 0.3 in Won 2021): about 10.5 to 6 dB SNR."""

from __future__ import annotations

from keras import ops

from tagger.augment.common import between, choose, normal, uniforms, waveforms
from tagger.augment.threefry import as_key

PROBABILITY = 0.3
RELATIVE_STD = (0.3, 0.5)


def draw(key, batch, samples, p: float = PROBABILITY, relative_std=RELATIVE_STD) -> dict:
    """{"apply": (batch,) bool, "relative_std": (batch,) U[relative_std],
    "noise": (batch, samples) standard normal}."""
    u = uniforms(key, batch, 2)
    return {"apply": u[0] < p, "relative_std": between(u[1], *relative_std),
            "noise": normal(key, batch, samples)}


def add_noise(x, relative_std, noise):
    """x (batch, n) plus `noise` (batch, n) scaled per example to
    `relative_std` (batch,) of the example's standard deviation."""
    scale = relative_std * ops.std(x, axis=1)
    return x + noise * scale[:, None]


def gaussian_noise(x, key, p: float = PROBABILITY, relative_std=RELATIVE_STD):
    x, batch = waveforms(x)
    drawn = draw(as_key(key), batch, ops.shape(x)[1], p, relative_std)
    return choose(drawn["apply"], add_noise(x, drawn["relative_std"], drawn["noise"]), x)
