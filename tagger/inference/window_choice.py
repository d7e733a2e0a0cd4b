"""Which windows of a file are scored when a track is tagged from N of
them (tag.py --windows N, the beets plugin's `windows`), and reading only
those.

A file's windows are those `tagger.audio.audio_windows` cuts: window k
holds the file's samples from `k * hop - edge_padding` on. Of them, N are
scored: the centres of N equal parts of the windows that lie wholly
inside the file, the whole track (`EDGE_SECONDS`, none, left out at its
start and end: an intro and a fade-out are part of what a track's tags
summarise; `choose` can leave more out, bench/bench_windows.py compares
10 s). That is window rule `RULE`, recorded beside N wherever N is (a
results database's rows, the label of a track's tags: `windows_label`),
so a track scored by an earlier rule is told apart and scored again: rule
1 (`EARLIER_RULE`, an N recorded without a rule) left out the first and
last 10 s where the track allowed. The choice depends on the file's
length alone (by its header, checked: `audio_spans.SpanReader.length`),
so a file gets the same windows each time. A file with N windows or
fewer, or too few inside it, is scored from all of them.

The chosen windows are read by seeking (`audio_spans`): each is the same
window decoding from the start gives, within the decoder's tolerance
(tests/test_audio_spans.py), so their scores are those of the same windows
of a run over every window. A file that cannot be read so (a raw AAC
stream, a header whose length is unknown or past the file's end:
`SpanReader.seek_problem`) is decoded through instead, its length
counted first, and the same rule picks its windows; its `Chosen.through`
says why. Either way the windows are chosen from the length decoding
the file gives (an M4A's within its last AAC frame: `audio_spans`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from tagger.audio import CannotSeekExactly, audio_windows, stream_audio
from tagger.audio_spans import SpanReader

EDGE_SECONDS = 0.0  # left out at each end of a track where the track allows
RULE = 2  # the rule `choose` follows (see the module's docstring), recorded beside N
EARLIER_RULE = 1  # an N recorded without a rule: its first and last 10 s left out
# windows a library job (tag.py --db, the beets plugin) scores a track from:
# the smallest N whose top tags agree with every window's on every package of
# recorded music bench/bench_windows.py measures, with a margin (docs/performance.md,
# "A track from N windows")
LIBRARY_WINDOWS = 8
ALL = 0  # --windows 0 (or all): every window
MOST_WINDOWS = 2**63 - 1  # SQLite's largest integer: a results database stores N


class Chosen(NamedTuple):
    """What `read_chosen` returns once its windows are read: the file's
    `length` (samples at the tagger's rate; by the header where it was read
    by seeking), its own `file_rate`, the `indices` of the windows read
    (None: all of them) and, where it could not seek, why (`through`)."""

    length: int
    file_rate: int | None
    indices: np.ndarray | None
    through: str | None


def window_count(length: int, window: int, hop: int, edge_padding: int = 0) -> int:
    """The windows `audio_windows` cuts from `length` samples (one, padded,
    when the file is shorter than a window)."""
    padded = length + 2 * edge_padding
    return 1 if padded < window else (padded - window) // hop + 1


def windows_inside(length: int, window: int, hop: int, edge_padding: int,
                   margin: int) -> tuple[int, int]:
    """(first, end): windows first to end - 1 lie wholly inside a file of
    `length` samples and at least `margin` samples from its start and end
    (end <= first where none does)."""
    first = math.ceil((margin + edge_padding) / hop)  # starts >= margin
    end = (length - margin + edge_padding - window) // hop + 1  # ends <= length - margin
    return first, end


def choose(length: int, n: int, window: int, hop: int, edge_padding: int,
           sample_rate: int, edge_seconds: float = EDGE_SECONDS) -> np.ndarray | None:
    """(n,) int64 ascending: the indices of the windows to score in a file
    of `length` samples at `sample_rate` (see the module's docstring;
    `edge_seconds` left out at each end where the file allows), or None for
    all of them."""
    if window_count(length, window, hop, edge_padding) <= n:
        return None
    for margin in dict.fromkeys((int(edge_seconds * sample_rate), 0)):
        first, end = windows_inside(length, window, hop, edge_padding, margin)
        if end - first >= n:
            parts = np.arange(n, dtype=np.int64) * 2 + 1
            return first + parts * (end - first) // (2 * n)
    return None


def read_chosen(path: str, sample_rate: int, window: int, hop: int, edge_padding: int,
                n: int):
    """Yields `(index, samples)`, (window,) float32, for the windows of
    `path` that `choose` picks, in order, and returns a `Chosen`. Raises
    AudioDecodeError (NonFiniteAudioError) as `audio_windows` does."""
    with SpanReader(path, sample_rate) as reader:
        file_rate, length, through = reader.file_rate, reader.length, reader.seek_problem
        picks = None if through else choose(length, n, window, hop, edge_padding, sample_rate)
        spans = None
        if picks is not None and through is None:
            try:
                spans = [reader.read(int(k) * hop - edge_padding, window) for k in picks]
            except CannotSeekExactly as error:
                through = str(error)
    if spans is not None:
        yield from zip(picks.tolist(), spans)
        return Chosen(length, file_rate, picks, None)
    if through is not None:  # the length by decoding, then the same choice
        length = sum(len(block) for block in stream_audio(path, sample_rate))
        picks = choose(length, n, window, hop, edge_padding, sample_rate)
    wanted = None if picks is None else set(picks.tolist())
    windows = audio_windows(path, sample_rate, window, hop, edge_padding=edge_padding)
    while True:
        try:
            start, samples = next(windows)
        except StopIteration as stop:
            return Chosen(stop.value, file_rate, picks, through)
        if wanted is None or start // hop in wanted:
            yield start // hop, samples


def windows_label(label: str, n: int | None) -> str:
    """A model's label (`file_tags.model_label`) with the windows each track
    was scored from and the rule that chose them: `... windows:8 rule:2`;
    unchanged for every window (None or `ALL`), so a label written before
    --windows came reads as every window. A label with N and no rule is of
    `EARLIER_RULE`: never equal to this one, so its track is scored again."""
    return f"{label} windows:{n} rule:{RULE}" if n else label


def windows_count(text: str) -> int:
    """--windows: a number of windows from 1 to MOST_WINDOWS, or 0 or `all`
    for every window (`ALL`); ValueError for anything else."""
    text = str(text).strip().lower()
    if text == "all":
        return ALL
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(f"expected a number of windows (1 or more), or 0 or all for every "
                         f"window, got {text!r}")
    if value > MOST_WINDOWS:
        raise ValueError(f"expected at most {MOST_WINDOWS} windows (what a results database "
                         f"stores; a track with N windows or fewer is scored from every "
                         f"one), got {text!r}")
    return value
