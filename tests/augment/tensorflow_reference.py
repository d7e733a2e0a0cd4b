"""A frozen copy of the augmentation chain as it was written in TensorFlow
ops (philox draws from tf.random's stateless ops), before the chain moved
to keras.ops: the reference the keras.ops transforms are compared with, at
fixed parameters, and the speed they are measured against
(bench/bench_augment.py). Each transform's arithmetic is the old one
verbatim, split from its draws so that a test can hand both versions the
same parameters (the reverb's tail noise, drawn inside before, is such a
parameter here). Not part of tagger: tagger has one implementation."""

from __future__ import annotations

import math

import tensorflow as tf

ALG = "philox"


# -- the draws (tagger/augment/common.py) -------------------------------------------------
def split_seed(seed, num: int):
    return tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), num=num, alg=ALG)


def uniform(batch, seed, low=0.0, high=1.0, shape=None):
    shape = [batch] if shape is None else shape
    bits = tf.random.stateless_uniform(shape, tf.cast(seed, tf.int64), 0, 2 ** 24, tf.int32,
                                       alg=ALG)
    return low + (high - low) * (tf.cast(bits, tf.float32) / float(2 ** 24))


def normal(shape, seed):
    seeds = split_seed(seed, 2)
    u1 = 1.0 - uniform(None, seeds[0], shape=shape)
    u2 = uniform(None, seeds[1], shape=shape)
    return tf.sqrt(-2.0 * tf.math.log(u1)) * tf.cos(2.0 * math.pi * u2)


def coin(batch, seed, p: float):
    return uniform(batch, seed) < p


def choose(apply, transformed, x):
    return tf.where(apply[:, None], transformed, x)


def fft_convolve(x, kernels, delay: int = 0):
    n = tf.shape(x)[1]
    taps = tf.shape(kernels)[-1]
    size = n + taps - 1
    fft_length = tf.cast(2 ** tf.math.ceil(tf.math.log(tf.cast(size, tf.float32)) /
                                           tf.math.log(2.0)), tf.int32)
    spectrum = tf.signal.rfft(x, [fft_length]) * tf.signal.rfft(kernels, [fft_length])
    y = tf.signal.irfft(spectrum, [fft_length])
    return y[:, delay:delay + n]


# -- each transform at given parameters ------------------------------------------------
def add_noise(x, relative_std, noise):
    scale = relative_std * tf.math.reduce_std(x, axis=1)
    return x + noise * scale[:, None]


def scale_by(x, decibels):
    return x * (10.0 ** (decibels / 20.0))[:, None]


def lowpass_kernels(cutoff_hz, sample_rate: int, taps: int = 1023):
    fc = tf.convert_to_tensor(cutoff_hz, tf.float32)[:, None] / float(sample_rate)
    k = tf.range(taps, dtype=tf.float32)[None] - (taps - 1) / 2.0
    arg = 2.0 * math.pi * fc * k
    sinc = tf.where(k == 0.0, tf.ones_like(arg), tf.sin(arg) / tf.where(k == 0.0, 1.0, arg))
    window = 0.5 - 0.5 * tf.cos(2.0 * math.pi * tf.range(taps, dtype=tf.float32) /
                                (taps - 1))
    kernel = sinc * window[None]
    return kernel / tf.reduce_sum(kernel, axis=1, keepdims=True)


