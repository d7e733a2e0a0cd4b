"""Reverb (p 0.3 in Won 2021).

Departure from the original: torchaudio-augmentations runs sox `reverb` with
reverberance, damping and room size each a random integer in [0, 100). Sox
does not run inside a TensorFlow graph, so here the same three draws shape a
synthetic impulse response convolved with the crop (by FFT):
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

import tensorflow as tf

from tagger.augment.common import choose, coin, fft_convolve, normal, split_seed, uniform

PROBABILITY = 0.3
IMPULSE_SECONDS = 1.0


def impulse_tails(reverberance, damping, seed, sample_rate: int,
                  seconds: float = IMPULSE_SECONDS):
    """(batch, taps) unit-energy reverb tails (no direct sound)."""
    taps = int(round(seconds * sample_rate))
    batch = tf.shape(reverberance)[0]
    t = tf.range(taps, dtype=tf.float32)[None] / float(sample_rate)
    rt60 = 0.1 + 0.9 * reverberance[:, None] / 100.0
    envelope = tf.exp(-math.log(1000.0) * t / rt60)  # -60 dB at rt60
    noise = normal([batch, taps], seed) * envelope
    spectrum = tf.signal.rfft(noise)
    freqs = tf.linspace(0.0, sample_rate / 2.0, taps // 2 + 1)[None]
    corner = 8000.0 * (1.0 - 0.9 * damping[:, None] / 100.0)
    response = 1.0 / tf.sqrt(1.0 + (freqs / corner) ** 2)
    tail = tf.signal.irfft(spectrum * tf.cast(response, tf.complex64), [taps])
    return tail / tf.norm(tail, axis=1, keepdims=True)


def add_reverb(x, reverberance, damping, room, seed, sample_rate: int):
    x = tf.convert_to_tensor(x, tf.float32)
    wet = fft_convolve(x, impulse_tails(reverberance, damping, seed, sample_rate))
    y = x + (0.2 + 0.6 * room[:, None] / 100.0) * wet
    rms = lambda s: tf.sqrt(tf.reduce_mean(tf.square(s), axis=1, keepdims=True) + 1e-12)
    return y * rms(x) / rms(y)


def reverb(x, seed, sample_rate: int, p: float = PROBABILITY):
    x = tf.convert_to_tensor(x, tf.float32)
    batch = tf.shape(x)[0]
    seeds = split_seed(seed, 5)
    draw = lambda s: tf.floor(uniform(batch, s, 0.0, 100.0))  # integers 0..99
    y = add_reverb(x, draw(seeds[1]), draw(seeds[2]), draw(seeds[3]), seeds[4], sample_rate)
    return choose(coin(batch, seeds[0], p), y, x)
