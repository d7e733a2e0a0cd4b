"""Pieces every transform shares: per-example coin flips and uniform draws
from a stateless seed, and linear convolution by FFT.

Every transform takes waveforms `(batch, samples)` float32 and a seed tensor
of shape (2,) (int32 or int64); the same seed gives the same output on any
device, inside a `tf.function` or XLA-compiled step, so augmentation runs in
the training graph (GPU, TPU), not on the host.
"""

from __future__ import annotations

import math

import tensorflow as tf

# One algorithm everywhere.
ALG = "philox"


def split_seed(seed, num: int):
    """`num` independent seeds (num, 2) derived from `seed`."""
    return tf.random.experimental.stateless_split(_as_seed(seed), num=num, alg=ALG)


def _as_seed(seed):
    seed = tf.convert_to_tensor(seed)
    if seed.dtype not in (tf.int32, tf.int64):
        seed = tf.cast(seed, tf.int64)
    return seed


def uniform(batch, seed, low=0.0, high=1.0, shape=None):
    """Float32 draws from U[low, high), shape (batch,) or `shape`.

    Made from integer draws (24 random bits each): TensorFlow's float
    stateless ops give other numbers under XLA than without it, its integer
    ones the same, so a jit-compiled step augments exactly like an eager one.
    """
    shape = [batch] if shape is None else shape
    bits = tf.random.stateless_uniform(shape, _as_seed(seed), 0, 2 ** 24, tf.int32, alg=ALG)
    return low + (high - low) * (tf.cast(bits, tf.float32) / float(2 ** 24))


def normal(shape, seed):
    """Standard normal draws of `shape` (Box-Muller on `uniform`)."""
    seeds = split_seed(seed, 2)
    u1 = 1.0 - uniform(None, seeds[0], shape=shape)  # in (0, 1]
    u2 = uniform(None, seeds[1], shape=shape)
    return tf.sqrt(-2.0 * tf.math.log(u1)) * tf.cos(2.0 * math.pi * u2)


def coin(batch, seed, p: float):
    """(batch,) bool: True with probability p (p = 0: never, p = 1: always)."""
    return uniform(batch, seed) < p


def choose(apply, transformed, x):
    """Per example: `transformed` where `apply` is True, else `x`."""
    return tf.where(apply[:, None], transformed, x)


def fft_convolve(x, kernels, delay: int = 0):
    """Linear convolution of each row of `x` (batch, n) with its own kernel
    (batch, taps) or one shared kernel (taps,); returns (batch, n): the output
    samples delay .. delay + n - 1 (delay = (taps - 1) // 2 for a centred
    FIR filter, 0 for a causal response such as a reverb)."""
    n = tf.shape(x)[1]
    taps = tf.shape(kernels)[-1]
    size = n + taps - 1
    fft_length = tf.cast(2 ** tf.math.ceil(tf.math.log(tf.cast(size, tf.float32)) /
                                           tf.math.log(2.0)), tf.int32)
    spectrum = tf.signal.rfft(x, [fft_length]) * tf.signal.rfft(kernels, [fft_length])
    y = tf.signal.irfft(spectrum, [fft_length])
    return y[:, delay:delay + n]
