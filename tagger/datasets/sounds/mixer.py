"""`render_clip`: every part of a clip played, mixed and mastered.

The first instrument that can carry a melody leads when there is no voice.
Each part is mixed at its own RMS-relative gain; the genre sets the reverb.
Dynamics set the level: loud is compressed near full scale, normal is about
-16 dBFS RMS, soft -25 dBFS and mellow, quiet -34 dBFS. The mix is
band-limited to 0.375 x the sample rate (6 kHz at 16 kHz) and peaks stay
below 0.89, so the MP3 encoder's own low-pass adds no overshoot and decoded
files do not clip.
"""

from __future__ import annotations

import numpy as np

from tagger.datasets.sounds.attributes import ClipAttributes
from tagger.datasets.sounds.drums import DrumParts
from tagger.datasets.sounds.dsp import _filter, _fir_lowpass, _rms
from tagger.datasets.sounds.plucked import PluckedParts
from tagger.datasets.sounds.sustained import SustainedParts
from tagger.datasets.sounds.textures import TextureParts
from tagger.datasets.sounds.voices import VoiceParts

SAMPLE_RATE = 16000

# Instruments that can carry the melody, in the order a lead is chosen when
# the clip has no voice and its first instrument cannot lead.
_LEADERS = ("synth_lead", "violin", "flute", "sitar", "piano", "harpsichord",
            "acoustic_guitar", "electric_guitar", "harp", "cello")

# Gain of each part, relative to its RMS (0.7 if not listed); a lead gets 1.25 x.
_PART_GAIN = {
    "drum_kit": 0.9, "drum_machine": 0.95, "bass": 0.6, "synth_bass": 0.75,
    "strings": 0.7, "synth_pad": 0.7, "tanpura": 0.55, "bells": 0.5,
    "piano": 1.1, "cello": 0.9, "harp": 0.85, "flute": 0.85,
    "distorted_guitar": 1.0, "fx": 1.0, "birds": 1.0, "water": 1.0, "clapping": 1.0,
}

# Level of each dynamic (RMS in dBFS); loud is compressed instead.
_LEVEL_DB = {"normal": -16.0, "soft": -25.0, "quiet": -34.0}
_PEAK = 0.89  # -1 dBFS headroom
_BAND_LIMIT = 0.375  # of the sample rate: 6 kHz at 16 kHz
# Reverb (wet gain, decay seconds) by genre.
_REVERB = {
    "classical": (0.35, 0.45), "baroque": (0.3, 0.35), "opera": (0.4, 0.5),
    "choral": (0.55, 0.7), "ambient": (0.6, 0.9), "new_age": (0.5, 0.7),
    "indian": (0.25, 0.35), "folk": (0.2, 0.3), "country": (0.12, 0.25),
    "pop": (0.15, 0.3), "dance": (0.12, 0.3), "weird": (0.3, 0.5),
}


def render_clip(attributes: ClipAttributes, seconds: float,
                sample_rate: int = SAMPLE_RATE,
                rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Synthesise one clip: mono float32 in [-0.89, 0.89], `seconds` long.

    The same attributes, duration, rate and seed give the same samples. A
    clip with no instruments and no voice is silence. Example: a clip that is
    half drums and half piano:

        a = render_clip(ClipAttributes(instruments=("drum_kit",)), 5, rng=0)
        b = render_clip(ClipAttributes(instruments=("piano",)), 5, rng=1)
        clip = np.concatenate([a, b])
    """
    if not isinstance(attributes, ClipAttributes):
        raise TypeError(
            f"attributes must be a ClipAttributes, got {type(attributes).__name__}")
    if not seconds > 0:
        raise ValueError(f"seconds must be positive, got {seconds}")
    if sample_rate < 8000:
        raise ValueError(f"sample_rate must be at least 8000, got {sample_rate}")
    rng = np.random.default_rng(rng)
    return Renderer(attributes, int(round(seconds * sample_rate)),
                    int(sample_rate), rng).render()


class Renderer(PluckedParts, SustainedParts, VoiceParts, DrumParts, TextureParts):
    """Plays every part of a clip on its score and mixes them."""

    def render(self):
        a = self.a
        leader = None if a.voice is not None else next(
            (name for name in a.instruments if name in _LEADERS), None)
        parts = []
        for name in a.instruments:
            role = "lead" if name == leader else "accomp"
            x = getattr(self, "part_" + name)(role)
            parts.append((_PART_GAIN.get(name, 0.7) * (1.25 if role == "lead" else 1.0), x))
        if a.voice is not None:
            gain = 1.3 if a.voice == "choir" else (
                2.0 if {"drum_kit", "drum_machine", "distorted_guitar"} & set(a.instruments)
                else 1.6)
            parts.append((gain, self.part_voice()))
        mix = np.zeros(self.n)
        for gain, x in parts:
            r = _rms(x)
            if r > 0:
                mix += gain * x / r
        return self.master(mix)

    def master(self, mix):
        a, sr, rng = self.a, self.sr, self.rng
        if not np.any(mix):
            return np.zeros(self.n, np.float32)
        wet, decay = _REVERB.get(a.genre, (0.0, 0.0))
        if a.dynamics == "soft":  # mellow: most of the highs rolled off
            mix = 0.35 * mix + 0.65 * _filter(mix, _fir_lowpass(1800.0, sr, 63))
        if wet > 0:
            size = int(min(4 * decay, 2.0) * sr)
            ir = rng.standard_normal(size) * np.exp(-np.arange(size) / (decay * sr))
            ir = _filter(ir, _fir_lowpass(4000.0, sr, 15))
            ir /= np.sqrt(np.sum(ir ** 2))
            nfft = 1 << int(np.ceil(np.log2(self.n + size)))
            tail = np.fft.irfft(np.fft.rfft(mix, nfft) * np.fft.rfft(ir, nfft), nfft)[: self.n]
            mix = mix + wet * tail * _rms(mix) / max(_rms(tail), 1e-9)
        if a.dynamics == "loud":  # compressed: near full scale, small crest factor
            y = np.tanh(3.0 * mix / (4.0 * _rms(mix)))
        else:
            y = mix * (10 ** (_LEVEL_DB[a.dynamics] / 20.0)) / _rms(mix)
            knee = 0.6  # soft-limit the peaks above the knee, keep the level
            over = np.abs(y) > knee
            if np.any(over):
                room = _PEAK - knee
                y[over] = np.sign(y[over]) * (
                    knee + room * np.tanh((np.abs(y[over]) - knee) / room))
        # Band-limit below the MP3 encoder's own low-pass (about 7 kHz at
        # 16 kHz): content it would cut makes the decoded peaks overshoot.
        y = _filter(y, _fir_lowpass(_BAND_LIMIT * sr, sr, 63))
        peak = np.max(np.abs(y))
        if a.dynamics == "loud" or peak > _PEAK:
            y *= _PEAK / max(peak, 1e-9)
        return y.astype(np.float32)
