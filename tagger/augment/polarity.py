"""Polarity inversion: the waveform times -1 (torchaudio-augmentations
PolarityInversion; p 0.8 in the noisy-student chain of Won 2021)."""

from __future__ import annotations

import tensorflow as tf

from tagger.augment.common import choose, coin

PROBABILITY = 0.8


def polarity_inversion(x, seed, p: float = PROBABILITY):
    """(batch, samples) -> same shape; each example is negated with probability p."""
    x = tf.convert_to_tensor(x, tf.float32)
    return choose(coin(tf.shape(x)[0], seed, p), -x, x)
