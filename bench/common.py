"""Helpers shared by the benchmark scripts (run them from the repository root)."""

from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tagger.runtime import use_pooling_cpu_allocator  # noqa: E402
from tagger.host_memory import keep_freed_heap  # noqa: E402

use_pooling_cpu_allocator()  # as every command does, before TensorFlow's first tensor
keep_freed_heap()  # as every command and worker process does


def timed(fn, *args, **kwargs):
    """(result, seconds) of one call."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def synthetic_data(folder: str, clips: int, seconds: float) -> str:
    """A synthetic MagnaTagATune-layout dataset in `folder`, made once."""
    from tagger.datasets.synthetic import generate

    marker = os.path.join(folder, "annotations_final.csv")
    if not os.path.exists(marker):
        generate(folder, clips=clips, seconds=seconds, seed=0, progress=False)
    return folder


def ratio_line(name: str, value: float, goal: str) -> str:
    return f"{name:55s} {value:8.3f}   (goal {goal})"
