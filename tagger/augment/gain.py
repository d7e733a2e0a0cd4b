"""Gain: the waveform scaled by a random U[-20, -1] dB (torchaudio-augmentations
Gain(); p 0.2 in Won 2021)."""

from __future__ import annotations

import tensorflow as tf

from tagger.augment.common import choose, coin, split_seed, uniform

PROBABILITY = 0.2
DECIBELS = (-20.0, -1.0)


def gain(x, seed, p: float = PROBABILITY, decibels=DECIBELS):
    x = tf.convert_to_tensor(x, tf.float32)
    batch = tf.shape(x)[0]
    seeds = split_seed(seed, 2)
    factor = 10.0 ** (uniform(batch, seeds[1], *decibels) / 20.0)
    return choose(coin(batch, seeds[0], p), x * factor[:, None], x)
