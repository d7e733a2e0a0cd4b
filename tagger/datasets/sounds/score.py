"""The score of a clip: tempo, key and chord progression, and the notes the
parts play on them (melodies, arpeggios, held chord tones).

Tempo sets the note rate: slow about 1-2 onsets/s, mid 3-4, fast about 10.
"""

from __future__ import annotations

import numpy as np

from tagger.datasets.sounds.attributes import ClipAttributes

_BPM = {"slow": (58.0, 70.0), "mid": (96.0, 116.0), "fast": (150.0, 168.0)}
# Melodic step in beats: about 1, 3.5 and 10 onsets per second.
_STEP = {"slow": 1.0, "mid": 0.5, "fast": 0.25}
_SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "raga": (0, 1, 4, 5, 7, 8, 11),  # Bhairav
    "pentatonic": (0, 2, 4, 7, 9),
}
_PROGRESSIONS = {
    "major": ((0, 5, 3, 4), (0, 3, 4, 0), (0, 4, 5, 3), (0, 3, 0, 4)),
    "minor": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 4), (0, 5, 3, 4)),
    "raga": ((0, 0, 0, 0),),
    "pentatonic": ((0, 3, 0, 4), (0, 4, 3, 0)),
}


class Score:
    """The tempo, key and chords of one clip, with its random generator and
    the cache of synthesised notes that every part shares."""

    def __init__(self, a: ClipAttributes, n: int, sr: int, rng):
        self.a, self.n, self.sr, self.rng = a, n, sr, rng
        self.seconds = n / sr
        lo, hi = _BPM[a.tempo]
        self.bpm = float(a.bpm) if a.bpm else float(rng.uniform(lo, hi))
        self.beat = 60.0 / self.bpm
        self.bar = 4 * self.beat
        self.step = _STEP[a.tempo]
        self.scale = _SCALES[a.mode]
        options = _PROGRESSIONS[a.mode]
        self.progression = options[int(rng.integers(len(options)))]
        self.cache = {}

    def times(self, step_beats, offset_beats=0.0):
        return np.arange(offset_beats * self.beat, self.seconds, step_beats * self.beat)

    def chord_pcs(self, t):
        """Pitch classes (relative to C) of the chord sounding at time t."""
        degree = self.progression[int(t // self.bar) % len(self.progression)]
        s = self.scale
        if len(s) < 7:  # pentatonic and drones: root and fifth (+ third)
            picks = (degree, degree + 2) if len(s) == 5 else (0, 4)
        else:
            picks = (degree, degree + 2, degree + 4)
        return {(self.a.key + s[p % len(s)]) % 12 for p in picks}

    def chord_notes(self, t, lo, hi):
        pcs = self.chord_pcs(t)
        return [m for m in range(int(lo), int(hi) + 1) if m % 12 in pcs]

    def root(self, t, lo):
        """Lowest chord root at or above MIDI `lo`."""
        degree = self.progression[int(t // self.bar) % len(self.progression)]
        pc = (self.a.key + self.scale[degree % len(self.scale)]) % 12
        return int(lo) + (pc - int(lo)) % 12

    def scale_notes(self, lo, hi):
        pcs = {(self.a.key + s) % 12 for s in self.scale}
        return np.array([m for m in range(int(lo), int(hi) + 1) if m % 12 in pcs])

    def melody(self, times, lo, hi):
        """A random walk on the scale; on chord tones at each bar start (and
        on half of the other beats)."""
        notes = self.scale_notes(lo, hi)
        steps = self.rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3], size=len(times))
        beats = np.asarray(times) / self.beat
        i = len(notes) // 2
        out = np.empty(len(times), int)
        for j, t in enumerate(times):
            i += steps[j]
            if i < 0 or i >= len(notes):
                i = int(np.clip(-i if i < 0 else 2 * (len(notes) - 1) - i, 0, len(notes) - 1))
            m = int(notes[i])
            b = round(beats[j])
            if abs(beats[j] - b) < 0.05 and (b % 4 == 0 or self.rng.random() < 0.5):
                pcs = self.chord_pcs(t)
                for d in (0, -1, 1, -2, 2):
                    if (m + d) % 12 in pcs and lo <= m + d <= hi:
                        m = m + d
                        break
            out[j] = m
        return out

    def arpeggio(self, times, lo, hi, pattern=(0, 2, 1, 3, 2, 1)):
        """Broken chords: indices into the chord's notes between lo and hi."""
        out = []
        for j, t in enumerate(times):
            notes = self.chord_notes(t, lo, hi)
            out.append(notes[pattern[j % len(pattern)] % len(notes)])
        return np.array(out, int)

    def sustained(self, lo, hi, voices, step_beats=None):
        """Chord tones held for `step_beats` (default one bar), one list per voice."""
        step = step_beats or 4.0
        lines = [[] for _ in range(voices)]
        for t in self.times(step):
            notes = self.chord_notes(t, lo, hi)
            if not notes:
                continue
            pick = np.linspace(0, len(notes) - 1, voices).round().astype(int)
            for v in range(voices):
                lines[v].append((t, step * self.beat, notes[pick[v]], 1.0, None))
        return lines

    def humanise(self, times, ms=6.0):
        return times + self.rng.normal(0.0, ms / 1000.0, len(times))
