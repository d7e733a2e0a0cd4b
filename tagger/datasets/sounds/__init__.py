"""Numpy synthesis of the synthetic dataset's audio from each clip's tags.

`render_clip(attributes, seconds, sample_rate, rng)` turns a `ClipAttributes`
(instruments, voice, tempo, dynamics, genre, key, mode) into a mono float32
waveform. Every part plays from the first to the last second of the clip, so
any 2.68 s cut carries the signature of every instrument, voice, tempo and
dynamic level that the clip's tags are derived from.

Modules, each building on the ones above it:
- attributes: `ClipAttributes` and its vocabularies (INSTRUMENTS, VOICES, ...);
- dsp: wavetable oscillators, FIR filters, placing and measuring waves;
- score: a clip's tempo, key and chords; melodies and arpeggios on them;
- notes: plucked notes, sustained lines and held chords as waves;
- plucked: piano, harpsichord, harp, guitars, basses, sitar, tanpura, bells;
- sustained: violin, cello, string ensemble, flute, synth pad and lead;
- voices: a solo voice (pop, opera or raga style) and the choir;
- drums: the acoustic kit and the drum machine;
- textures: fx, birds, water and clapping;
- mixer: `render_clip`; picks the lead, mixes the parts, adds reverb and
  sets the dynamics.
"""

from tagger.datasets.sounds.attributes import (
    DYNAMICS,
    GENRES,
    INSTRUMENTS,
    MODES,
    TEMPOS,
    VOICE_STYLES,
    VOICES,
    ClipAttributes,
)
from tagger.datasets.sounds.mixer import SAMPLE_RATE, render_clip

__all__ = [
    "ClipAttributes", "DYNAMICS", "GENRES", "INSTRUMENTS", "MODES", "SAMPLE_RATE",
    "TEMPOS", "VOICES", "VOICE_STYLES", "render_clip",
]
