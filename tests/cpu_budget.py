"""The suite's time, test by test, and the guard that keeps it in minutes.

Each phase of a test (setup, call, teardown) is timed in CPU seconds: the
test process's own (every thread) and its children's (the processes it
started and waited for). A phase over LIMIT_S CPU seconds fails the test,
naming it, unless docs/testing.md lists the test with its reason.

The quick loop (`-m "not slow"`) has a guard of its own: the call of a
test not marked slow over QUICK_LIMIT_S CPU seconds fails, naming it
(mark it slow, or make it smaller); the tests in it take under 2 CPU
seconds each on CI's 2-core machine, five times below that limit.

CPU time, not wall time: a busy machine (the suite must pass at a load
average of 6) stretches a test's wall time, not the work it does, so the
guard fails on a test that grew, never on a machine that is busy. A host
whose other tenants share its caches and memory does stretch CPU time, so
LIMIT_S stands two thirds above the heaviest unlisted phase on quiet cores
(docs/testing.md, "The guard on a test's time", has the runs). On 2 cores
with both of pytest-xdist's workers busy a test has one core, and its CPU
seconds are about its wall seconds there; alone it may have both, so the
limit in CPU seconds is never looser than as many wall seconds.

The limits were set on an AMD EPYC with AVX-512 (BF16), one of the CPUs
CI's machines have. Other CPUs do the same work in more CPU seconds: an
AMD EPYC with AVX2 alone the whole suite's in 2.6 times (110 CPU minutes
against about 42), an Intel Xeon with AMX the heaviest tests' in 1.8 to
3.7 times (tests/training/test_backends_agree.py's `families-1` case 182
against 49, mostly under JAX, whose convolutions there fall furthest
behind). So on any CPU but the one they were set on both limits are
`OTHER_CPU` times as long (`machine_limits`): a slower machine never fails
a test that did not grow.

At the end the controller prints the 30 slowest phases (wall seconds, CPU
seconds, share of the suite's summed wall time), and with
TAGGER_TEST_TIMES=PATH writes every phase's figures to PATH as JSON lines
(docs/testing.md says how its tables are made from it).
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import resource

import pytest

LIMIT_S = 150.0
QUICK_LIMIT_S = 10.0
OTHER_CPU = 4.5  # the limits' factor on another CPU: the 3.7 measured, with a margin
SLOWEST = 30
LISTING = pathlib.Path(__file__).parents[1] / "docs" / "testing.md"
# a listed test: a table row whose first cell is its node id in backticks
LISTED_ROW = re.compile(r"^\|\s*`(tests/[^`]+)`")


def machine_limits(model: str | None = None, flags: set | None = None) -> tuple[float, float]:
    """(the suite's limit, the quick loop's) on the CPU named `model` with
    the feature flags `flags` (either None: this machine's): LIMIT_S and
    QUICK_LIMIT_S on an AMD EPYC with AVX-512, where they were set, else
    OTHER_CPU times as long."""
    if model is None or flags is None:
        from tagger.cpu_features import cpu_model_and_flags

        machine_model, machine_flags = cpu_model_and_flags()
        model = machine_model if model is None else model
        flags = machine_flags if flags is None else flags
    scale = 1.0 if "AMD EPYC" in model and "avx512f" in flags else OTHER_CPU
    return LIMIT_S * scale, QUICK_LIMIT_S * scale


def cpu_seconds() -> float:
    """CPU seconds of this process (all its threads) and of its children
    that have ended and were waited for."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def listed_tests(text: str) -> set:
    """The node ids docs/testing.md's tables list (a row's first cell)."""
    return {m.group(1) for line in text.splitlines() if (m := LISTED_ROW.match(line))}


def over_budget(node_id: str, cpu_s: float, listed: set, limit_s: float) -> bool:
    """Whether a phase of `node_id` that took `cpu_s` CPU seconds fails
    the guard: over the limit, and neither the test nor its module listed."""
    return cpu_s > limit_s and node_id not in listed and node_id.split("::")[0] not in listed


class CpuBudget:
    """The plugin: registered once per pytest run (tests/conftest.py)."""

    def __init__(self, limit_s: float = LIMIT_S, quick_limit_s: float = QUICK_LIMIT_S):
        self.limit_s, self.quick_limit_s = limit_s, quick_limit_s
        self.phases = []  # (node id, phase, wall s, cpu s), in the controller
        self.listed = listed_tests(LISTING.read_text(encoding="utf-8")) \
            if LISTING.exists() else set()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        started = item.stash.get(_STARTED, {}).pop(call.when, None)
        if started is None:
            return report
        cpu_s = cpu_seconds() - started
        report.user_properties.append(("cpu_s", round(cpu_s, 3)))
        if (report.passed and call.when == "call" and cpu_s > self.quick_limit_s
              and item.get_closest_marker("slow") is None):
            report.outcome = "failed"
            report.longrepr = (f"{item.nodeid} took {cpu_s:.1f} CPU seconds, over the quick "
                               f"loop's limit of {self.quick_limit_s:g} (tests/cpu_budget.py): "
                               "mark it @pytest.mark.slow, or make it smaller")
        elif report.passed and over_budget(item.nodeid, cpu_s, self.listed, self.limit_s):
            report.outcome = "failed"
            report.longrepr = (f"{item.nodeid} took {cpu_s:.1f} CPU seconds in its "
                               f"{call.when}, over the suite's limit of {self.limit_s:g} "
                               "(tests/cpu_budget.py): make it smaller, or list it with "
                               "its reason in docs/testing.md")
        return report

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item):
        item.stash.setdefault(_STARTED, {})["setup"] = cpu_seconds()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_call(self, item):
        item.stash.setdefault(_STARTED, {})["call"] = cpu_seconds()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_teardown(self, item):
        item.stash.setdefault(_STARTED, {})["teardown"] = cpu_seconds()

    def pytest_runtest_logreport(self, report):
        cpu = dict(report.user_properties).get("cpu_s")
        if cpu is not None:
            self.phases.append((report.nodeid, report.when, report.duration, cpu))

    def pytest_terminal_summary(self, terminalreporter):
        if not self.phases or hasattr(terminalreporter.config, "workerinput"):
            return  # an xdist worker: its phases reach the controller
        total = sum(p[2] for p in self.phases)
        terminalreporter.section(f"the {SLOWEST} slowest test phases, of "
                                 f"{total / 60:.1f} minutes summed over the workers "
                                 f"(limit: {self.limit_s:g} CPU s a phase on this CPU)")
        for line in slowest_lines(self.phases):
            terminalreporter.write_line(line)
        path = os.environ.get("TAGGER_TEST_TIMES")
        if path:
            with open(path, "w", encoding="utf-8") as out:
                for node, when, wall, cpu in self.phases:
                    out.write(json.dumps({"test": node, "phase": when,
                                          "wall_s": round(wall, 3), "cpu_s": cpu}) + "\n")


_STARTED = pytest.StashKey[dict]()


def slowest_lines(phases, count: int = SLOWEST) -> list:
    """The `count` phases of most wall time, each with its CPU seconds and
    its share of all phases' summed wall time."""
    total = sum(p[2] for p in phases) or 1.0
    ranked = sorted(phases, key=lambda p: -p[2])[:count]
    return [f"{wall:8.1f} s wall {cpu:8.1f} s CPU {wall / total:6.1%}  {when:8} {node}"
            for node, when, wall, cpu in ranked]
