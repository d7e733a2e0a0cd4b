"""Gain: the waveform scaled by a random U[-20, -1] dB (torchaudio-augmentations
Gain(); p 0.2 in Won 2021)."""

from __future__ import annotations

from keras import ops

from tagger.augment.common import between, choose, uniforms, waveforms
from tagger.augment.threefry import as_key

PROBABILITY = 0.2
DECIBELS = (-20.0, -1.0)


def draw(key, batch, p: float = PROBABILITY, decibels=DECIBELS) -> dict:
    """{"apply": (batch,) bool, "decibels": (batch,) U[decibels]}."""
    u = uniforms(key, batch, 2)
    return {"apply": u[0] < p, "decibels": between(u[1], *decibels)}


def scale_by(x, decibels):
    """Each row of x (batch, n) scaled by its own gain in dB (batch,)."""
    return x * ops.power(10.0, decibels / 20.0)[:, None]


def gain(x, key, p: float = PROBABILITY, decibels=DECIBELS):
    x, batch = waveforms(x)
    drawn = draw(as_key(key), batch, p, decibels)
    return choose(drawn["apply"], scale_by(x, drawn["decibels"]), x)
