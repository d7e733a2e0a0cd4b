"""A model's outputs over many clips of records, scored as tag.py scores
many files (`inference.engine.tagging`): a reader thread takes each clip
from the records, resamples it to the model's rate and cuts it into the
model's windows while the model scores the windows before them, and the
windows of consecutive clips share batches, so every batch but the last
holds `batch_size` windows however short the clips (one traced shape,
the model's best batch). Each clip's outputs come back in the clips'
order once its last window is scored: the same values as the clip scored
alone, to float32 rounding.
"""

from __future__ import annotations

import collections
import dataclasses
import queue
import threading

import numpy as np

READ_AHEAD_CLIPS = 8  # clips prepared ahead of the model (memory: a few clips' windows)
_PUT_TIMEOUT = 0.1  # seconds between the reader's checks that it is still wanted


@dataclasses.dataclass(frozen=True)
class ClipOutputs:
    """A model's outputs over the windows of one clip."""

    starts: np.ndarray  # (windows,) seconds from the clip's start; before it with edge padding
    window_seconds: float
    scores: np.ndarray  # (windows, tags) float32
    embeddings: np.ndarray | None  # (windows, dim) float32, or None


def clip_windows(predictor, audio: np.ndarray, sample_rate: int) -> tuple:
    """(starts, windows): mono `audio` at `sample_rate` resampled to the
    predictor's rate and cut as tag.py cuts a file; `starts` (windows,) in
    samples of the padded audio, `windows` (windows, window_samples)."""
    from tagger.audio import audio_windows, resample

    p = predictor
    audio = resample(audio, sample_rate, p.sample_rate)
    starts, windows = zip(*audio_windows(audio, p.sample_rate, p.window_samples,
                                         p.hop_samples, edge_padding=p.edge_padding))
    return np.asarray(starts), np.stack(windows)  # (windows, window_samples)


def outputs_of_clips(predictor, clips, sample_rate: int, batch_size: int = 32):
    """Yields (clip, ClipOutputs) for every clip of the iterable `clips`,
    in order: `predictor` (an engine's Predictor) over the windows of the
    clip's float32 segments, mono audio at `sample_rate` (module
    docstring). An error raised taking a clip from `clips` is raised here."""
    p = predictor
    prepared = read_ahead(((clip, *clip_windows(p, clip["segments"].reshape(-1), sample_rate))
                           for clip in clips), READ_AHEAD_CLIPS)
    waiting = collections.deque()  # (clip, starts) of the clips not yet handed back
    unscored, queued = [], 0  # windows of the waiting clips not yet scored
    scored = _Scored()
    for clip, starts, windows in prepared:
        waiting.append((clip, starts))
        unscored.append(windows)
        queued += len(windows)
        if queued >= batch_size:
            flat = np.concatenate(unscored)  # (windows, window_samples)
            full = len(flat) // batch_size * batch_size
            for i in range(0, full, batch_size):
                scored.add(*p(flat[i:i + batch_size]))
            unscored, queued = [flat[full:]], len(flat) - full
            yield from scored.hand_back(waiting, p)
    if queued:
        scored.add(*p(np.concatenate(unscored)))
    yield from scored.hand_back(waiting, p)


class _Scored:
    """Outputs of scored windows not yet handed back to their clips."""

    def __init__(self):
        self.scores, self.embeddings, self.rows = [], [], 0

    def add(self, scores, embeddings):
        self.scores.append(np.asarray(scores, np.float32))
        if embeddings is not None:
            self.embeddings.append(np.asarray(embeddings, np.float32))
        self.rows += len(scores)

    def hand_back(self, waiting: collections.deque, p):
        """Yields (clip, ClipOutputs) of the waiting clips whose windows are
        all scored, in order."""
        if not waiting or self.rows < len(waiting[0][1]):
            return
        scores = np.concatenate(self.scores)
        embeddings = np.concatenate(self.embeddings) if self.embeddings else None
        used = 0
        while waiting and self.rows - used >= len(waiting[0][1]):
            clip, starts = waiting.popleft()
            rows = slice(used, used + len(starts))
            used += len(starts)
            yield clip, ClipOutputs(
                starts=(starts - p.edge_padding) / p.sample_rate,
                window_seconds=p.window_samples / p.sample_rate,
                scores=scores[rows].copy(),
                embeddings=None if embeddings is None else embeddings[rows].copy())
        self.scores = [scores[used:]]
        self.embeddings = [] if embeddings is None else [embeddings[used:]]
        self.rows -= used


def read_ahead(items, depth: int):
    """Yields the items of the iterable `items`, taken by a thread of its own
    up to `depth` items ahead; an error raised taking them is raised here.
    Stopping early (an error here, a generator closed) stops the thread."""
    end = object()
    ready = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=_PUT_TIMEOUT)
                return True
            except queue.Full:
                continue
        return False

    def take():
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((end, None))
        except BaseException as error:  # raised in the caller's thread: never silent
            put((end, error))

    thread = threading.Thread(target=take, name="tagger-clip-reader", daemon=True)
    thread.start()
    try:
        while True:
            item, error = ready.get()
            if item is end:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join()
