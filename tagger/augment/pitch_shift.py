"""Pitch shift by up to +-7 semitones (p 0.4 in Won 2021), by resampling.

Departure from the original: torchaudio-augmentations shifts pitch with sox
(WavAugment), which keeps the tempo. Sox does not run inside a training
step's graph, so here the crop is resampled (linear interpolation) by the
ratio r = 2 ** (semitones / 12), like a tape played faster or slower: pitch
and tempo change together. The output keeps the input's length and centre:
output sample t reads input position c + (t - c) * r, c the centre; for
r > 1 the positions beyond the crop are mirrored back into it. Shifting up
decimates without an anti-aliasing filter, so content above
sample_rate / (2 r) folds back (weak for music crops, whose energy lies low).
"""

from __future__ import annotations

from keras import ops

from tagger.augment.common import between, choose, gather_rows, uniforms, waveforms
from tagger.augment.threefry import as_key

PROBABILITY = 0.4
SEMITONES = 7.0


def draw(key, batch, p: float = PROBABILITY, semitones: float = SEMITONES) -> dict:
    """{"apply": (batch,) bool, "semitones": (batch,) U[-semitones, semitones]}."""
    u = uniforms(key, batch, 2)
    return {"apply": u[0] < p, "semitones": between(u[1], -semitones, semitones)}


def resample_pitch(x, semitones):
    """Each row of x (batch, n) shifted by its own `semitones` (batch,)."""
    x = ops.cast(x, "float32")
    nf = ops.cast(ops.shape(x)[1], "float32")
    ratio = ops.power(2.0, ops.cast(semitones, "float32") / 12.0)
    centre = (nf - 1.0) / 2.0
    position = centre + (ops.arange(ops.shape(x)[1], dtype="float32")[None] - centre) * \
        ratio[:, None]  # (batch, n)
    # Mirror into [0, n - 1]: a triangle wave of period 2 (n - 1).
    period = 2.0 * (nf - 1.0)
    position = ops.mod(position, period)
    position = ops.where(position > nf - 1.0, period - position, position)
    left = ops.clip(ops.floor(position), 0.0, nf - 2.0)
    frac = position - left
    left = ops.cast(left, "int32")
    a = gather_rows(x, left)
    b = gather_rows(x, left + 1)
    return a + frac * (b - a)


def pitch_shift(x, key, p: float = PROBABILITY, semitones: float = SEMITONES):
    x, batch = waveforms(x)
    drawn = draw(as_key(key), batch, p, semitones)
    return choose(drawn["apply"], resample_pitch(x, drawn["semitones"]), x)
