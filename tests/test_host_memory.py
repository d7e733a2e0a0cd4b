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


# --- huge pages for XLA's buffers ----------------------------------------------------

def huge_pages_here() -> bool:
    from tagger.host_memory import huge_page_environment

    return huge_page_environment({}) is not None


@pytest.mark.parametrize("environ, libc, thp, asks", [
    ({}, "glibc 2.36", "madvise", True),
    ({"PATH": "/bin"}, "glibc 2.35", "madvise", True),
    ({}, "glibc 2.34", "madvise", False),  # no such tunable before 2.35
    ({}, "glibc 2.36", "always", False),  # huge pages without asking
    ({}, "glibc 2.36", "never", False),
    ({}, "glibc 2.36", "", False),  # not Linux
    ({}, "", "madvise", False),  # musl, macOS
    ({}, "glibc x", "madvise", False),
    ({"GLIBC_TUNABLES": "glibc.malloc.arena_max=1"}, "glibc 2.36", "madvise", False),
    ({"MALLOC_TRIM_THRESHOLD_": "0"}, "glibc 2.36", "madvise", False),
])
def test_huge_pages_are_asked_for_where_glibc_and_the_kernel_give_them(environ, libc, thp,
                                                                       asks):
    from tagger.host_memory import HUGE_PAGES, huge_page_environment

    changed = huge_page_environment(environ, libc=libc, thp_mode=thp)
    if not asks:
        assert changed is None
        return
    assert changed == {**environ, "GLIBC_TUNABLES": HUGE_PAGES}
    assert "GLIBC_TUNABLES" not in environ  # a copy


def faults_of_a_large_block(env) -> int:
    """Minor page faults of filling a block of 256 MB from malloc (past
    glibc's largest mmap threshold: a mapping of its own) in a fresh
    process (NumPy asks for huge pages for its large arrays itself)."""
    code = ("import ctypes, resource; libc = ctypes.CDLL(None);"
            "libc.malloc.restype = ctypes.c_void_p; size = 256 << 20;"
            "before = resource.getrusage(0).ru_minflt;"
            "ctypes.memset(libc.malloc(size), 1, size);"
            "print(resource.getrusage(0).ru_minflt - before)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=env)
    return int(out.stdout)


@pytest.mark.slow
@pytest.mark.skipif(not huge_pages_here(), reason="needs glibc 2.35+ and transparent huge "
                    "pages in madvise mode")
def test_malloc_asking_for_huge_pages_faults_a_large_block_in_2_mb_pages():
    from tagger.host_memory import huge_page_environment

    plain = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    assert faults_of_a_large_block(plain) > 60_000  # 65,536 pages of 4 KB
    assert faults_of_a_large_block(huge_page_environment(plain)) < 1_000  # 128 of 2 MB


RESTARTED = """
import os, sys
sys.path.insert(0, {root!r})
print(os.getpid(), os.environ.get("GLIBC_TUNABLES"), sys.argv[1:], flush=True)
sys.argv = sys.argv[1:]
from tagger.commands.eval import main
sys.exit(main())
"""


@pytest.mark.slow
@pytest.mark.skipif(not huge_pages_here(), reason="needs glibc 2.35+ and transparent huge "
                    "pages in madvise mode")
def test_a_command_under_jax_starts_again_with_huge_pages(tmp_path):
    """A command run from its command line under JAX is started again, the
    same process with the same command line, malloc asking for huge pages;
    then does its work (here: one line for a missing dataset)."""
    from tagger.host_memory import HUGE_PAGES

    missing = str(tmp_path / "missing.keras")
    env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
    done = subprocess.run([sys.executable, "-c", RESTARTED.format(root=ROOT), "eval.py",
                           missing, "--backend", "jax"], capture_output=True, text=True,
                          env=env, cwd=tmp_path)
    first, second = [line.split(" ", 2) for line in done.stdout.splitlines()]
    assert first[0] == second[0]  # one process
    assert (first[1], second[1]) == ("None", HUGE_PAGES)
    assert first[2] == second[2] == repr(["eval.py", missing, "--backend", "jax"])
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "dataset_info.json' not found" in done.stderr
