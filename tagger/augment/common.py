"""Pieces every transform shares: its draws from its key, the choice
between its output and its input, linear convolution by FFT.

Every transform takes waveforms `(batch, samples)` and a key (2,) uint32
(`threefry.as_key` takes any integer seed); the same key gives the same
draws on every backend and device. A transform draws from the blocks of
its key's counter space (`threefry.threefry2x32`), rows 0 .. 2**31 - 1 for
its noise, one per example (`normal`), and rows from 2**31 for its
per-example parameters, one per parameter (`uniforms`: the first decides
whether the transform applies, the others are its parameters).
"""

from __future__ import annotations

import math

from keras import ops

from tagger.augment.threefry import threefry2x32, uint32

UNIT = 1.0 / 2 ** 24  # a draw keeps the top 24 bits of a word: every float32 in [0, 1) exact
PARAMETER_ROWS = 2 ** 31  # the counter rows of the per-example draws start here


def waveforms(x):
    """`x` as float32 (batch, samples), and its batch size (an int, or a
    tensor where TensorFlow does not know it before running)."""
    x = ops.cast(x, "float32")
    return x, ops.shape(x)[0]


def unit_interval(words):
    """uint32 words -> float32 in [0, 1) (their top 24 bits)."""
    return ops.multiply(ops.cast(ops.right_shift(words, 8), "float32"), UNIT)


def uniforms(key, batch, count: int):
    """(count, batch) float32 draws from U[0, 1): draw j of example b is word
    b % 2 of the block at counter (2**31 + j, b // 2)."""
    rows = ops.add(ops.cast(ops.arange(count), "uint32"), uint32(PARAMETER_ROWS))[:, None]
    columns = ops.cast(ops.arange((batch + 1) // 2), "uint32")[None]
    words = ops.stack(threefry2x32(key, rows, columns), axis=2)  # (count, columns, 2)
    return unit_interval(ops.reshape(words, (count, -1))[:, :batch])


def between(u, low: float, high: float):
    """Draws u from U[0, 1) as draws from U[low, high)."""
    return low + (high - low) * u


def levels(u, count: int):
    """Draws u from U[0, 1) as int32 0 .. count - 1, each equally likely (to
    within count / 2**24)."""
    drawn = ops.cast(ops.floor(between(u, 0.0, float(count))), "int32")
    return ops.minimum(drawn, count - 1)  # float32 rounding must not reach count


def normal(key, batch, n):
    """(batch, n) float32 standard normal draws: with h = ceil(n / 2),
    samples j and h + j of example b by Box-Muller from the two words of the
    block at counter (b, j)."""
    half = (n + 1) // 2
    rows = ops.cast(ops.arange(batch), "uint32")[:, None]
    columns = ops.cast(ops.arange(half), "uint32")[None]
    first, second = threefry2x32(key, rows, columns)  # (batch, half) each
    radius = ops.sqrt(-2.0 * ops.log(1.0 - unit_interval(first)))  # 1 - u in (0, 1]
    angle = (2.0 * math.pi) * unit_interval(second)
    # halves side by side: interleaved pairs make XLA compute each block twice
    pairs = ops.concatenate([radius * ops.cos(angle), radius * ops.sin(angle)], axis=1)
    return pairs[:, :n]


def choose(apply, transformed, x):
    """Per example: `transformed` where `apply` (batch,) is True, else `x`."""
    return ops.where(apply[:, None], transformed, x)


def gather_rows(x, indices):
    """out[b, t] = x[b, indices[b, t]] for x (batch, n) and int32 indices
    (batch, m) in [0, n): one gather from the flattened batch (quicker
    under TensorFlow than `take_along_axis`)."""
    batch, n = ops.shape(x)[0], ops.shape(x)[1]
    rows = ops.arange(batch, dtype="int32")[:, None] * n
    return ops.take(ops.reshape(x, (-1,)), indices + rows)


def fft_length(size):
    """The power of two at least `size` (an int, or a scalar tensor)."""
    if isinstance(size, int):
        return 1 << (size - 1).bit_length()
    return ops.cast(2.0 ** ops.ceil(ops.log2(ops.cast(size, "float32"))), "int32")


def fft_convolve(x, kernels, delay: int = 0):
    """Linear convolution of each row of `x` (batch, n) with its own kernel
    (batch, taps); returns (batch, n): the output samples delay .. delay +
    n - 1 (delay = (taps - 1) // 2 for a centred FIR filter, 0 for a causal
    response such as a reverb)."""
    n = ops.shape(x)[1]
    length = fft_length(n + ops.shape(kernels)[-1] - 1)
    x_real, x_imag = ops.rfft(x, length)
    k_real, k_imag = ops.rfft(kernels, length)
    spectrum = (x_real * k_real - x_imag * k_imag, x_real * k_imag + x_imag * k_real)
    return ops.irfft(spectrum, length)[:, delay:delay + n]
