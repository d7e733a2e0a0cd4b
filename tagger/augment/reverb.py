"""Reverb (p 0.3 in Won 2021).

Departure from the original: torchaudio-augmentations runs sox `reverb` with
reverberance, damping and room size each a random integer in [0, 100). Sox
does not run inside a training step's graph, so here the same three draws
shape a synthetic impulse response convolved with the crop (by FFT):
- the tail is Gaussian noise under an exponential decay whose RT60 (time
  to fall by 60 dB) is 0.1 + 0.9 * reverberance / 100 seconds;
- damping low-passes the tail (one-pole magnitude with corner
  8000 Hz * (1 - 0.9 * damping / 100));
- room size sets the wet level, 0.2 + 0.6 * room / 100 of the tail (unit
  energy) added to the dry signal; the result is scaled to the dry
  crop's RMS so reverb does not change loudness.
"""

from __future__ import annotations

import math

from keras import ops

from tagger.augment.common import choose, fft_convolve, levels, normal, uniforms, waveforms
from tagger.augment.threefry import as_key

PROBABILITY = 0.3
IMPULSE_SECONDS = 1.0
LEVELS = 100  # reverberance, damping and room size: integers 0 .. 99


def impulse_taps(sample_rate: int, seconds: float = IMPULSE_SECONDS) -> int:
    return int(round(seconds * sample_rate))


def draw(key, batch, sample_rate: int, p: float = PROBABILITY) -> dict:
    """{"apply": (batch,) bool; "reverberance", "damping", "room": (batch,)
    float32 integers 0 .. 99, each equally likely; "noise": (batch, taps)
    standard normal, the tails' noise}."""
    u = uniforms(key, batch, 4)
    level = lambda j: ops.cast(levels(u[j], LEVELS), "float32")
    return {"apply": u[0] < p, "reverberance": level(1), "damping": level(2), "room": level(3),
            "noise": normal(key, batch, impulse_taps(sample_rate))}


def impulse_tails(reverberance, damping, noise, sample_rate: int):
    """(batch, taps) unit-energy reverb tails (no direct sound) from their
    noise (batch, taps) and levels (batch,)."""
    taps = ops.shape(noise)[1]
    t = ops.arange(taps, dtype="float32")[None] / float(sample_rate)
    rt60 = 0.1 + 0.9 * reverberance[:, None] / 100.0
    envelope = ops.exp(-math.log(1000.0) * t / rt60)  # -60 dB at rt60
    real, imag = ops.rfft(noise * envelope)
    freqs = ops.linspace(0.0, sample_rate / 2.0, taps // 2 + 1)[None]
    corner = 8000.0 * (1.0 - 0.9 * damping[:, None] / 100.0)
    response = 1.0 / ops.sqrt(1.0 + (freqs / corner) ** 2)
    tail = ops.irfft((real * response, imag * response), taps)
    return tail / ops.norm(tail, axis=1, keepdims=True)


def add_reverb(x, tails, room):
    """x (batch, n) plus its convolution with `tails` (batch, taps) at the
    wet level of `room` (batch,), scaled back to x's RMS."""
    x = ops.cast(x, "float32")
    y = x + (0.2 + 0.6 * room[:, None] / 100.0) * fft_convolve(x, tails)
    rms = lambda s: ops.sqrt(ops.mean(ops.square(s), axis=1, keepdims=True) + 1e-12)
    return y * rms(x) / rms(y)


def reverb(x, key, sample_rate: int, p: float = PROBABILITY):
    x, batch = waveforms(x)
    drawn = draw(as_key(key), batch, sample_rate, p)
    tails = impulse_tails(drawn["reverberance"], drawn["damping"], drawn["noise"], sample_rate)
    return choose(drawn["apply"], add_reverb(x, tails, drawn["room"]), x)
