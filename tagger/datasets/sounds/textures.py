"""Textures: fx (glides, ring modulation, crushed noise, reversed swells),
birds, water and clapping.
"""

from __future__ import annotations

import numpy as np

from tagger.datasets.sounds.dsp import (
    _add,
    _filter,
    _fir_bandpass,
    _fir_lowpass,
    _lowpass_gain,
    _ramp,
    _rms,
)
from tagger.datasets.sounds.notes import NoteSynth


class TextureParts(NoteSynth):
    """The fx, birds, water and clapping parts."""

    def part_fx(self, role):
        """Weird sounds: glides, ring modulation, crushed noise, reversed swells."""
        rng, sr = self.rng, self.sr
        out = np.zeros(self.n)
        gap = {"slow": (0.4, 0.9), "mid": (0.15, 0.45), "fast": (0.06, 0.16)}[self.a.tempo]
        t = 0.0
        while t < self.seconds:
            dur = rng.uniform(0.15, 0.7)
            nn = int(dur * sr)
            tt = np.arange(nn) / sr
            kind = int(rng.integers(4))
            if kind == 0:  # exponential glide
                f1, f2 = np.exp(rng.uniform(np.log(150), np.log(3000), 2))
                freq = f1 * (f2 / f1) ** (tt / dur)
                x = np.sign(np.sin(2 * np.pi * np.cumsum(freq) / sr)) * 0.5
            elif kind == 1:  # ring modulation of two inharmonic tones
                f1, f2 = rng.uniform(200, 1500, 2)
                x = np.sin(2 * np.pi * f1 * tt) * np.sin(
                    2 * np.pi * f2 * tt + 3 * np.sin(2 * np.pi * 7 * tt))
            elif kind == 2:  # sample-and-hold (crushed) noise
                hold = int(rng.integers(8, 60))
                x = np.repeat(rng.uniform(-1, 1, nn // hold + 1), hold)[:nn]
            else:  # reversed swell
                f = rng.uniform(100, 900)
                x = np.sin(2 * np.pi * f * tt) * np.sin(2 * np.pi * 2.01 * f * tt)
            env = np.exp((tt - dur) / (0.3 * dur)) if kind == 3 else np.exp(-tt / (0.5 * dur))
            env[: int(0.003 * sr)] *= _ramp(int(0.003 * sr))
            _add(out, x * env, round(t * sr), rng.uniform(0.5, 1.0))
            t += rng.uniform(*gap)
        return out

    def part_birds(self, role):
        rng, sr = self.rng, self.sr
        out = np.zeros(self.n)
        t = 0.0
        while t < self.seconds:
            f0 = rng.uniform(2500, 4500)
            for j in range(int(rng.integers(3, 9))):
                dur = rng.uniform(0.04, 0.12)
                tt = np.arange(int(dur * sr)) / sr
                freq = (f0 * (1 + rng.uniform(-0.3, 0.3) * tt / dur)
                        * (1 + 0.05 * np.sin(2 * np.pi * 60 * tt)))
                x = np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.sin(np.pi * tt / dur) ** 2
                _add(out, x, round((t + j * rng.uniform(0.08, 0.13)) * sr), rng.uniform(0.4, 1.0))
            t += rng.uniform(0.4, 1.5)
        wind = _filter(rng.standard_normal(self.n), _fir_lowpass(400.0, sr, 63))
        return out + 0.3 * wind * _rms(out) / max(_rms(wind), 1e-9)

    def part_water(self, role):
        rng, sr = self.rng, self.sr
        spec = np.fft.rfft(rng.standard_normal(self.n))
        f = np.fft.rfftfreq(self.n, 1 / sr)
        rush = np.fft.irfft(spec / np.sqrt(1 + f / 200.0) * _lowpass_gain(f, 3000.0), self.n)
        drops = np.zeros(self.n)
        times = np.sort(rng.uniform(0, self.seconds, int(self.seconds * 20)))
        for t in times:
            dur = rng.uniform(0.02, 0.05)
            tt = np.arange(int(dur * sr)) / sr
            f0 = rng.uniform(400, 1200)
            freq = f0 * (1 + 2.0 * tt / dur)
            _add(drops, np.sin(2 * np.pi * np.cumsum(freq) / sr) * np.exp(-tt / (0.3 * dur)),
                 round(t * sr), rng.uniform(0.3, 1.0))
        return rush / max(_rms(rush), 1e-9) + 0.8 * drops / max(_rms(drops), 1e-9)

    def part_clapping(self, role):
        rng, sr = self.rng, self.sr
        out = np.zeros(self.n)
        times = np.sort(rng.uniform(0, self.seconds, int(self.seconds * 30)))
        nn = int(0.03 * sr)
        for j in range(6):
            burst = _filter(rng.standard_normal(nn + 30),
                            _fir_bandpass(700.0 + 150 * j, 3200.0, sr, 31))[:nn]
            self.cache[("clap", j)] = burst * np.exp(-np.arange(nn) / (0.006 * sr))
        self.place(out, lambda i: self.cache[("clap", i % 6)], times,
                   rng.uniform(0.3, 1.0, len(times)))
        return out
