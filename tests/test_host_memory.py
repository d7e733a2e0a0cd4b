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
    from tagger.host_memory import glibc_version

    return glibc_version() is not None


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
def test_a_process_started_again_with_huge_pages_keeps_freed_heap():
    """The restart's own GLIBC_TUNABLES is not a user's setting of malloc."""
    from tagger.host_memory import HUGE_PAGES

    kept, faults = faults_in_fresh_process(keep=True, env={"GLIBC_TUNABLES": HUGE_PAGES})
    assert kept
    assert faults < 50


@pytest.mark.slow
@pytest.mark.skipif(not glibc(), reason="the setting is glibc malloc's")
def test_worker_processes_keep_freed_heap():
    assert all(faults < 50 for faults in ordered_map(clip_sized_page_faults, range(2), 2))


# --- huge pages for XLA's buffers ----------------------------------------------------

def huge_pages_here() -> bool:
    from tagger.host_memory import huge_page_environment

    return huge_page_environment({}) is not None


needs_huge_pages = pytest.mark.skipif(not huge_pages_here(), reason="needs glibc 2.35+ and "
                                      "transparent huge pages in madvise mode")


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
    ({"GLIBC_TUNABLES": ""}, "glibc 2.36", "madvise", False),  # the way to opt out
    ({"MALLOC_TRIM_THRESHOLD_": "0"}, "glibc 2.36", "madvise", False),
    ({"MALLOC_ARENA_MAX": "2"}, "glibc 2.36", "madvise", False),
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


def as_started(environ=None) -> dict:
    """`environ` (this process's) without any setting of malloc's."""
    from tagger.host_memory import huge_page_environment

    environ = dict(os.environ if environ is None else environ)
    kept = {k: v for k, v in environ.items()
            if k != "GLIBC_TUNABLES" and not k.startswith("MALLOC_")}
    assert huge_page_environment(kept, "glibc 2.36", "madvise") is not None
    return kept


@pytest.mark.parametrize("argv, orig_argv, main, again", [
    (["SCRIPT", "--x", "1"], ["python", "SCRIPT", "--x", "1"], "__main__", True),
    (["SCRIPT", "--x"], ["python", "-X", "dev", "-uB", "SCRIPT", "--x"], "__main__", True),
    (["SCRIPT", "--x"], ["python", "-m", "tagger.commands.train", "--x"],
     "tagger.commands.train", True),
    (["SCRIPT"], ["python", "-m", "tagger"], "tagger.__main__", True),  # a package's
    (["-c", "--x"], ["python", "-c", "CODE", "--x"], "__main__", True),
    (["-c", "--x"], ["python", "-uc", "CODE", "--x"], "__main__", True),
    (["SCRIPT", "--x"], ["python", "-c", "CODE", "SCRIPT", "--x"], "__main__", True),  # a wrapper
    (["SCRIPT", "--x"], ["python", "SCRIPT", "--x"], "frozen", False),
    (["SCRIPT", "--x"], ["python", "/usr/bin/ipython"], "__main__", False),  # %run in a host
    (["SCRIPT", "--x"], ["python", "-m", "pdb", "SCRIPT", "--x"], None, False),
    (["SCRIPT", "--x"], ["python", "-m", "cProfile", "SCRIPT", "--x"], "cProfile", False),
    (["SCRIPT", "--x"], ["python", "HOST", "SCRIPT", "--x"], "__main__", False),
    (["SCRIPT", "--x"], ["python", "-m", "pytest", "-q"], "pytest", False),  # argv set by a test
    (["SCRIPT", "--x"], ["python", "-m", "other", "--x"], "tagger.commands.train", False),
    (["SCRIPT", "--x"], ["python", "SCRIPT", "--y"], "__main__", False),
    (["SCRIPT"], ["python", "-mtagger.commands.train"], "tagger.commands.train", False),
    (["-"], ["python", "-"], "__main__", False),  # standard input, read once
    (["/dev/stdin"], ["python", "/dev/stdin"], "__main__", False),
    (["SCRIPT"], [], "__main__", False),  # an embedded interpreter
])
def test_a_program_starts_again_only_as_it_was_started(argv, orig_argv, main, again,
                                                        tmp_path):
    from tagger.host_memory import can_start_again

    script = tmp_path / "command.py"
    script.write_text("")

    def named(words):
        return [str(script) if word == "SCRIPT" else word for word in words]

    frozen = main == "frozen"
    assert can_start_again(named(argv), tuple(named(orig_argv)), main, frozen) is again


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
@needs_huge_pages
def test_malloc_asking_for_huge_pages_faults_a_large_block_in_2_mb_pages():
    from tagger.host_memory import huge_page_environment

    plain = as_started()
    small_pages = faults_of_a_large_block(plain)
    assert small_pages > 60_000  # 65,536 pages of 4 KB
    # 128 of 2 MB where the kernel finds them all; it falls back to 4 KB
    # pages where its memory is too fragmented for some
    assert faults_of_a_large_block(huge_page_environment(plain)) < small_pages // 4


