"""Pitch shift by up to +-7 semitones (p 0.4 in Won 2021), by resampling.

Departure from the original: torchaudio-augmentations shifts pitch with sox
(WavAugment), which keeps the tempo. Sox does not run inside a TensorFlow
graph, so here the crop is resampled (linear interpolation) by the ratio
r = 2 ** (semitones / 12), like a tape played faster or slower: pitch and
tempo change together. The output keeps the input's length and centre:
output sample t reads input position c + (t - c) * r, c the centre; for
r > 1 the positions beyond the crop are mirrored back into it. Shifting up
decimates without an anti-aliasing filter, so content above
sample_rate / (2 r) folds back (weak for music crops, whose energy lies low).
"""

from __future__ import annotations

import tensorflow as tf

from tagger.augment.common import choose, coin, split_seed, uniform

PROBABILITY = 0.4
SEMITONES = 7.0


def resample_pitch(x, semitones):
    """Each row of x (batch, n) shifted by its own `semitones` (batch,)."""
    x = tf.convert_to_tensor(x, tf.float32)
    n = tf.shape(x)[1]
    nf = tf.cast(n, tf.float32)
    ratio = 2.0 ** (tf.convert_to_tensor(semitones, tf.float32) / 12.0)
    centre = (nf - 1.0) / 2.0
    position = centre + (tf.range(nf)[None] - centre) * ratio[:, None]  # (batch, n)
    # Mirror into [0, n - 1]: a triangle wave of period 2 (n - 1).
    period = 2.0 * (nf - 1.0)
    position = tf.math.floormod(position, period)
    position = tf.where(position > nf - 1.0, period - position, position)
    left = tf.clip_by_value(tf.floor(position), 0.0, nf - 2.0)
    frac = position - left
    left = tf.cast(left, tf.int32)
    a = tf.gather(x, left, batch_dims=1)
    b = tf.gather(x, left + 1, batch_dims=1)
    return a + frac * (b - a)


def pitch_shift(x, seed, p: float = PROBABILITY, semitones: float = SEMITONES):
    x = tf.convert_to_tensor(x, tf.float32)
    batch = tf.shape(x)[0]
    seeds = split_seed(seed, 2)
    shift = uniform(batch, seeds[1], -semitones, semitones)
    return choose(coin(batch, seeds[0], p), resample_pitch(x, shift), x)
