"""Windows of a clip's segments, in NumPy: what both record readers (the
tf.data one, `reader`, and the one without TensorFlow, `plain_reader`)
agree on, with no TensorFlow here.

A window is `window_segments` (k) consecutive segments of one clip joined
in time: `(k * segment_length,)` for raw audio, `(k * frames, n_mels)` for
log-mel; k = 1 is the sample-level CNN's input.
"""

from __future__ import annotations

import numpy as np

# A shuffle block of 2000 segments mixes as much as the 1000-segment
# per-window shuffle buffer the reader used before (distinct clips per
# batch, measured by bench/bench_reader.py), at twice its memory.
DEFAULT_SHUFFLE_SEGMENTS = 2000


def window_shape(info, window_segments: int) -> tuple:
    """Shape of one window of k segments of the records `info` (a
    DatasetInfo) describes: (k * L,) or (k * frames, n_mels)."""
    shape = list(info.segment_shape)
    shape[0] *= window_segments
    return tuple(shape)


def eval_window_starts(num_segments: int, window_segments: int) -> list:
    """Window starts covering a whole clip: 0, k, 2k, ... and, when k does
    not divide n, one last window ending at the clip's end."""
    k, n = window_segments, max(num_segments, window_segments)
    starts = list(range(0, n - k + 1, k))
    if n % k:
        starts.append(n - k)
    return starts


def train_windows_per_pass(info, split: str = "train", window_segments: int = 1) -> int:
    """Approximate number of training windows in one pass over `split`."""
    s = info.splits[split]
    if window_segments == 1:
        return s["segments"]
    return max(s["clips"], s["segments"] // window_segments)


def pass_windows_bound(record_lengths, info, window_segments: int) -> int:
    """At most how many training windows of k = `window_segments` segments
    one pass over clips in records of `record_lengths` bytes (their shards'
    framing) gives: a record of n bytes holds at most n // (a segment's
    bytes) segments, and a clip of s segments max(1, s // k) windows."""
    segment_bytes = int(np.prod(info.segment_shape)) * np.dtype(info.features["dtype"]).itemsize
    segments = np.asarray(record_lengths, np.int64) // segment_bytes
    return int(np.maximum(segments // window_segments, 1).sum())


def join_windows(segments: np.ndarray, window_segments: int, offset: int = 0) -> np.ndarray:
    """(n, *shape) -> (m, k * shape[0], *shape[1:]) non-overlapping windows
    of k segments starting at `offset`, m = (n - offset) // k: a view of
    `segments` (not copied). A clip shorter than one window is zero-padded
    to one window (a copy)."""
    k, n = window_segments, len(segments)
    if n < k:
        padded = np.zeros((k, *segments.shape[1:]), segments.dtype)
        padded[:n] = segments
        segments, n = padded, k
    offset = min(offset, n - k)
    m = (n - offset) // k
    windows = segments[offset:offset + m * k]
    return windows.reshape(m, k * segments.shape[1], *segments.shape[2:])


def window_means(values: np.ndarray, window_segments: int, offset: int = 0) -> np.ndarray:
    """(n, d) per-segment values -> (m, d) float32: the mean over the segments
    of each of `join_windows`' windows (its zero padding left out), as
    `reader.window_means` computes it in tf.data."""
    k, n = window_segments, len(values)
    values = np.asarray(values, np.float32)
    if n < k:  # one window, padded: the mean of the segments there are
        return values.sum(axis=0, keepdims=True) / np.float32(n)
    offset = min(offset, n - k)
    m = (n - offset) // k
    return values[offset:offset + m * k].reshape(m, k, -1).sum(axis=1) / np.float32(k)


def eval_windows_of_clip(segments: np.ndarray, window_segments: int) -> np.ndarray:
    """The windows at `eval_window_starts` of one clip's (n, *shape)
    segments: (windows, k * shape[0], *shape[1:])."""
    k, n = window_segments, len(segments)
    if k == 1:
        return segments
    aligned = join_windows(segments, k)
    if n > k and n % k:
        return np.concatenate([aligned, join_windows(segments[n - k:], k)])
    return aligned
