"""Bowed, blown and synthesised lines: violin, cello, string ensemble, flute,
synth pad and synth lead.

Each line runs one continuous phase with vibrato (`NoteSynth.line`) through
a wavetable per instrument (`*_table`); chords are held notes
(`NoteSynth.chords`) of detuned, drifting copies.
"""

from __future__ import annotations

import numpy as np

from tagger.datasets.sounds.dsp import (
    _filter,
    _fir_bandpass,
    _harmonics,
    _hz,
    _lowpass_gain,
    _peak,
    _rms,
    _table,
)
from tagger.datasets.sounds.notes import NoteSynth


class SustainedParts(NoteSynth):
    """The bowed, blown and synthesised instruments' wavetables and parts."""

    def bowed_table(self, m, timbre):
        f = _hz(m) * 1.03
        k = _harmonics(f, self.sr, 7000)
        kf = k * f
        if timbre == "cello":
            body = (0.4 + _peak(kf, 220, 120) + 0.8 * _peak(kf, 600, 300)
                    + 0.6 * _peak(kf, 1500, 700))
            body *= 1.0 - 0.9 * _lowpass_gain(kf, 65.0, 3)
            return _table(k ** -1.1 * body * _lowpass_gain(kf, 3500.0, 2))
        if timbre == "ensemble":
            return _table(k ** -1.25 * (0.5 + 0.8 * _peak(kf, 500, 400))
                          * _lowpass_gain(kf, 3000.0, 2))
        body = (0.3 + 0.9 * _peak(kf, 290, 90) + 0.6 * _peak(kf, 450, 150)
                + 1.2 * _peak(kf, 2800, 1200))
        body *= 1.0 - 0.95 * _lowpass_gain(kf, 190.0, 3)
        return _table(k ** -0.9 * body * _lowpass_gain(kf, 5500.0, 2))

    def part_violin(self, role):
        return self.bowed("violin", role, (67, 90), (55, 76))

    def part_cello(self, role):
        return self.bowed("cello", role, (48, 69), (36, 55))

    def bowed(self, timbre, role, lead_range, accomp_range):
        rng = self.rng
        if role == "lead":
            step = self.step
            tm = self.times(step)
            notes = [(t, step * self.beat, m, rng.uniform(0.8, 1.0), timbre)
                     for t, m in zip(tm, self.melody(tm, *lead_range))]
            attack = min(0.08, 0.3 * step * self.beat)
        elif self.a.tempo == "fast":  # repeated eighths on the chord tones
            tm = self.times(0.5)
            notes = [(t, 0.5 * self.beat, m, 0.8, timbre)
                     for t, m in zip(tm, self.arpeggio(tm, *accomp_range, (0, 1, 0, 2)))]
            attack = 0.03
        else:
            step = 2.0 if self.a.tempo == "slow" else 1.0
            tm = self.times(step)
            notes = [(t, step * self.beat, m, 0.9, timbre)
                     for t, m in zip(tm, self.arpeggio(tm, *accomp_range, (0, 1, 2, 1)))]
            attack = 0.1
        x = self.line(notes, self.bowed_table, vib_rate=rng.uniform(5.3, 6.2),
                      vib_depth=0.3 if timbre == "violin" else 0.25, attack=attack, release=0.04)
        bow = _filter(rng.standard_normal(self.n), _fir_bandpass(2500.0, 6500.0, self.sr, 31))
        return x + 0.06 * bow * (np.abs(x) > 0).astype(float) * _rms(x) / max(_rms(bow), 1e-9)

    def part_strings(self, role):
        fast = self.a.tempo == "fast"
        step = 0.5 if fast else (4.0 if self.a.tempo == "slow" else 2.0)
        voices = [[(t, d, m, g, "ensemble") for t, d, m, g, _ in notes]
                  for notes in self.sustained(50, 79, 3, step)]
        return self.chords(voices, self.bowed_table, attack=0.03 if fast else 0.3,
                           release=0.05 if fast else 0.25, detunes=(-8.0, 8.0), drift=4.0,
                           vib_rate=5.0, vib_depth=0.12)

    def flute_table(self, m, timbre):
        k = _harmonics(_hz(m) * 1.03, self.sr, 7000)
        return _table(np.array([1.0, 0.32, 0.1, 0.04, 0.015])[: len(k)])

    def part_flute(self, role):
        rng = self.rng
        if role == "lead":
            step = max(self.step, 0.5) if self.a.tempo == "fast" else self.step
            tm = self.times(step)
            lo, hi = (62, 86) if self.a.genre == "indian" else (72, 93)
            notes = [(t, step * self.beat, m, rng.uniform(0.8, 1.0), None)
                     for t, m in zip(tm, self.melody(tm, lo, hi))]
        else:  # a countermelody in quarter notes (half notes when slow)
            step = 2.0 if self.a.tempo == "slow" else 1.0
            tm = self.times(step)
            notes = [(t, step * self.beat, m, rng.uniform(0.8, 1.0), None)
                     for t, m in zip(tm, self.melody(tm, 72, 88))]
        x = self.line(notes, self.flute_table, vib_rate=5.0, vib_depth=0.15, attack=0.05,
                      release=0.05, glide=0.02 if self.a.genre == "indian" else 0.0)
        breath = _filter(self.rng.standard_normal(self.n),
                         _fir_bandpass(1500.0, 6000.0, self.sr, 31))
        env = np.abs(x) > 0
        return x + 0.12 * env * breath * _rms(x) / max(_rms(breath), 1e-9)

    def synth_table(self, m, timbre):
        f = _hz(m) * 1.03
        k = _harmonics(f, self.sr, 7000)
        if timbre == "square":
            return _table((k % 2 == 1) * k ** -1.0 * _lowpass_gain(k * f, 4500.0, 2))
        cutoff = {"dark": 700.0, "bright": 2600.0}.get(timbre, 1500.0)
        return _table(k ** -1.0 * _lowpass_gain(k * f, cutoff, 2))

    def part_synth_pad(self, role):
        timbre = {"ambient": "dark", "new_age": "bright",
                  "dance": "bright"}.get(self.a.genre, "mid")
        step = 4.0 if self.a.tempo != "fast" else 2.0
        voices = [[(t, d, m, g, timbre) for t, d, m, g, _ in notes]
                  for notes in self.sustained(48, 74, 3, step)]
        out = self.chords(voices, self.synth_table, attack=0.6 if self.a.tempo == "slow" else 0.25,
                          release=0.4, detunes=(-11.0, 0.0, 11.0), drift=3.0)
        t = np.arange(self.n) / self.sr
        return out * (1.0 + 0.2 * np.sin(2 * np.pi * 0.25 * t))

    def part_synth_lead(self, role):
        rng = self.rng
        step = 0.25 if self.a.tempo == "fast" or self.a.genre == "techno" else 0.5
        riff_len = int(round(4.0 / step))  # one-bar riff, transposed with the chords
        riff = self.melody(self.times(step)[:riff_len], 60, 79)
        notes = []
        for j, t in enumerate(self.times(step)):
            shift = self.root(t, 0) - self.root(0.0, 0)
            m = int(riff[j % len(riff)]) + (shift if shift <= 6 else shift - 12)
            notes.append((t, 0.8 * step * self.beat, m, rng.uniform(0.75, 1.0), "square"))
        return self.line(notes, self.synth_table, vib_rate=5.5, vib_depth=0.1, attack=0.004,
                         release=0.02, detunes=(-6.0, 6.0))
