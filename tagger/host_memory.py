"""Keeping freed host memory in the process for reuse (glibc malloc).

A build or a tagging run allocates and frees arrays of a few megabytes per
clip (decoded audio, resampled audio, int16 segments, serialized records).
With glibc's default settings some of them come from fresh pages every time
(blocks past its sliding mmap threshold, and heap tops it trims back to the
system), and the page faults cost more than the work done on the pages: in
a one-worker build they were most of the time spent beyond decoding and
resampling (bench/bench_build.py).

XLA's CPU client allocates each training step's buffers afresh, in blocks
past any mmap threshold, which glibc maps and unmaps every step: each
step faults its pages in again. Where the kernel gives transparent huge
pages on request (`madvise`), glibc's `glibc.malloc.hugetlb=1` asks for
them (docs/jax.md, "Huge pages for XLA's buffers"). glibc reads it once,
at start, so a command under JAX starts itself again with it
(`restart_with_huge_pages`).

XLA's compiler frees what it allocated while compiling a program, and
glibc keeps it in the arenas of the compiler's threads; the program's
buffers, mapped afresh, come on top of it. So a process under JAX gives
the freed heap back to the system after each program's compile
(`release_heap_after_compiles`).
"""

from __future__ import annotations

import ctypes
import os
import stat
import sys

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
    thresholds (other than `restart_with_huge_pages`'s own). The cost: the
    process keeps up to that much freed memory until it exits."""
    ours = "GLIBC_TUNABLES" if started_with_huge_pages() else None
    if any(name in os.environ for name in _USER_SETTINGS if name != ours):
        return False
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and mallopt(M_TRIM_THRESHOLD,
                                                                TRIM_THRESHOLD)


def release_freed_heap() -> bool:
    """Gives the freed memory of every malloc arena back to the system
    (glibc's malloc_trim(0)); whether any was given back (False where the
    C library has no malloc_trim)."""
    try:
        function = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    return function(0) == 1


# What JAX reports after each of XLA's compiles (jax.monitoring), with its seconds
COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
# A compile of fewer seconds is of an operation (Keras runs eagerly), not of a
# program: it leaves little, and a release after each would add a tenth to it
PROGRAM_COMPILE_S = 0.1
_releasing = []  # the listener, once registered


def release_heap_after_compiles() -> None:
    """From now on, in this process, the freed heap goes back to the system
    (`release_freed_heap`) after each of XLA's compiles of a program
    (COMPILE_EVENT of PROGRAM_COMPILE_S seconds or more), before the
    program runs. Once per process."""
    if _releasing:
        return
    import jax

    def listener(event: str, seconds: float, **_) -> None:
        if event == COMPILE_EVENT and seconds >= PROGRAM_COMPILE_S:
            release_freed_heap()

    _releasing.append(listener)
    jax.monitoring.register_event_duration_secs_listener(listener)


def mallopt(parameter: int, value: int) -> bool:
    """glibc's mallopt(`parameter`, `value`) in this process; whether it
    took the setting (False where the C library has no mallopt: macOS, or
    one whose mallopt sets nothing)."""
    try:  # the process's own symbols: no `ldconfig -p` run by find_library
        function = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return function(parameter, value) == 1


HUGE_PAGES = "glibc.malloc.hugetlb=1"  # madvise(MADV_HUGEPAGE) on malloc's mappings
THP_MODE = "/sys/kernel/mm/transparent_hugepage/enabled"


def huge_page_environment(environ, libc: str | None = None,
                          thp_mode: str | None = None) -> dict | None:
    """`environ` with GLIBC_TUNABLES asking glibc's malloc for transparent
    huge pages (HUGE_PAGES), or None where that would change nothing or
    override the user: a C library other than glibc 2.35 or later (`libc`,
    as `os.confstr("CS_GNU_LIBC_VERSION")` gives it), transparent huge
    pages not in `madvise` mode (`thp_mode`, THP_MODE's selected word;
    `always` gives them without asking), or malloc tuned in `environ`
    already (GLIBC_TUNABLES, even empty, or any MALLOC_* variable). Reads
    the machine's where `libc` or `thp_mode` is None."""
    if "GLIBC_TUNABLES" in environ or any(name.startswith("MALLOC_") for name in environ):
        return None
    thp_mode = transparent_huge_pages() if thp_mode is None else thp_mode
    if thp_mode != "madvise" or not huge_page_tunable(libc):
        return None
    return {**environ, "GLIBC_TUNABLES": HUGE_PAGES}


def huge_page_tunable(libc: str | None = None) -> bool:
    """Whether the C library (`libc`, else this machine's) is glibc 2.35 or
    later, which reads `glibc.malloc.hugetlb`."""
    libc = glibc_version() if libc is None else libc
    name, _, version = (libc or "").partition(" ")
    try:
        major, minor = (int(part) for part in version.split(".")[:2])
    except ValueError:
        return False
    return name == "glibc" and (major, minor) >= (2, 35)


def started_with_huge_pages(environ=os.environ) -> bool:
    """Whether the process was started with `huge_page_environment`'s
    setting (GLIBC_TUNABLES=HUGE_PAGES, nothing else)."""
    return environ.get("GLIBC_TUNABLES") == HUGE_PAGES


def huge_pages_in_effect(environ=os.environ) -> bool:
    """Whether this process's malloc asks for huge pages and gets them:
    started with HUGE_PAGES in GLIBC_TUNABLES, on a glibc that reads it,
    where the kernel gives them."""
    tunables = environ.get("GLIBC_TUNABLES", "").split(":")
    return (HUGE_PAGES in tunables and huge_page_tunable()
            and transparent_huge_pages() in ("madvise", "always"))


def can_start_again(argv, orig_argv, main_module: str | None = None,
                    frozen: bool = False) -> bool:
    """Whether the program whose command line is `argv` (sys.argv) can be
    started again from the interpreter's `orig_argv` (sys.orig_argv) and
    run the same: what the interpreter runs (`interpreter_runs`) is the
    program itself (a script given with `argv`'s arguments, `-m` of
    `main_module`, `__main__`'s module, or `-c` code, which may drop its
    own name from sys.argv: a wrapper), not a host such as a debugger,
    a profiler or IPython's `%run`; from a regular file or `-c` (not
    standard input or a pipe, read once); and not a frozen executable."""
    runs = interpreter_runs(orig_argv)
    if frozen or not argv or runs is None:
        return False
    how, at = runs
    argv, after = list(argv), list(orig_argv[at + 1:])
    if how == "-c" and argv == ["-c", *after]:
        return True
    if how == "-m":
        named = main_module in (orig_argv[at], f"{orig_argv[at]}.__main__")
        same = named and argv[1:] == after
    else:  # a script, or -c code running one (argv as the code left it)
        same = argv == list(orig_argv[at + (how == "-c"):])
    try:
        return same and argv[0] != "-" and stat.S_ISREG(os.stat(argv[0]).st_mode)
    except (OSError, ValueError):
        return False


def interpreter_runs(orig_argv) -> tuple[str, int] | None:
    """What the interpreter started as `orig_argv` runs: ("script", i) for
    the script at orig_argv[i], ("-m", i) for the module named there,
    ("-c", i) for the code there; None for standard input, an option's
    argument joined to it (`-mNAME`) or nothing."""
    i = 1
    while i < len(orig_argv):
        word = orig_argv[i]
        if word == "-" or not word.startswith("-"):
            return ("script", i) if word != "-" else None
        if word == "--check-hash-based-pycs":
            i += 1
        elif not word.startswith("--"):
            for k, letter in enumerate(word[1:], start=2):
                if letter in "mc":
                    return (f"-{letter}", i + 1) if k == len(word) and i + 1 < len(
                        orig_argv) else None
                if letter in "XW":
                    i += k == len(word)  # its argument is the next word
                    break
        i += 1
    return None


def restart_with_huge_pages() -> None:
    """Starts this process's program again, with its command line as
    given (`sys.orig_argv`) and `huge_page_environment`'s setting: the same
    process (os.execve), from its first line. Returns where the setting
    does not apply or is made already, and where the program cannot be
    started again the same (`can_start_again`). For a program's entry
    point alone, before it has done anything."""
    environ = huge_page_environment(os.environ)
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if environ is None or not sys.executable or not can_start_again(
            sys.argv, sys.orig_argv, spec and spec.name, getattr(sys, "frozen", False)):
        return
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], environ)
    except OSError:  # the interpreter cannot be started again: go on as started
        return


def glibc_version() -> str | None:
    """"glibc 2.36" where the C library is glibc, else None."""
    try:
        return os.confstr("CS_GNU_LIBC_VERSION")
    except (AttributeError, ValueError, OSError):
        return None


def transparent_huge_pages() -> str | None:
    """The kernel's transparent huge page mode (always, madvise, never), or
    None where it says none (not Linux, or no such setting)."""
    try:
        with open(THP_MODE) as file:
            words = file.read().split()
    except OSError:
        return None
    selected = [word[1:-1] for word in words if word.startswith("[") and word.endswith("]")]
    return selected[0] if selected else None
