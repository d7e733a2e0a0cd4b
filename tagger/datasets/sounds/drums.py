"""Drums: noise and swept-sine hits on a 16th-note grid; an acoustic kit for
rock, metal and pop, a drum machine for techno, dance, breakbeat and weird.
"""

from __future__ import annotations

import numpy as np

from tagger.datasets.sounds.dsp import _add, _filter, _fir_bandpass
from tagger.datasets.sounds.notes import NoteSynth


class DrumParts(NoteSynth):
    """Drum hits, grooves, and the drum kit and drum machine parts."""

    def hit(self, name):
        if name in self.cache:
            return self.cache[name]
        sr, rng = self.sr, self.rng

        def noise(seconds, lo, hi, tau, taps=31):
            nn = int(seconds * sr)
            x = _filter(rng.standard_normal(nn), _fir_bandpass(lo, hi, sr, taps))
            return x * np.exp(-np.arange(nn) / (tau * sr))

        def sweep(seconds, f_end, f_add, tau_f, tau):
            tt = np.arange(int(seconds * sr)) / sr
            freq = f_end + f_add * np.exp(-tt / tau_f)
            return np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-tt / tau)

        if name == "kick":
            x = sweep(0.4, 52.0, 95.0, 0.03, 0.2)
            x[: int(0.003 * sr)] += 0.5 * rng.standard_normal(int(0.003 * sr))
        elif name == "snare":
            x = 0.9 * noise(0.3, 1200.0, 7000.0, 0.1) / 0.3
            tt = np.arange(len(x)) / sr
            x += ((0.6 * np.sin(2 * np.pi * 185 * tt) + 0.3 * np.sin(2 * np.pi * 330 * tt))
                  * np.exp(-tt / 0.05))
        elif name == "hat":
            x = noise(0.08, 4000.0, 7000.0, 0.025) * 2.0
        elif name == "open_hat":
            x = noise(0.45, 3800.0, 7000.0, 0.18) * 2.0
        elif name == "crash":
            x = noise(1.8, 3000.0, 8000.0, 0.8) * 1.5
        elif name == "ride":
            tt = np.arange(int(0.9 * sr)) / sr
            x = sum(np.sign(np.sin(2 * np.pi * f * tt)) for f in (3150.0, 3520.0, 4230.0)) / 3.0
            x = _filter(x, _fir_bandpass(2500.0, 7000.0, sr, 31)) * np.exp(-tt / 0.5) * 0.5
            x += noise(0.9, 4000.0, 8000.0, 0.4) * 0.8
        elif name == "kick909":
            x = sweep(0.55, 48.0, 220.0, 0.012, 0.32)
        elif name == "clap":
            nn = int(0.25 * sr)
            base = _filter(rng.standard_normal(nn), _fir_bandpass(900.0, 2600.0, sr, 31))
            tt = np.arange(nn) / sr
            env = np.exp(-tt / 0.06)
            for d in (0.0, 0.011, 0.022):
                env += 1.5 * (tt >= d) * np.exp(-np.maximum(tt - d, 0) / 0.004)
            x = base * env * 1.5
        elif name in ("hat808", "open808"):
            tt = np.arange(int((0.06 if name == "hat808" else 0.3) * sr)) / sr
            x = sum(np.sign(np.sin(2 * np.pi * f * tt))
                    for f in (205.3, 304.4, 369.6, 522.7, 540.0, 800.0))
            x = _filter(x, _fir_bandpass(3500.0, 7000.0, sr, 31))
            x = x * np.exp(-tt / (0.015 if name == "hat808" else 0.12)) * 0.6
        elif name == "blip":
            tt = np.arange(int(0.08 * sr)) / sr
            x = np.sin(2 * np.pi * 1046.5 * tt) * np.exp(-tt / 0.02) * 0.5
        else:
            raise KeyError(name)
        x = x.astype(float)
        self.cache[name] = x
        return x

    def groove(self, pattern, humanise_ms=0.0):
        """pattern: {hit: (steps in a 16-step bar, velocity)} -> the drum part."""
        out = np.zeros(self.n)
        step = self.beat / 4
        bars = int(np.ceil(self.seconds / self.bar)) + 1
        for name, (steps, vel) in pattern.items():
            steps = np.asarray(steps, float)
            times = (np.arange(bars)[:, None] * self.bar + steps[None, :] * step).ravel()
            times = times[times < self.seconds]
            if humanise_ms:
                times = np.maximum(self.humanise(times, humanise_ms), 0.0)
            gains = np.asarray(vel, float) * self.rng.uniform(0.85, 1.0, len(times))
            self.place(out, lambda i, w=self.hit(name): w, times, gains)
        return out

    def part_drum_kit(self, role):
        g, tempo = self.a.genre, self.a.tempo
        e8 = range(0, 16, 2)
        if g == "metal":  # double kick in 16ths when fast, 8ths otherwise
            pattern = {"kick": (range(16) if tempo == "fast" else e8, 0.8),
                       "snare": ((4, 12), 1.0),
                       "ride": (e8, 0.5), "crash": ((0,), 0.7)}
        elif g == "pop":
            pattern = {"kick": ((0, 6, 8), 1.0), "snare": ((4, 12), 0.9),
                       "hat": (range(16) if tempo == "fast" else e8, 0.45)}
        elif tempo == "fast":
            pattern = {"kick": ((0, 8, 10), 1.0), "snare": ((4, 12), 1.0),
                       "hat": (range(16), 0.5), "crash": ((0,), 0.4)}
        else:
            pattern = {"kick": ((0, 8, 10) if tempo == "mid" else (0, 8), 1.0),
                       "snare": ((4, 12), 1.0), "hat": (e8, 0.6)}
        out = self.groove(pattern, humanise_ms=5.0)
        crash = self.hit("crash")
        for t in np.arange(0.0, self.seconds, 4 * self.bar):
            _add(out, crash, round(t * self.sr), 0.6)
        return out

    def part_drum_machine(self, role):
        g = self.a.genre
        if g == "breakbeat":
            pattern = {"kick909": ((0, 10), 1.0), "snare": ((4, 12), 1.0),
                       "hat808": (range(0, 16, 2), 0.7), "open808": ((14,), 0.5),
                       "clap": ((7, 15), 0.25)}
        elif g == "weird":
            steps = np.flatnonzero(self.rng.random(16) < 0.3)
            pattern = {"kick909": (steps, 0.9),
                       "blip": (np.flatnonzero(self.rng.random(16) < 0.3), 0.8)}
        else:  # four on the floor; closed hats in 16ths when fast
            pattern = {"kick909": ((0, 4, 8, 12), 1.0), "open808": ((2, 6, 10, 14), 0.6),
                       "hat808": (range(16) if self.a.tempo == "fast" else (0, 4, 8, 12), 0.35),
                       "clap": ((4, 12), 0.8)}
            if g == "techno" and "synth_lead" not in self.a.instruments:
                pattern["blip"] = ((3, 7, 11), 0.6)
        return self.groove(pattern)
