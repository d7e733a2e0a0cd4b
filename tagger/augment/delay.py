"""Delay (echo): a copy delayed by 200, 250, ..., 450 ms, scaled by 0.5 and
added, the sum halved: y = (x + 0.5 x[t - d]) / 2 (torchaudio-augmentations
Delay; p 0.5 in Won 2021)."""

from __future__ import annotations

from keras import ops

from tagger.augment.common import choose, gather_rows, levels, uniforms, waveforms
from tagger.augment.threefry import as_key

PROBABILITY = 0.5
DELAYS_MS = (200, 250, 300, 350, 400, 450)
VOLUME = 0.5


def draw(key, batch, sample_rate: int, p: float = PROBABILITY, delays_ms=DELAYS_MS) -> dict:
    """{"apply": (batch,) bool, "offset": (batch,) int32, one of `delays_ms`
    in samples, each equally likely}."""
    u = uniforms(key, batch, 2)
    offsets = ops.convert_to_tensor([round(ms * sample_rate / 1000) for ms in delays_ms],
                                    "int32")
    return {"apply": u[0] < p, "offset": ops.take(offsets, levels(u[1], len(delays_ms)))}


def delay_by(x, offsets, volume: float = VOLUME):
    """Each row of x (batch, n) mixed with itself delayed by its offset (batch,)
    samples (zeros before the start)."""
    x = ops.cast(x, "float32")
    source = ops.arange(ops.shape(x)[1])[None] - ops.cast(offsets, "int32")[:, None]
    delayed = gather_rows(x, ops.maximum(source, 0))  # (batch, n)
    return (x + volume * ops.where(source >= 0, delayed, 0.0)) / 2.0


def delay(x, key, sample_rate: int, p: float = PROBABILITY, delays_ms=DELAYS_MS):
    x, batch = waveforms(x)
    drawn = draw(as_key(key), batch, sample_rate, p, delays_ms)
    return choose(drawn["apply"], delay_by(x, drawn["offset"]), x)
