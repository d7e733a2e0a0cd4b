"""How notes become waves: plucked and struck notes, sustained lines with one
continuous phase, held chords, and placing them on the clip.

Each distinct note is synthesised once per clip and reused from the cache.
"""

from __future__ import annotations

import numpy as np

from tagger.datasets.sounds.dsp import (
    _CONTROL_HOP,
    _CYCLE,
    _add,
    _box_smooth,
    _filter,
    _fir_bandpass,
    _hz,
    _osc,
    _phase,
    _ramp,
    _table,
)
from tagger.datasets.sounds.score import Score


class NoteSynth(Score):
    """Synthesis of notes on a `Score`; the parts (plucked.py, sustained.py,
    voices.py, drums.py, textures.py) build on it."""

    def pluck(self, key, f, bright, dark, tau, tau_bright, length,
              attack=0.002, click=0.0, click_band=(1000, 6000), detune=0.0, prompt=0.0,
              thump=0.0):
        """A decaying note cross-fading from a bright to a dark wavetable.

        prompt > 0 adds a fast first decay (0.2 s) holding that share of the
        level, as struck strings have (the piano's "double decay"); thump
        adds a short 90 Hz knock under the attack (a piano hammer)."""
        if key in self.cache:
            return self.cache[key]
        sr, rng = self.sr, self.rng
        n = int(length * sr)
        t = np.arange(n) / sr
        w = np.exp(-t / tau_bright)
        ph = _phase(f, sr, n, rng)
        tb, td = _table(bright), _table(dark)
        x = w * _osc(tb, ph) + (1.0 - w) * _osc(td, ph)
        if detune:
            ph2 = _phase(f * (1.0 + detune), sr, n, rng)
            x = 0.6 * x + 0.4 * (w * _osc(tb, ph2) + (1.0 - w) * _osc(td, ph2))
        env = np.exp(-t / tau)
        if prompt:
            env = (1.0 - prompt) * env + prompt * np.exp(-t / 0.2)
        a = int(attack * sr)
        env[:a] *= _ramp(a)
        x = x * env
        if click:
            m = min(n, int(0.006 * sr))
            burst = rng.standard_normal(m + 62) * np.exp(-np.arange(m + 62) / (0.0015 * sr))
            x[:m] += click * _filter(burst, _fir_bandpass(*click_band, sr, 31))[:m]
        if thump:
            m = min(n, int(0.04 * sr))
            x[:m] += thump * np.sin(2 * np.pi * 90.0 * t[:m]) * np.exp(-t[:m] / 0.012)
        self.cache[key] = x
        return x

    def place(self, out, wave, times, gains, max_len=None):
        """Add `wave(i)` at each time, cut (with a short fade) at max_len s."""
        sr = self.sr
        fade = int(0.01 * sr)
        for i, t in enumerate(times):
            w = wave(i)
            if max_len is not None:
                m = int(max_len[i] * sr) if np.ndim(max_len) else int(max_len * sr)
                if m < len(w):
                    w = w[:m].copy()
                    k = min(fade, m)
                    w[m - k:] *= np.linspace(1.0, 0.0, k)
            _add(out, w, round(t * sr), gains[i])

    def plucked_part(self, note_fn, times, midis, gains, max_len=None):
        out = np.zeros(self.n)
        self.place(out, lambda i: note_fn(int(midis[i])), times, gains, max_len)
        return out

    def melody_part(self, note_fn, step_beats, lo, hi, gain=1.0):
        """A melody (`Score.melody`) of notes `step_beats` apart, MIDI lo..hi,
        each `note_fn(midi)` at `gain`."""
        times = self.times(step_beats)
        return self.plucked_part(note_fn, times, self.melody(times, lo, hi),
                                 np.full(len(times), gain))

    def line(self, notes, table_fn, vib_rate=5.5, vib_depth=0.0, vib_delay=0.2,
             attack=0.05, release=0.05, glide=0.0, detunes=(0.0,), drift=0.0, n=None):
        """A monophonic line (n samples, default the clip) with one
        continuous phase per detuned copy.

        notes: list of (start_s, dur_s, midi, gain, timbre) tuples; the
        wavetable of each note is `table_fn(midi, timbre)` (cached).
        vib_depth in semitones; glide in seconds (portamento); drift adds a
        slow random pitch wander (cents) per copy, for ensembles. Pitch is
        computed at a control rate of sr / 32 and held between control points.
        """
        sr, rng = self.sr, self.rng
        n = self.n if n is None else int(n)
        hop = _CONTROL_HOP
        nc = -(-n // hop)
        logf = np.full(nc, np.nan)
        age = np.zeros(nc)
        amp = np.zeros(n)
        spans = []
        for start, dur, m, gain, timbre in notes:
            s = max(0, int(round(start * sr)))
            e = min(n, int(round((start + dur) * sr)))
            if e <= s:
                continue
            cs, ce = s // hop, -(-e // hop)
            logf[cs:ce] = np.log(_hz(m))
            age[cs:ce] = np.arange(ce - cs) * (hop / sr)
            a = min(int(attack * sr), e - s)
            r = min(int(release * sr), e - s - a)
            seg = amp[s:e]
            seg[:] = gain
            seg[:a] *= _ramp(a)
            if r > 0:
                seg[e - s - r:] *= np.linspace(1.0, 0.0, r)
            spans.append((s, e, m, timbre))
        if not spans:
            return np.zeros(n)
        # Hold the last pitch through rests so the phase stays continuous.
        valid = ~np.isnan(logf)
        idx = np.where(valid, np.arange(nc), 0)
        np.maximum.accumulate(idx, out=idx)
        first = int(np.argmax(valid))
        logf = np.where(np.arange(nc) < first, logf[first], logf[idx])
        if glide:
            logf = _box_smooth(logf, glide * sr / hop)
        t = np.arange(nc) * (hop / sr)
        if vib_depth:
            ramp = np.clip(age / vib_delay, 0.0, 1.0) if vib_delay else 1.0
            logf = logf + (vib_depth * np.log(2) / 12.0) * ramp * np.sin(
                2 * np.pi * vib_rate * t + rng.uniform(0, 2 * np.pi))
        out = np.zeros(n)
        for cents in detunes:
            lf = logf + cents * np.log(2) / 1200.0
            if drift:
                lf = lf + drift * np.log(2) / 1200.0 * np.sin(
                    2 * np.pi * rng.uniform(0.1, 0.3) * t + rng.uniform(0, 2 * np.pi))
            inc = np.rint(np.exp(lf) / sr * _CYCLE).astype(np.int64)
            ph = np.cumsum(np.repeat(inc, hop)[:n]) + int(rng.integers(0, 1 << 32))
            for s, e, m, timbre in spans:
                key = ("table", table_fn.__name__, m, timbre)
                if key not in self.cache:
                    self.cache[key] = table_fn(m, timbre)
                out[s:e] += _osc(self.cache[key], ph[s:e])
        out *= amp
        return out / np.sqrt(len(detunes))

    def chords(self, notes_by_voice, table_fn, attack, release, detunes, drift=0.0,
               vib_rate=5.0, vib_depth=0.0):
        """Held chord notes, each synthesised once per (pitch, length) and reused.

        notes_by_voice: lists of (start_s, dur_s, midi, gain, timbre).
        """
        sr = self.sr
        out = np.zeros(self.n)
        for notes in notes_by_voice:
            for start, dur, m, gain, timbre in notes:
                length = int(round(dur * sr))
                key = ("held", table_fn.__name__, m, timbre, length, attack, release)
                if key not in self.cache:
                    self.cache[key] = self.line([(0.0, dur, m, 1.0, timbre)], table_fn,
                                                vib_rate=vib_rate, vib_depth=vib_depth,
                                                vib_delay=0.0, attack=attack, release=release,
                                                detunes=detunes, drift=drift, n=length)
                _add(out, self.cache[key], round(start * sr), gain)
        return out
