"""Additive Gaussian noise whose standard deviation is a random fraction,
U[0.3, 0.5], of the crop's own standard deviation (torchaudio-augmentations
Noise(min_snr=0.3, max_snr=0.5); p 0.3 in Won 2021): about 10.5 to 6 dB SNR."""

from __future__ import annotations

import tensorflow as tf

from tagger.augment.common import choose, coin, normal, split_seed, uniform

PROBABILITY = 0.3
RELATIVE_STD = (0.3, 0.5)


def gaussian_noise(x, seed, p: float = PROBABILITY, relative_std=RELATIVE_STD):
    x = tf.convert_to_tensor(x, tf.float32)
    batch = tf.shape(x)[0]
    seeds = split_seed(seed, 3)
    scale = uniform(batch, seeds[1], *relative_std) * tf.math.reduce_std(x, axis=1)
    noise = normal(tf.shape(x), seeds[2]) * scale[:, None]
    return choose(coin(batch, seeds[0], p), x + noise, x)
