"""Singing: a solo voice (female or male; pop, opera or raga style) and the
choir.

Voices take their harmonics from vowel formants. Opera adds the singer's
formant and a wide vibrato, raga slides between notes, pop adds consonants
at some syllable onsets; the choir stacks eight detuned voices on the chord
tones.
"""

from __future__ import annotations

import numpy as np

from tagger.datasets.sounds.dsp import _filter, _fir_bandpass, _harmonics, _hz, _peak, _rms, _table
from tagger.datasets.sounds.notes import NoteSynth

_FORMANTS = {  # (centre Hz, bandwidth Hz) of F1..F3, adult male
    "a": ((730, 110), (1090, 120), (2440, 170)),
    "e": ((530, 90), (1840, 130), (2480, 170)),
    "i": ((300, 80), (2290, 140), (3010, 200)),
    "o": ((570, 90), (840, 110), (2410, 170)),
    "u": ((320, 80), (870, 110), (2240, 170)),
}


class VoiceParts(NoteSynth):
    """The voice part: a solo voice or the choir."""

    def voice_table(self, m, timbre):
        """Harmonics of a glottal source shaped by the formants of a vowel."""
        vowel, sex, style = timbre
        f = _hz(m) * 1.05
        k = _harmonics(f, self.sr, 7000)
        kf = k * f
        scale = 1.17 if sex == "female" else 1.0
        gain = np.zeros_like(kf) + 0.02
        for (fc, bw), g in zip(_FORMANTS[vowel], (1.0, 0.6, 0.35)):
            gain += g * _peak(kf, fc * scale, bw * scale)
        if style == "opera":  # the singer's formant
            gain += 0.7 * _peak(kf, 2900.0 * (1.1 if sex == "female" else 1.0), 500.0)
        return _table(k ** -1.0 * gain)

    def part_voice(self):
        a, rng = self.a, self.rng
        if a.voice == "choir":
            return self.choir()
        opera = a.voice_style == "opera"
        raga = a.voice_style == "raga"
        if a.voice == "female":
            lo, hi = (67, 91) if opera else (57, 76)
        else:
            lo, hi = (50, 69) if opera else (45, 62)
        step = {"slow": 1.0, "mid": 0.5, "fast": 0.5}[a.tempo]
        if opera and a.tempo != "slow":
            step = 1.0
        notes = []
        phrase_notes = max(4, int(round(2 * 4.0 / step)))  # two bars a phrase
        times = self.times(step)
        pitches = self.melody(times, lo, hi)
        vowels = rng.choice(list(_FORMANTS), size=len(times))
        for j, t in enumerate(times):
            last = (j % phrase_notes) == phrase_notes - 1
            dur = step * self.beat * (0.55 if last else 1.0)  # breathe between phrases
            notes.append((t, dur, int(pitches[j]), rng.uniform(0.8, 1.0),
                          (str(vowels[j]), a.voice, a.voice_style)))
        x = self.line(notes, self.voice_table,
                      vib_rate=6.0 if opera else rng.uniform(5.0, 5.8),
                      vib_depth=0.9 if opera else (0.35 if raga else 0.25),
                      vib_delay=0.05 if opera else 0.25, attack=0.04, release=0.06,
                      glide=0.15 if raga else 0.03)
        sr = self.sr
        env = np.abs(x) > 0
        breath = _filter(rng.standard_normal(self.n), _fir_bandpass(1200.0, 5000.0, sr, 31))
        x = x + 0.05 * breath * env * _rms(x) / max(_rms(breath), 1e-9)
        if a.voice_style == "pop":  # consonants at some syllable onsets
            burst = _filter(rng.standard_normal(int(0.05 * sr) + 30),
                            _fir_bandpass(3500.0, 7500.0, sr, 31))
            burst = burst[:int(0.05 * sr)] * np.exp(-np.arange(int(0.05 * sr)) / (0.012 * sr))
            onsets = [t for t, *_ in notes if rng.random() < 0.4]
            cons = np.zeros(self.n)
            self.place(cons, lambda i: burst, onsets, np.ones(len(onsets)))
            x = x + 0.5 * cons * _rms(x) / max(_rms(burst), 1e-9) * 0.3
        return x

    def choir(self):
        """Eight voices (two per part) on the chord tones, one vowel per chord."""
        rng = self.rng
        step = {"slow": 4.0, "mid": 2.0, "fast": 1.0}[self.a.tempo]
        out = np.zeros(self.n)
        for lo, hi, sex in ((67, 79, "female"), (60, 72, "female"), (52, 64, "male"),
                            (43, 55, "male")):
            notes = []
            for t in self.times(step):
                chord = self.chord_notes(t, lo, hi)
                m = chord[int(rng.integers(len(chord)))] if chord else (lo + hi) // 2
                vowel = str(rng.choice(["a", "o", "u"]))
                notes.append((t, step * self.beat, m, 1.0, (vowel, sex, "pop")))
            out += self.line(notes, self.voice_table, vib_rate=rng.uniform(4.8, 5.6),
                             vib_depth=0.15, attack=0.15, release=0.12,
                             detunes=(-9.0, 9.0), drift=6.0)
        return out
