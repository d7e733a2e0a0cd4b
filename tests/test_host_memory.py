"""Freed host memory kept for reuse: no page faults for clip-sized arrays."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tagger.parallel import ordered_map

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def clip_sized_page_faults(_=None) -> int:
    """Minor page faults of 40 rounds of what a build does per clip: a
    float32 waveform, its int16 copy and their bytes, each freed (a warm-up
    of 5 rounds first)."""
    import resource

    import numpy as np

    def one_clip(samples):
        waveform = np.ones(samples, np.float32)
        pcm = (waveform * 2).astype(np.int16)
        record = pcm.tobytes()
        del waveform, pcm, record

    for _ in range(5):
        one_clip(700_000)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for i in range(40):
        one_clip(500_000 + 20_000 * (i % 7))
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before


def faults_in_fresh_process(keep: bool, env=None) -> tuple[bool, int]:
    code = ("import sys; sys.path.insert(0, 'tests'); sys.path.insert(0, '.');"
            "from tagger.host_memory import keep_freed_heap;"
            f"kept = keep_freed_heap() if {keep} else False;"
            "from test_host_memory import clip_sized_page_faults;"
            "print(int(kept), clip_sized_page_faults())")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, check=True, env={**os.environ, **(env or {})})
    kept, faults = out.stdout.split()
    return kept == "1", int(faults)


def glibc() -> bool:
    if "CS_GNU_LIBC_VERSION" not in getattr(os, "confstr_names", {}):
        return False
    return os.confstr("CS_GNU_LIBC_VERSION") is not None


@pytest.mark.slow
@pytest.mark.skipif(not glibc(), reason="the setting is glibc malloc's")
def test_kept_heap_serves_every_clip_from_pages_already_mapped():
    _, default_faults = faults_in_fresh_process(keep=False)
    kept, kept_faults = faults_in_fresh_process(keep=True)
    assert kept
    assert default_faults > 1000  # what the setting is for: fresh pages per clip
    assert kept_faults < 50


@pytest.mark.slow
@pytest.mark.skipif(not glibc(), reason="the setting is glibc malloc's")
def test_malloc_settings_from_the_environment_are_kept():
    kept, faults = faults_in_fresh_process(keep=True, env={"MALLOC_TRIM_THRESHOLD_": "131072"})
    assert not kept
    assert faults > 1000


@pytest.mark.slow
@pytest.mark.skipif(not glibc(), reason="the setting is glibc malloc's")
def test_worker_processes_keep_freed_heap():
    assert all(faults < 50 for faults in ordered_map(clip_sized_page_faults, range(2), 2))
