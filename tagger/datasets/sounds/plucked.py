"""Plucked and struck instruments: piano, harpsichord, harp, guitars, basses,
sitar, tanpura and bells.

A plucked or struck note cross-fades a bright wavetable into a dark one
while it decays (upper harmonics die first); each pitch is synthesised once
and reused. `part_<instrument>(role)` plays the instrument for the whole
clip, as the lead (the melody) or as accompaniment.
"""

from __future__ import annotations

import numpy as np

from tagger.datasets.sounds.dsp import (
    _add,
    _filter,
    _fir_bandpass,
    _harmonics,
    _hz,
    _lowpass_gain,
    _osc,
    _peak,
    _phase,
    _ramp,
    _table,
)
from tagger.datasets.sounds.notes import NoteSynth


class PluckedParts(NoteSynth):
    """The plucked and struck instruments' notes and parts."""

    # -- piano, harpsichord, harp ---------------------------------------------

    def piano_note(self, m):
        f, sr = _hz(m), self.sr
        k = _harmonics(f, sr, 7000)
        hammer = 1.0 - 0.85 * np.abs(np.sin(np.pi * k / 7.5)) ** 4
        bright = k ** -0.7 * hammer
        dark = k ** -2.4 * (k <= 6)
        tau = float(np.clip(2.5 * (262.0 / f) ** 0.45, 0.6, 4.0))
        return self.pluck(("piano", m), f, bright, dark, tau, 0.08,
                          min(2.5, 3 * tau), attack=0.001, click=0.5,
                          click_band=(200, 2500), detune=0.0012, prompt=0.6, thump=0.3)

    def part_piano(self, role):
        if role == "lead":
            tm = self.humanise(self.times(self.step), 4)
            melody = self.plucked_part(self.piano_note, tm, self.melody(tm, 62, 86),
                                       self.rng.uniform(0.7, 1.0, len(tm)),
                                       max(0.5, 4 * self.step * self.beat))
            lh_step = max(self.step, 0.5)
            tl = self.times(lh_step)
            left = self.plucked_part(self.piano_note, tl, self.arpeggio(tl, 41, 62, (0, 2, 1, 2)),
                                     self.rng.uniform(0.4, 0.55, len(tl)),
                                     max(0.6, 4 * lh_step * self.beat))
            tb = self.times(4.0)  # a low octave root at each bar
            bass = self.plucked_part(self.piano_note, tb, [self.root(t, 29) for t in tb],
                                     np.full(len(tb), 0.6), 4 * self.beat)
            return melody + left + bass
        # accompaniment: a low root on each half bar under block chords
        out = np.zeros(self.n)
        step = max(self.step, 0.5)
        hold = max(0.6, 2 * step * self.beat)
        for t in self.times(step):
            notes = self.chord_notes(t, 55, 72)[:4]
            self.place(out, lambda i: self.piano_note(notes[i]), np.full(len(notes), t),
                       np.full(len(notes), 0.45), hold)
        tb = self.times(2.0)
        out += self.plucked_part(self.piano_note, tb, [self.root(t, 33) for t in tb],
                                 np.full(len(tb), 0.8), 2 * self.beat)
        return out

    def harpsichord_note(self, m):
        f, sr = _hz(m), self.sr
        k = _harmonics(f, sr)
        bright = k ** -0.35 * (0.15 + np.abs(np.sin(np.pi * k * 0.09)))
        dark = k ** -1.0 * (k <= 12)
        kk = _harmonics(2 * f, sr)  # the 4' (octave) register
        bright_up = np.zeros(2 * len(kk))
        bright_up[1::2] = 0.5 * kk ** -0.4
        n = max(len(bright), len(bright_up))
        bright = np.pad(bright, (0, n - len(bright))) + np.pad(bright_up, (0, n - len(bright_up)))
        tau = float(np.clip(0.9 * (262.0 / f) ** 0.3, 0.3, 1.4))
        return self.pluck(("harpsichord", m), f, bright, dark, tau, 0.05,
                          min(1.8, 3 * tau), attack=0.001, click=0.5,
                          click_band=(2000, 7000))

    def part_harpsichord(self, role):
        step = min(self.step, 0.5)
        tm = self.times(step)
        if role == "lead":
            melody = self.melody_part(self.harpsichord_note, step, 62, 86, 0.9)
            tl = self.times(max(step, 0.5))
            left = self.plucked_part(self.harpsichord_note, tl,
                                     self.arpeggio(tl, 43, 62, (0, 2, 1, 2)),
                                     np.full(len(tl), 0.6))
            return melody + left
        return self.plucked_part(self.harpsichord_note, tm,
                                 self.arpeggio(tm, 50, 76, (0, 1, 2, 3, 2, 1)),
                                 np.full(len(tm), 0.8))

    def harp_note(self, m):
        f, sr = _hz(m), self.sr
        k = _harmonics(f, sr, 4000)
        soft = np.array([1.0, 0.28, 0.09, 0.035, 0.012, 0.005])[: len(k)]
        tau = float(np.clip(1.9 * (262.0 / f) ** 0.4, 0.6, 3.5))
        return self.pluck(("harp", m), f, soft * np.array([1, 1.6, 2.2, 2, 1.5, 1][: len(k)]),
                          soft, tau, 0.06, min(3.0, 2.5 * tau), attack=0.004)

    def part_harp(self, role):
        step = min(self.step, 0.5)
        tm = self.times(step)
        pattern = (0, 1, 2, 3, 4, 5, 4, 3, 2, 1)
        arps = self.plucked_part(self.harp_note, tm, self.arpeggio(tm, 43, 84, pattern),
                                 self.rng.uniform(0.5, 0.75, len(tm)))
        if role != "lead":
            return arps
        return arps + self.melody_part(self.harp_note, max(self.step, 1.0), 67, 88)

    # -- guitars and basses ---------------------------------------------------

    def guitar_note(self, m, kind="acoustic"):
        key = (kind + "_guitar", m)
        f, sr = _hz(m), self.sr
        if kind == "nylon":  # classical guitar: rounder, darker, longer
            k = _harmonics(f, sr, 4000)
            bright = k ** -1.5 * (0.05 + np.abs(np.sin(np.pi * k * 0.14)))
            dark = k ** -2.6 * (k <= 5)
            tau = float(np.clip(1.4 * (196.0 / f) ** 0.5, 0.5, 3.0))
            return self.pluck(key, f, bright, dark, tau, 0.05, min(2.5, 3 * tau),
                              attack=0.003, click=0.1, click_band=(500, 2500))
        if kind == "acoustic":  # steel strings: bright, twangy
            k = _harmonics(f, sr, 6000)
            bright = k ** -1.0 * (0.05 + np.abs(np.sin(np.pi * k * 0.2)))
            dark = k ** -2.0 * (k <= 8)
            tau = float(np.clip(1.1 * (196.0 / f) ** 0.5, 0.4, 2.5))
            return self.pluck(key, f, bright, dark, tau, 0.09,
                              min(2.2, 3 * tau), attack=0.0015, click=0.35,
                              click_band=(1500, 6000))
        k = _harmonics(f, sr, 5000)
        bright = k ** -1.2 * (0.1 + np.abs(np.sin(np.pi * k * 0.12)))
        dark = k ** -2.5 * (k <= 6)
        tau = float(np.clip(1.6 * (196.0 / f) ** 0.4, 0.6, 3.0))
        return self.pluck(key, f, bright, dark, tau, 0.25,
                          min(2.5, 3 * tau), attack=0.002, detune=0.0035)

    def strum(self, t, down=True):
        root = self.root(t, 40)
        notes = [n for n in self.chord_notes(t, root, root + 26)][:6]
        offsets = np.arange(len(notes)) * 0.012
        return (notes if down else notes[::-1]), offsets

    def part_acoustic_guitar(self, role):
        """Classical genres: nylon strings, finger-picked (with a melody when
        leading). Others: steel strings strummed down on the beats and up on
        the off-beats (with a picked melody on top when leading)."""
        out = np.zeros(self.n)
        if self.a.genre in ("classical", "baroque"):
            note = lambda m: self.guitar_note(m, "nylon")
            tm = self.times(min(self.step, 0.5))
            picks = self.arpeggio(tm, 40, 71, (0, 3, 2, 4, 1, 3, 2, 4))
            out = self.plucked_part(note, tm, picks, self.rng.uniform(0.5, 0.7, len(tm)))
            if role == "lead":
                step = max(self.step, 1.0) if self.a.tempo != "fast" else 0.5
                out += self.melody_part(note, step, 64, 83)
            return out
        note = lambda m: self.guitar_note(m, "acoustic")
        step = 0.5 if self.a.tempo != "fast" else 0.25
        length = 1.6 * step * self.beat + 0.2
        for j, t in enumerate(self.times(step)):
            notes, offsets = self.strum(t, down=(j % 2 == 0))
            key = ("strum", tuple(notes), length)
            if key not in self.cache:  # each chord shape is strummed once, then reused
                chord = np.zeros(int((length + 0.1) * self.sr))
                self.place(chord, lambda i: note(notes[i]), offsets, np.full(len(notes), 0.4),
                           length)
                self.cache[key] = chord
            _add(out, self.cache[key], round(t * self.sr), 0.9 if j % 2 == 0 else 0.55)
        if role == "lead":
            out += 0.8 * self.melody_part(note, max(self.step, 0.5), 64, 83)
        return out

    def part_electric_guitar(self, role):
        note = lambda m: self.guitar_note(m, "electric")
        if self.a.genre == "pop" and role == "accomp":
            out = np.zeros(self.n)
            for t in self.times(1.0, 0.5):  # off-beat chord stabs
                notes = self.chord_notes(t, 55, 72)[:4]
                self.place(out, lambda i: note(notes[i]), np.full(len(notes), t),
                           np.full(len(notes), 0.5), 0.22)
            return out
        step = min(self.step, 0.5)
        tm = self.times(step)
        out = self.plucked_part(note, tm, self.arpeggio(tm, 52, 79, (0, 2, 4, 3, 1, 3)),
                                self.rng.uniform(0.55, 0.75, len(tm)))
        if self.a.genre == "ambient":  # dotted-eighth echoes
            d = int(0.75 * self.beat * self.sr)
            echo = np.zeros_like(out)
            echo[d:] += 0.45 * out[:-d]
            echo[2 * d:] += 0.2 * out[:-2 * d]
            out = out + echo
        if role == "lead":
            out += self.melody_part(note, max(self.step, 1.0), 64, 84)
        return out

    def part_distorted_guitar(self, role):
        """Power chords (root, fifth, octave) through a tanh fuzz and a cabinet."""
        sr, n = self.sr, self.n
        metal = self.a.genre == "metal"
        step = {"slow": 1.0, "mid": 0.5, "fast": 0.5}[self.a.tempo]
        if metal:  # palm-muted chugs: 16ths when fast
            step = 0.25 if self.a.tempo == "fast" else 0.5
        x = np.zeros(n)
        root_lo = 40 if metal else 40 + int(self.rng.integers(0, 5))
        for t in self.times(step):
            r = self.root(t, root_lo)
            for m in (r, r + 7, r + 12):
                key = ("dist", m, step)
                if key not in self.cache:
                    length = step * self.beat
                    k = _harmonics(_hz(m), sr, 5000)
                    nn = int(length * sr)
                    tt = np.arange(nn) / sr
                    w = _osc(_table(k ** -1.0), _phase(_hz(m), sr, nn, self.rng))
                    env = np.exp(-tt / (0.05 if metal else 0.6))
                    env[: int(0.004 * sr)] *= _ramp(int(0.004 * sr))
                    env[-int(0.008 * sr):] *= np.linspace(1, 0, int(0.008 * sr))
                    self.cache[key] = w * env
                _add(x, self.cache[key], round(t * sr))
        x = np.tanh(8.0 * x / (np.max(np.abs(x)) + 1e-9))
        x = _filter(x, _fir_bandpass(90.0, 4200.0, sr, 63))
        return x + 0.6 * _filter(x, _fir_bandpass(1800.0, 3200.0, sr, 63))

    def bass_note(self, m):
        f, sr = _hz(m), self.sr
        k = _harmonics(f, sr, 2500)
        bright = k ** -1.4 * (0.1 + np.abs(np.sin(np.pi * k * 0.22)))
        dark = k ** -2.5 * (k <= 5)
        return self.pluck(("bass", m), f, bright, dark, 0.9, 0.07, 1.5,
                          attack=0.003, click=0.1, click_band=(300, 2000))

    def part_bass(self, role):
        g = self.a.genre
        if g == "country":
            tm = self.times(1.0)
            midis = [self.root(t, 36) + (7 if j % 2 else 0) for j, t in enumerate(tm)]
        else:
            tm = self.times(0.5 if self.a.tempo != "slow" else 1.0)
            midis = [self.root(t, 33) for t in tm]
        return self.plucked_part(self.bass_note, tm, midis, self.rng.uniform(0.75, 0.95, len(tm)),
                                 0.9 * (tm[1] - tm[0]) if len(tm) > 1 else None)

    def synth_bass_note(self, m):
        f, sr = _hz(m), self.sr
        k = _harmonics(f, sr, 6000)
        bright = (k ** -1.0 * (1.0 + 2.5 * _peak(k * f, 900.0, 500.0))
                  * _lowpass_gain(k * f, 1400.0, 3))
        dark = k ** -1.0 * _lowpass_gain(k * f, 260.0, 3)
        return self.pluck(("synth_bass", m), f, bright, dark, 0.5, 0.07, 0.6,
                          attack=0.003)

    def saw_table(self, m, timbre):
        k = _harmonics(_hz(m) * 1.03, self.sr, 4500)
        return _table(k ** -1.0)

    def part_synth_bass(self, role):
        g = self.a.genre
        if g == "breakbeat":  # a sustained, detuned "reese" bass, one note a bar
            notes = [(t, self.bar, self.root(t, 31), 1.0, "mid") for t in self.times(4.0)]
            return self.line(notes, self.saw_table, attack=0.02, release=0.05,
                             detunes=(-12.0, 12.0))
        if g == "techno":  # acid line with accents, off the kick (16ths when fast)
            tm = self.times(0.25 if self.a.tempo == "fast" else 0.5)
            notes = self.scale_notes(33, 48)
            choice = self.rng.integers(0, len(notes), 16)
            per_beat = 4 if self.a.tempo == "fast" else 2
            off = per_beat // 2
            midis = [self.root(t, 33) if j % per_beat == off else int(notes[choice[j % 16]])
                     for j, t in enumerate(tm)]
            j = np.arange(len(tm)) % per_beat
            gains = np.where(j == 0, 0.15, np.where(j == off, 1.0, 0.6))
        else:
            tm = self.times(0.5, 0.5 if g == "dance" else 0.0)
            midis = [self.root(t, 33) for t in tm]
            gains = np.full(len(tm), 0.9)
        return self.plucked_part(self.synth_bass_note, tm, midis, gains,
                                 0.9 * (tm[1] - tm[0]) if len(tm) > 1 else None)

    # -- sitar, tanpura, bells ------------------------------------------------

    def sitar_note(self, m, slide=0):
        """Plucked sitar: buzzing upper harmonics bloom after the pluck
        (the jawari bridge); slide > 0 glides up from `slide` semitones below."""
        key = ("sitar", m, slide)
        if key in self.cache:
            return self.cache[key]
        f, sr, rng = _hz(m), self.sr, self.rng
        n = int(1.6 * sr)
        t = np.arange(n) / sr
        freq = f * 2.0 ** (-slide / 12.0 * np.exp(-t / 0.07)) if slide else f
        ph = _phase(freq, sr, n, rng)
        k = _harmonics(f * 1.1, sr, 7000)
        body = _table(k ** -1.6 * (k <= 8))
        buzz1 = _table(k ** -0.5 * (0.3 + _peak(k * f, 1500.0, 900.0)))
        buzz2 = _table(k ** -0.5 * (0.3 + _peak(k * f, 3200.0, 1400.0)))
        b1 = (t / 0.03) * np.exp(1.0 - t / 0.03)
        b2 = (t / 0.09) * np.exp(1.0 - t / 0.09)
        x = 0.6 * _osc(body, ph) + 0.7 * b1 * _osc(buzz1, ph) + 0.5 * b2 * _osc(buzz2, ph)
        env = np.exp(-t / 0.6)
        env[: int(0.002 * sr)] *= _ramp(int(0.002 * sr))
        x = x * env
        self.cache[key] = x
        return x

    def part_sitar(self, role):
        rng = self.rng
        out = np.zeros(self.n)
        step = self.step if role == "lead" else max(self.step, 1.0)
        tm = self.times(step)
        midis = self.melody(tm, 55, 76)
        slides = rng.choice([0, 0, 1, 2], size=len(tm))
        for i, t in enumerate(tm):
            _add(out, self.sitar_note(int(midis[i]), int(slides[i])), round(t * self.sr),
                 rng.uniform(0.8, 1.0))
        # chikari: the high drone strings struck between melody notes
        tc = self.times(0.5 if self.a.tempo != "fast" else 0.25,
                        0.25 if self.a.tempo != "fast" else 0.125)
        hi = self.a.key + 24
        for t in tc:
            _add(out, self.sitar_note(hi, 0), round(t * self.sr), 0.25)
        return out

    def part_tanpura(self, role):
        """The drone: fifth below, tonic above, twice, tonic below; repeating."""
        out = np.zeros(self.n)
        sa = self.a.key
        if sa > 55:
            sa -= 12
        cycle = (sa - 5, sa + 12, sa + 12, sa)
        period = self.rng.uniform(0.9, 1.2)
        for j, t in enumerate(np.arange(0.0, self.seconds, period)):
            m = cycle[j % 4]
            key = ("tanpura", m)
            if key not in self.cache:
                f, sr = _hz(m), self.sr
                nn = int(4.0 * sr)
                tt = np.arange(nn) / sr
                k = _harmonics(f, sr, 6000)
                ph = _phase(f, sr, nn, self.rng)
                body = _osc(_table(k ** -1.2), ph)
                buzz = _osc(_table(k ** -0.4 * (0.2 + _peak(k * f, 2000.0, 1500.0))), ph)
                bloom = (tt / 0.4) * np.exp(1.0 - tt / 0.4)
                w = (0.7 * body + 0.6 * bloom * buzz) * np.exp(-tt / 2.5)
                w[: int(0.003 * sr)] *= _ramp(int(0.003 * sr))
                w[-int(0.05 * sr):] *= np.linspace(1, 0, int(0.05 * sr))
                self.cache[key] = w
            _add(out, self.cache[key], round(t * self.sr), 0.8)
        return out

    def part_bells(self, role):
        """Inharmonic bell partials (ratios 1, 2.76, 5.40, 8.93), long decays."""
        rng, sr = self.rng, self.sr
        out = np.zeros(self.n)
        notes = self.scale_notes(72, 96)
        tm = self.times(rng.choice([1.0, 2.0]) if self.a.tempo != "fast" else 0.5)
        for t in tm:
            m = int(rng.choice(notes))
            key = ("bell", m)
            if key not in self.cache:
                f = _hz(m)
                nn = int(3.0 * sr)
                tt = np.arange(nn) / sr
                w = np.zeros(nn)
                for ratio, g, tau in ((1.0, 1.0, 1.8), (2.76, 0.5, 0.9), (5.4, 0.3, 0.45),
                                      (8.93, 0.15, 0.25)):
                    if ratio * f < 0.45 * sr:
                        w += (g * np.sin(2 * np.pi * ratio * f * tt + rng.uniform(0, 6.3))
                              * np.exp(-tt / tau))
                w[: int(0.002 * sr)] *= _ramp(int(0.002 * sr))
                w[-int(0.05 * sr):] *= np.linspace(1, 0, int(0.05 * sr))
                self.cache[key] = w
            _add(out, self.cache[key], round(t * sr), rng.uniform(0.6, 1.0))
        return out
