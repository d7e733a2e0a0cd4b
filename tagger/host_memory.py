"""Keeping freed host memory in the process for reuse (glibc malloc).

A build or a tagging run allocates and frees arrays of a few megabytes per
clip (decoded audio, resampled audio, int16 segments, serialized records).
With glibc's default settings some of them come from fresh pages every time
(blocks past its sliding mmap threshold, and heap tops it trims back to the
system), and the page faults cost more than the work done on the pages: in
a one-worker build they were most of the time spent beyond decoding and
resampling (bench/bench_build.py).
"""

from __future__ import annotations

import ctypes
import os

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

MMAP_THRESHOLD = 32 << 20  # glibc's largest: blocks below this come from the heap
TRIM_THRESHOLD = 512 << 20  # free heap top kept before any is given back

# A user who tunes malloc through the environment keeps their settings.
_USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_",
                  "GLIBC_TUNABLES")


def keep_freed_heap() -> bool:
    """Makes glibc malloc serve blocks under 32 MB from its heap and keep up
    to 512 MB of freed heap for reuse instead of returning it to the
    system. Returns whether the setting was made: not where the C library
    is not glibc, nor where the environment already sets malloc's
    thresholds. The cost: the process keeps up to that much freed memory
    until it exits."""
    if any(name in os.environ for name in _USER_SETTINGS):
        return False
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD,
                                                                TRIM_THRESHOLD)


def mallopt(parameter: int, value: int) -> bool:
    """glibc's mallopt(`parameter`, `value`) in this process; whether it
    took the setting (False where the C library has no mallopt: macOS, or
    one whose mallopt sets nothing)."""
    try:  # the process's own symbols: no `ldconfig -p` run by find_library
        function = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return function(parameter, value) == 1
