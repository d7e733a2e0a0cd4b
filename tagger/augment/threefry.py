"""Counter-based random bits in keras.ops: Threefry-2x32 with 20 rounds
(Salmon, Moraes, Dror, Shaw 2011, "Parallel random numbers: as easy as
1, 2, 3"; the generator JAX uses), on uint32 tensors.

A key is a (2,) uint32 tensor. The bits are a function of the key and a
counter alone, computed by integer ops that every backend and device gives
exactly: the same key draws the same numbers under TensorFlow (eagerly,
in a `tf.function`, XLA-compiled) and under JAX (inside `jax.jit`, on a
traced key).
"""

from __future__ import annotations

import numpy as np
from keras import ops

ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
PARITY = 0x1BD11BDA  # the key schedule's constant


def uint32(value):
    """A Python int (taken modulo 2**32) as a uint32 scalar tensor."""
    return ops.convert_to_tensor(np.uint32(value % 2 ** 32))


def as_key(seed):
    """A (2,) integer seed (a tensor of any integer dtype, a NumPy array or a
    pair of ints) as a (2,) uint32 key: each value modulo 2**32."""
    if isinstance(seed, (list, tuple)) and all(isinstance(s, int) for s in seed):
        return ops.stack([uint32(s) for s in seed])
    return ops.cast(seed, "uint32")


def rotate_left(x, bits: int):
    return ops.bitwise_or(ops.left_shift(x, bits), ops.right_shift(x, 32 - bits))


def threefry2x32(key, x0, x1):
    """The two uint32 words of the block at counter (x0, x1) of `key` (2,);
    x0 and x1 broadcast against each other, the words take their shape."""
    k0, k1 = key[0], key[1]
    schedule = (k0, k1, ops.bitwise_xor(ops.bitwise_xor(k0, k1), uint32(PARITY)))
    x0 = ops.add(ops.cast(x0, "uint32"), k0)
    x1 = ops.add(ops.cast(x1, "uint32"), k1)
    for i in range(5):
        for bits in ROTATIONS[i % 2]:
            x0 = ops.add(x0, x1)
            x1 = ops.bitwise_xor(rotate_left(x1, bits), x0)
        x0 = ops.add(x0, schedule[(i + 1) % 3])
        x1 = ops.add(x1, ops.add(schedule[(i + 2) % 3], uint32(i + 1)))
    return x0, x1


def fold_in(key, data):
    """A new key (2,) from `key` and `data` (an int or an integer scalar
    tensor, modulo 2**32): the block at counter (0, data), as
    `jax.random.fold_in` of a threefry2x32 key computes it."""
    data = uint32(data) if isinstance(data, int) else ops.cast(data, "uint32")
    return ops.stack(threefry2x32(key, uint32(0), data))


def split(key, count: int):
    """(count, 2) keys: row i is `fold_in(key, i)`, all from one call."""
    words = threefry2x32(key, uint32(0), ops.cast(ops.arange(count), "uint32"))
    return ops.stack(words, axis=1)
