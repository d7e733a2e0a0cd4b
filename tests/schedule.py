"""The suite's schedule over pytest-xdist's two workers: which tests run
together (a unit: a file, or one test of a file in EACH_TEST_ALONE), and
the order the units are handed out in, the longest first.

pytest-xdist hands each worker the next unit of its queue as the worker
frees up, and orders the queue by the units' test counts: a file of two
tests that takes a minute comes after hundreds of quick ones, and the
last unit handed out can keep one worker busy while the other has
finished. Handed out longest first (their CPU seconds in the last run
that wrote `durations.json`), the units end together. A unit that run did
not see counts UNKNOWN_TEST_S a test.

`durations.json` is written by a run of the whole suite with
TAGGER_TEST_DURATIONS=tests/durations.json (tests/cpu_budget.py); an
out-of-date one changes only the order, never which tests run.
"""

from __future__ import annotations

import collections
import json
import math
import pathlib

DURATIONS = pathlib.Path(__file__).with_name("durations.json")
UNKNOWN_TEST_S = 0.5
# a unit under this many CPU seconds is left out of durations.json
KEPT_S = 1.0
# Files whose tests share no costly module fixture and take minutes together:
# each of their tests is a unit of its own, so the two workers share them
# (every other file's tests run in one worker, its module fixtures built once).
EACH_TEST_ALONE = frozenset({"tests/test_bench_scripts.py",
                             "tests/training/test_backends_agree.py",
                             "tests/training/test_jax_backend.py"})


def work_unit(nodeid: str) -> str:
    """The unit of xdist's schedule a test belongs to: its file, or itself in
    a file of EACH_TEST_ALONE."""
    path = nodeid.split("::", 1)[0]
    return nodeid if path in EACH_TEST_ALONE else path


def write_durations(phases, path) -> None:
    """Writes each unit's CPU seconds, summed over its tests' phases
    ((node id, phase, wall s, cpu s), tests/cpu_budget.py's), to `path`
    as one JSON object, the units under KEPT_S left out."""
    seconds = collections.Counter()
    for node, _, _, cpu in phases:
        seconds[work_unit(node)] += cpu
    kept = {unit: round(s, 1) for unit, s in sorted(seconds.items()) if s >= KEPT_S}
    pathlib.Path(path).write_text(json.dumps(kept, indent=0) + "\n", encoding="utf-8")


def read_durations(path=DURATIONS) -> dict:
    """{unit: CPU seconds} as `write_durations` wrote them; {} where the
    file is missing or is not such an object (the queue then keeps
    pytest-xdist's order)."""
    try:
        found = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(found, dict):
        return {}
    return {unit: float(s) for unit, s in found.items()
            if isinstance(s, (int, float)) and math.isfinite(s) and s >= 0}


def longest_first(queue: dict, durations: dict) -> list:
    """The (unit, its tests) pairs of `queue` ordered by their seconds in
    `durations`, the longest first (UNKNOWN_TEST_S a test where a unit is
    not there); equal ones keep their order."""
    def seconds(pair):
        unit, tests = pair
        return durations.get(unit, UNKNOWN_TEST_S * len(tests))

    return sorted(queue.items(), key=lambda pair: -seconds(pair))


def make_scheduler(config, log):
    """pytest-xdist's file scheduler (`--dist loadfile`, pytest.ini's),
    grouping by `work_unit` and handing out the units longest first.
    Checked with pytest-xdist 3.8.0: LoadScopeScheduling groups tests by
    `_split_scope`, keeps its queue of units in `workqueue` (unit: {node
    id: done}) and takes the next one from its front in
    `_assign_work_unit`, first called once the queue is full."""
    from xdist.scheduler import LoadFileScheduling

    durations = read_durations()

    class FilesAndLongTests(LoadFileScheduling):
        ordered = False

        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

        def order_queue(self) -> None:
            """The queue, longest first (once)."""
            if not self.ordered:
                units = longest_first(self.workqueue, durations)
                self.workqueue.clear()
                self.workqueue.update(units)
                self.ordered = True

        def _assign_work_unit(self, node) -> None:
            self.order_queue()
            super()._assign_work_unit(node)

    return FilesAndLongTests(config, log)
