"""Delay (echo): a copy delayed by 200, 250, ..., 450 ms, scaled by 0.5 and
added, the sum halved: y = (x + 0.5 x[t - d]) / 2 (torchaudio-augmentations
Delay; p 0.5 in Won 2021)."""

from __future__ import annotations

import tensorflow as tf

from tagger.augment.common import ALG, choose, coin, split_seed

PROBABILITY = 0.5
DELAYS_MS = (200, 250, 300, 350, 400, 450)
VOLUME = 0.5


def delay_by(x, offsets, volume: float = VOLUME):
    """Each row of x (batch, n) mixed with itself delayed by its offset (batch,)
    samples (zeros before the start)."""
    x = tf.convert_to_tensor(x, tf.float32)
    n = tf.shape(x)[1]
    source = tf.range(n)[None] - tf.cast(offsets, tf.int32)[:, None]  # (batch, n)
    delayed = tf.where(source >= 0, tf.gather(x, tf.maximum(source, 0), batch_dims=1), 0.0)
    return (x + volume * delayed) / 2.0


def delay(x, seed, sample_rate: int, p: float = PROBABILITY, delays_ms=DELAYS_MS):
    x = tf.convert_to_tensor(x, tf.float32)
    batch = tf.shape(x)[0]
    seeds = split_seed(seed, 2)
    choice = tf.random.stateless_uniform([batch], seeds[1], 0, len(delays_ms), tf.int32,
                                           alg=ALG)
    offsets = tf.gather(tf.constant([round(ms * sample_rate / 1000) for ms in delays_ms],
                                    tf.int32), choice)
    return choose(coin(batch, seeds[0], p), delay_by(x, offsets), x)
