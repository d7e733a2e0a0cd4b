"""The suite's memory: each process that runs tests (an xdist worker, or
pytest itself with -n 0) reports its peak resident size after every test
phase, and the end of the run prints each one's peak against the goal, with
the tests during which the peaks rose the most (where a cut would pay).

Such a process also keeps glibc's malloc to MALLOC_ARENAS arenas
(`fewer_malloc_arenas`): by default each thread that allocates gets an
arena of its own, up to eight per core, and the memory TensorFlow's and
XLA's threads free stays scattered over their arenas, seldom given
back.

The peak is the kernel's high-water mark of the process (`ru_maxrss`): what
a test's own subprocesses take is theirs, not the worker's.

A process that runs tests allocates TensorFlow's tensors with the system's
malloc (`system_allocators`): the commands' pools (TensorFlow's BFC
allocator, and oneDNN's own, which TF_CPU_ALLOCATOR_USE_BFC does not
reach) grow their regions to the most a run needed and never return them,
which in a worker hosting hundreds of runs is the most any test needed,
kept to the end (docs/testing.md, "A worker's memory"). The processes the
tests start get the commands' own settings.
"""

from __future__ import annotations

import os
import resource

import pytest

GOAL_BYTES = 4e9  # a worker's peak resident size at most, over a whole run
MALLOC_ARENAS = 2  # glibc's malloc arenas in a process that runs tests
ARENA_SETTINGS = ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES")  # the environment's, kept
RISES = 5  # the tests whose phases raised a peak the most, printed
# TensorFlow reads these once, when it makes its first tensor
SYSTEM_ALLOCATORS = {"TF_CPU_ALLOCATOR_USE_BFC": "false",
                     "TF_ONEDNN_USE_SYSTEM_ALLOCATOR": "true"}


def system_allocators(environ=os.environ) -> dict:
    """Sets SYSTEM_ALLOCATORS's variables that `environ` does not set (a
    setting given is kept); returns those it set."""
    added = {name: value for name, value in SYSTEM_ALLOCATORS.items() if name not in environ}
    environ.update(added)
    return added


def fewer_malloc_arenas(count: int = MALLOC_ARENAS, environ=os.environ) -> bool:
    """Caps this process's malloc arenas at `count` (glibc's mallopt
    M_ARENA_MAX; threads share them once that many exist). False where
    the C library takes no such setting, or where `environ` sets malloc's
    arenas (a setting given is kept)."""
    from tagger.host_memory import M_ARENA_MAX, mallopt

    if any(name in environ for name in ARENA_SETTINGS):
        return False
    return mallopt(M_ARENA_MAX, count)


def first_tensor_then_unset(added: dict, environ=os.environ) -> None:
    """Makes TensorFlow's first tensor in this process, where it is
    installed, so that its allocators read `added`'s settings; then takes
    them out of `environ`, so that the processes tests start do not inherit
    them."""
    from tagger.runtime import quiet_tensorflow, tensorflow_installed

    if added and tensorflow_installed():
        quiet_tensorflow()
        import tensorflow as tf

        tf.zeros([1]).numpy()
    for name, value in added.items():
        if environ.get(name) == value:
            del environ[name]


def peak_bytes() -> int:
    """This process's peak resident size so far (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def worker_of(report) -> str:
    """The xdist worker a report came from ("gw0"), or "pytest" without xdist."""
    node = getattr(report, "node", None)
    return node.gateway.id if node is not None else "pytest"


def runs_tests(config) -> bool:
    """Whether this pytest process runs tests (an xdist worker, or pytest
    without workers) rather than handing them out to workers."""
    return hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None)


class WorkerMemory:
    """The plugin: registered once per pytest run (tests/conftest.py), before
    any test module is imported, with the allocator settings
    `system_allocators` made in this process (none where it hands tests
    out), for `first_tensor_then_unset` at its first test."""

    def __init__(self, allocators: dict | None = None, arenas: int | None = None):
        self.peaks = {}  # worker: bytes, in the controller
        self.rises = []  # (bytes the peak rose by, worker, node id, phase)
        self.allocators = allocators or {}
        self.arenas = arenas  # the cap on malloc's arenas set here, if any

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        report.user_properties.append(("peak_rss", peak_bytes()))
        return report

    def pytest_runtest_logreport(self, report):
        peak = dict(report.user_properties).get("peak_rss")
        if peak is None:
            return
        worker = worker_of(report)
        before = self.peaks.get(worker)
        if before is not None and peak > before:
            self.rises.append((peak - before, worker, report.nodeid, report.when))
        self.peaks[worker] = max(peak, before or 0)

    def pytest_terminal_summary(self, terminalreporter):
        if not self.peaks or hasattr(terminalreporter.config, "workerinput"):
            return  # an xdist worker: its reports reach the controller
        terminalreporter.section("peak resident memory of each test process")
        for line in summary_lines(self.peaks, self.rises):
            terminalreporter.write_line(line)


def summary_lines(peaks: dict, rises: list, count: int = RISES) -> list:
    """Each worker's peak against GOAL_BYTES, then the `count` largest rises."""
    lines = [f"{worker}: {peak / 1e9:.2f} GB at its peak (goal at most {GOAL_BYTES / 1e9:g} GB: "
             f"{'met' if peak <= GOAL_BYTES else 'not met'})"
             for worker, peak in sorted(peaks.items())]
    for rise, worker, node, when in sorted(rises, reverse=True)[:count]:
        lines.append(f"  +{rise / 1e9:.2f} GB on {worker} in {when} of {node}")
    return lines
