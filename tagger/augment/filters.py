"""High-pass or low-pass filtering (torchaudio-augmentations HighLowPass; p 0.8
in Won 2021): with probability 1/2 each, a high-pass with its cutoff drawn
from U[200, 1200] Hz or a low-pass with its cutoff from U[2200, 4000] Hz.

Like the original (julius sinc filters), a windowed-sinc FIR filter: 1023
Hann-windowed taps at 22050 Hz (about 90 Hz transition band), zero phase
(centred kernel), applied per example by FFT convolution.
"""

from __future__ import annotations

import math

from keras import ops

from tagger.augment.common import between, choose, fft_convolve, uniforms, waveforms
from tagger.augment.threefry import as_key

PROBABILITY = 0.8
HIGH_PASS_HZ = (200.0, 1200.0)
LOW_PASS_HZ = (2200.0, 4000.0)
TAPS = 1023


def draw(key, batch, p: float = PROBABILITY, high_hz=HIGH_PASS_HZ, low_hz=LOW_PASS_HZ) -> dict:
    """{"apply": (batch,) bool, "high": (batch,) bool (a high-pass, else a
    low-pass; 1/2 each), "cutoff_hz": (batch,) U[high_hz] or U[low_hz]}."""
    u = uniforms(key, batch, 4)
    high = u[1] < 0.5
    cutoff = ops.where(high, between(u[2], *high_hz), between(u[3], *low_hz))
    return {"apply": u[0] < p, "high": high, "cutoff_hz": cutoff}


def lowpass_kernels(cutoff_hz, sample_rate: int, taps: int = TAPS):
    """(batch,) cutoffs -> (batch, taps) Hann-windowed sinc low-pass kernels
    with unit gain at 0 Hz."""
    fc = ops.cast(cutoff_hz, "float32")[:, None] / float(sample_rate)
    k = ops.arange(taps, dtype="float32")[None] - (taps - 1) / 2.0
    arg = 2.0 * math.pi * fc * k
    sinc = ops.where(k == 0.0, ops.ones_like(arg), ops.sin(arg) / ops.where(k == 0.0, 1.0, arg))
    window = 0.5 - 0.5 * ops.cos(2.0 * math.pi * ops.arange(taps, dtype="float32") /
                                 (taps - 1))
    kernel = sinc * window[None]
    return kernel / ops.sum(kernel, axis=1, keepdims=True)


def pass_filter(x, cutoff_hz, high, sample_rate: int, taps: int = TAPS):
    """Filters each row of x (batch, n) at its cutoff; `high` (batch,) bool picks
    a high-pass (identity minus the low-pass) over a low-pass."""
    x = ops.cast(x, "float32")
    low = lowpass_kernels(cutoff_hz, sample_rate, taps)
    delta = ops.one_hot((taps - 1) // 2, taps)[None]
    kernels = ops.where(ops.convert_to_tensor(high)[:, None], delta - low, low)
    return fft_convolve(x, kernels, delay=(taps - 1) // 2)


def high_low_pass(x, key, sample_rate: int, p: float = PROBABILITY,
                  high_hz=HIGH_PASS_HZ, low_hz=LOW_PASS_HZ):
    x, batch = waveforms(x)
    drawn = draw(as_key(key), batch, p, high_hz, low_hz)
    filtered = pass_filter(x, drawn["cutoff_hz"], drawn["high"], sample_rate)
    return choose(drawn["apply"], filtered, x)
