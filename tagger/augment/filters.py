"""High-pass or low-pass filtering (torchaudio-augmentations HighLowPass; p 0.8
in Won 2021): with probability 1/2 each, a high-pass with its cutoff drawn
from U[200, 1200] Hz or a low-pass with its cutoff from U[2200, 4000] Hz.

Like the original (julius sinc filters), a windowed-sinc FIR filter: 1023
Hann-windowed taps at 22050 Hz (about 90 Hz transition band), zero phase
(centred kernel), applied per example by FFT convolution.
"""

from __future__ import annotations

import math

import tensorflow as tf

from tagger.augment.common import choose, coin, fft_convolve, split_seed, uniform

PROBABILITY = 0.8
HIGH_PASS_HZ = (200.0, 1200.0)
LOW_PASS_HZ = (2200.0, 4000.0)
TAPS = 1023


def lowpass_kernels(cutoff_hz, sample_rate: int, taps: int = TAPS):
    """(batch,) cutoffs -> (batch, taps) Hann-windowed sinc low-pass kernels
    with unit gain at 0 Hz."""
    fc = tf.convert_to_tensor(cutoff_hz, tf.float32)[:, None] / float(sample_rate)
    k = tf.range(taps, dtype=tf.float32)[None] - (taps - 1) / 2.0
    arg = 2.0 * math.pi * fc * k
    sinc = tf.where(k == 0.0, tf.ones_like(arg), tf.sin(arg) / tf.where(k == 0.0, 1.0, arg))
    window = 0.5 - 0.5 * tf.cos(2.0 * math.pi * tf.range(taps, dtype=tf.float32) /
                                (taps - 1))
    kernel = sinc * window[None]
    return kernel / tf.reduce_sum(kernel, axis=1, keepdims=True)


def pass_filter(x, cutoff_hz, high, sample_rate: int, taps: int = TAPS):
    """Filters each row of x (batch, n) at its cutoff; `high` (batch,) bool picks
    a high-pass (identity minus the low-pass) over a low-pass."""
    x = tf.convert_to_tensor(x, tf.float32)
    low = lowpass_kernels(cutoff_hz, sample_rate, taps)
    delta = tf.one_hot((taps - 1) // 2, taps)[None]
    kernels = tf.where(tf.convert_to_tensor(high)[:, None], delta - low, low)
    return fft_convolve(x, kernels, delay=(taps - 1) // 2)


def high_low_pass(x, seed, sample_rate: int, p: float = PROBABILITY,
                  high_hz=HIGH_PASS_HZ, low_hz=LOW_PASS_HZ):
    x = tf.convert_to_tensor(x, tf.float32)
    batch = tf.shape(x)[0]
    seeds = split_seed(seed, 4)
    high = coin(batch, seeds[1], 0.5)
    cutoff = tf.where(high, uniform(batch, seeds[2], *high_hz),
                      uniform(batch, seeds[3], *low_hz))
    return choose(coin(batch, seeds[0], p), pass_filter(x, cutoff, high, sample_rate), x)
