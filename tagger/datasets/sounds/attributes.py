"""What a synthetic clip sounds like: `ClipAttributes` and its vocabularies.

tagger/datasets/synthetic.py draws one `ClipAttributes` per clip and derives
the clip's tags from it; `render_clip` (mixer.py) turns it into audio.
"""

from __future__ import annotations

import dataclasses

INSTRUMENTS = (
    "acoustic_guitar", "electric_guitar", "distorted_guitar", "bass",
    "piano", "harpsichord", "harp", "violin", "cello", "strings", "flute",
    "sitar", "tanpura", "synth_pad", "synth_lead", "synth_bass",
    "drum_kit", "drum_machine", "bells", "fx", "birds", "water", "clapping",
)
VOICES = ("female", "male", "choir")
VOICE_STYLES = ("pop", "opera", "raga")
TEMPOS = ("slow", "mid", "fast")
DYNAMICS = ("loud", "normal", "soft", "quiet")
MODES = ("major", "minor", "raga", "pentatonic")
GENRES = (
    "plain", "classical", "baroque", "opera", "choral", "techno", "breakbeat",
    "dance", "rock", "metal", "pop", "country", "folk", "indian", "ambient",
    "new_age", "weird", "nature",
)


@dataclasses.dataclass(frozen=True)
class ClipAttributes:
    """What a clip sounds like; `render_clip` turns it into audio.

    instruments: names from `INSTRUMENTS`; the first one that can carry a
        melody leads when there is no voice, the others accompany.
    voice: None, "female" (f0 about 220-660 Hz), "male" (about 100-330 Hz)
        or "choir" (eight detuned voices on the chord tones).
    voice_style: "pop" (light vibrato, consonants), "opera" (wide 6 Hz
        vibrato, singer's formant) or "raga" (slides between notes).
    tempo: "slow", "mid" or "fast"; dynamics: "loud", "normal", "soft",
        "quiet". genre (from `GENRES`) picks grooves, voicings and reverb.
    key: MIDI number of the tonic; mode: "major", "minor", "raga",
        "pentatonic"; bpm: None draws it from the tempo's range.
    """

    instruments: tuple[str, ...] = ()
    voice: str | None = None
    voice_style: str = "pop"
    tempo: str = "mid"
    dynamics: str = "normal"
    genre: str = "plain"
    key: int = 57
    mode: str = "major"
    bpm: float | None = None

    def __post_init__(self):
        object.__setattr__(self, "instruments", tuple(self.instruments))
        for name in self.instruments:
            _check("instrument", name, INSTRUMENTS)
        if self.voice is not None:
            _check("voice", self.voice, VOICES + (None,))
        for field, names in (("voice_style", VOICE_STYLES), ("tempo", TEMPOS),
                             ("dynamics", DYNAMICS), ("genre", GENRES), ("mode", MODES)):
            _check(field, getattr(self, field), names)
        if not 30 <= int(self.key) <= 80:
            raise ValueError(f"key must be a MIDI number in 30..80, got {self.key}")
        if self.bpm is not None and not 30 <= self.bpm <= 240:
            raise ValueError(f"bpm must be in 30..240 or None, got {self.bpm}")


def _check(what, value, valid):
    if value not in valid:
        raise ValueError(f"unknown {what} {value!r}; expected one of {valid}")
