"""Polarity inversion: the waveform times -1 (torchaudio-augmentations
PolarityInversion; p 0.8 in the noisy-student chain of Won 2021)."""

from __future__ import annotations

from tagger.augment.common import choose, uniforms, waveforms
from tagger.augment.threefry import as_key

PROBABILITY = 0.8


def draw(key, batch, p: float = PROBABILITY) -> dict:
    """{"apply": (batch,) bool}."""
    return {"apply": uniforms(key, batch, 1)[0] < p}


def polarity_inversion(x, key, p: float = PROBABILITY):
    """(batch, samples) -> same shape; each example is negated with probability p."""
    x, batch = waveforms(x)
    return choose(draw(as_key(key), batch, p)["apply"], -x, x)