RESTARTED = """
import os, sys
sys.path.insert(0, {root!r})
print(os.getpid(), os.environ.get("GLIBC_TUNABLES"), sys.argv[1:], flush=True)
sys.argv = sys.argv[1:]
from tagger.commands.{command} import main
sys.exit(main())
"""


def started(command: str, argv, cwd, **env) -> tuple[list, subprocess.CompletedProcess]:
    """`command`'s main() run as the program of a fresh process (through a
    `python -c` wrapper printing its pid, GLIBC_TUNABLES and argv at each
    start) on the command line `argv`: (each start's [pid, setting, argv
    text], the finished process)."""
    done = subprocess.run([sys.executable, "-c", RESTARTED.format(root=ROOT, command=command),
                           *argv], capture_output=True, text=True, cwd=cwd,
                          env={**as_started(), **env}, timeout=120)
    return [line.split(" ", 2) for line in done.stdout.splitlines()], done


@pytest.mark.slow
@needs_huge_pages
def test_a_command_under_jax_starts_again_with_huge_pages(tmp_path):
    """A command run from its command line under JAX is started again, the
    same process with the same command line, malloc asking for huge pages;
    then does its work (here: one line for a missing dataset)."""
    from tagger.host_memory import HUGE_PAGES

    argv = [os.path.join(ROOT, "eval.py"), str(tmp_path / "missing.keras"), "--backend", "jax"]
    (first, second), done = started("eval", argv, tmp_path)
    assert first[0] == second[0]  # one process
    assert (first[1], second[1]) == ("None", HUGE_PAGES)
    assert first[2] == second[2] == repr(argv)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "dataset_info.json' not found" in done.stderr


@pytest.mark.slow
@needs_huge_pages
@pytest.mark.parametrize("command, script, env", [
    ("library", "library.py", {"KERAS_BACKEND": "jax"}),  # SQLite only: no Keras
    ("eval", "eval.py", {"KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cuda"}),  # no CPU
    ("eval", "eval.py", {}),  # TensorFlow
])
def test_a_command_that_computes_nothing_with_jax_on_the_cpu_is_not_started_again(
        command, script, env, tmp_path):
    argv = [os.path.join(ROOT, script), "info", str(tmp_path / "missing.db")]
    if command == "eval":
        argv = [os.path.join(ROOT, script), str(tmp_path / "missing.keras")]
    starts, done = started(command, argv, tmp_path, **env)
    assert [start[1] for start in starts] == ["None"]
    assert done.returncode != 0 and done.stderr.count("\n") == 1, done.stderr


# --- the compiler's freed heap given back ----------------------------------------------

def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not glibc(), reason="malloc_trim is glibc's")
def test_freed_heap_goes_back_to_the_system():
    """64 blocks of 1 MB written and freed stay resident where freed heap is
    kept (`keep_freed_heap`) until `release_freed_heap` gives them back."""
    import ctypes

    from tagger.host_memory import keep_freed_heap, release_freed_heap

    if not keep_freed_heap():
        pytest.skip("malloc is tuned through the environment")
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(1 << 20) for _ in range(64)]
    for block in blocks:
        ctypes.memset(block, 1, 1 << 20)
    for block in reversed(blocks):
        libc.free(block)
    kept = resident_bytes()
    assert release_freed_heap()
    assert kept - resident_bytes() > 48 << 20


def test_a_program_compile_releases_the_freed_heap_and_an_operation_compile_does_not(
        monkeypatch):
    pytest.importorskip("jax")
    from tagger import host_memory

    released = []
    monkeypatch.setattr(host_memory, "release_freed_heap", lambda: released.append(1))
    host_memory.release_heap_after_compiles()
    host_memory.release_heap_after_compiles()  # once per process
    listener, = host_memory._releasing
    listener(host_memory.COMPILE_EVENT, host_memory.PROGRAM_COMPILE_S, fun_name="jit(step)")
    listener(host_memory.COMPILE_EVENT, 0.01, fun_name="jit(add)")
    listener("/jax/core/compile/jaxpr_trace_duration", 5.0, fun_name="jit(step)")
    assert released == [1]


def test_jax_reports_each_compile_by_the_event_the_release_listens_for():
    """What `release_heap_after_compiles` relies on: JAX reports a compile's
    seconds under COMPILE_EVENT to jax.monitoring's listeners, before the
    program runs."""
    jax = pytest.importorskip("jax")
    from tagger.host_memory import COMPILE_EVENT

    seen, ran = [], []

    def listener(event, seconds, **_):
        if event == COMPILE_EVENT:
            seen.append((seconds, len(ran)))

    def program(x):
        jax.debug.callback(lambda: ran.append(1))  # as the program runs
        return (x * 3.5 + 1.25).sum()

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        assert float(jax.jit(program)(jax.numpy.arange(7.0))) == 3.5 * 21 + 1.25 * 7
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert len(ran) == 1
    assert seen and all(seconds > 0 and runs == 0 for seconds, runs in seen)