def pass_filter(x, cutoff_hz, high, sample_rate: int, taps: int = 1023):
    x = tf.convert_to_tensor(x, tf.float32)
    low = lowpass_kernels(cutoff_hz, sample_rate, taps)
    delta = tf.one_hot((taps - 1) // 2, taps)[None]
    kernels = tf.where(tf.convert_to_tensor(high)[:, None], delta - low, low)
    return fft_convolve(x, kernels, delay=(taps - 1) // 2)


def delay_by(x, offsets, volume: float = 0.5):
    x = tf.convert_to_tensor(x, tf.float32)
    n = tf.shape(x)[1]
    source = tf.range(n)[None] - tf.cast(offsets, tf.int32)[:, None]
    delayed = tf.where(source >= 0, tf.gather(x, tf.maximum(source, 0), batch_dims=1), 0.0)
    return (x + volume * delayed) / 2.0


def resample_pitch(x, semitones):
    x = tf.convert_to_tensor(x, tf.float32)
    n = tf.shape(x)[1]
    nf = tf.cast(n, tf.float32)
    ratio = 2.0 ** (tf.convert_to_tensor(semitones, tf.float32) / 12.0)
    centre = (nf - 1.0) / 2.0
    position = centre + (tf.range(nf)[None] - centre) * ratio[:, None]
    period = 2.0 * (nf - 1.0)
    position = tf.math.floormod(position, period)
    position = tf.where(position > nf - 1.0, period - position, position)
    left = tf.clip_by_value(tf.floor(position), 0.0, nf - 2.0)
    frac = position - left
    left = tf.cast(left, tf.int32)
    a = tf.gather(x, left, batch_dims=1)
    b = tf.gather(x, left + 1, batch_dims=1)
    return a + frac * (b - a)


def impulse_tails(reverberance, damping, noise, sample_rate: int):
    taps = noise.shape[1]
    t = tf.range(taps, dtype=tf.float32)[None] / float(sample_rate)
    rt60 = 0.1 + 0.9 * reverberance[:, None] / 100.0
    envelope = tf.exp(-math.log(1000.0) * t / rt60)
    spectrum = tf.signal.rfft(noise * envelope)
    freqs = tf.linspace(0.0, sample_rate / 2.0, taps // 2 + 1)[None]
    corner = 8000.0 * (1.0 - 0.9 * damping[:, None] / 100.0)
    response = 1.0 / tf.sqrt(1.0 + (freqs / corner) ** 2)
    tail = tf.signal.irfft(spectrum * tf.cast(response, tf.complex64), [taps])
    return tail / tf.norm(tail, axis=1, keepdims=True)


def add_reverb(x, tails, room):
    x = tf.convert_to_tensor(x, tf.float32)
    wet = fft_convolve(x, tails)
    y = x + (0.2 + 0.6 * room[:, None] / 100.0) * wet
    rms = lambda s: tf.sqrt(tf.reduce_mean(tf.square(s), axis=1, keepdims=True) + 1e-12)
    return y * rms(x) / rms(y)


# -- the chain with its philox draws, for the speed comparison ----------------------------
def augment(x, seed, sample_rate: int):
    """The whole chain at Won 2021's probabilities, drawn as before."""
    x = tf.cast(x, tf.float32)
    batch = tf.shape(x)[0]
    seeds = split_seed(seed, 7)
    # polarity 0.8
    x = choose(coin(batch, seeds[0], 0.8), -x, x)
    # noise 0.3
    s = split_seed(seeds[1], 3)
    x = choose(coin(batch, s[0], 0.3),
               add_noise(x, uniform(batch, s[1], 0.3, 0.5), normal(tf.shape(x), s[2])), x)
    # gain 0.2
    s = split_seed(seeds[2], 2)
    x = choose(coin(batch, s[0], 0.2), scale_by(x, uniform(batch, s[1], -20.0, -1.0)), x)
    # high or low pass 0.8
    s = split_seed(seeds[3], 4)
    high = coin(batch, s[1], 0.5)
    cutoff = tf.where(high, uniform(batch, s[2], 200.0, 1200.0),
                      uniform(batch, s[3], 2200.0, 4000.0))
    x = choose(coin(batch, s[0], 0.8), pass_filter(x, cutoff, high, sample_rate), x)
    # delay 0.5
    s = split_seed(seeds[4], 2)
    choice = tf.random.stateless_uniform([batch], s[1], 0, 6, tf.int32, alg=ALG)
    offsets = tf.gather(tf.constant([round(ms * sample_rate / 1000)
                                     for ms in (200, 250, 300, 350, 400, 450)]), choice)
    x = choose(coin(batch, s[0], 0.5), delay_by(x, offsets), x)
    # pitch shift 0.4
    s = split_seed(seeds[5], 2)
    x = choose(coin(batch, s[0], 0.4), resample_pitch(x, uniform(batch, s[1], -7.0, 7.0)), x)
    # reverb 0.3
    s = split_seed(seeds[6], 5)
    level = lambda seed: tf.floor(uniform(batch, seed, 0.0, 100.0))
    taps = int(sample_rate)
    tails = impulse_tails(level(s[1]), level(s[2]), normal([batch, taps], s[4]), sample_rate)
    return choose(coin(batch, s[0], 0.3), add_reverb(x, tails, level(s[3])), x)
