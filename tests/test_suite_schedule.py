"""The suite's schedule over pytest-xdist's two workers (tests/schedule.py)."""

import types
from collections import OrderedDict

from tests import conftest, schedule


def test_a_test_is_scheduled_with_its_file_unless_its_file_runs_each_test_alone():
    assert schedule.work_unit("tests/test_demo.py::test_demo[x]") == "tests/test_demo.py"
    alone = "tests/test_bench_scripts.py::test_bench_script_runs_tiny_and_prints_its_ratios[a.py]"
    assert schedule.work_unit(alone) == alone


def test_xdists_file_scheduler_groups_by_the_unit_and_hands_out_the_longest_first():
    """The private names the suite's scheduler relies on are still those of
    pytest-xdist's file scheduler (checked with 3.8.0): it groups tests by
    `_split_scope`, and `_assign_work_unit` takes the front of `workqueue`,
    which the suite orders longest first before the first is taken."""
    from xdist.scheduler import LoadFileScheduling, LoadScopeScheduling

    config = types.SimpleNamespace(getoption=lambda name: "loadfile",
                                   getvalue=lambda name: ["2*popen"])  # -n 2
    scheduler = conftest.pytest_xdist_make_scheduler(config, None)
    assert isinstance(scheduler, LoadFileScheduling)
    assert {"_split_scope", "_assign_work_unit"} <= set(vars(LoadScopeScheduling))
    assert isinstance(scheduler.workqueue, OrderedDict)
    for nodeid in ("tests/a.py::test_b", "tests/test_bench_scripts.py::test_c[d]"):
        assert scheduler._split_scope(nodeid) == schedule.work_unit(nodeid)
    known = max(schedule.read_durations().items(), key=lambda pair: pair[1])[0]
    scheduler.workqueue.update([("tests/new.py", {"tests/new.py::test_a": False}),
                                (known, {f"{known}::test_a": False})])
    scheduler.order_queue()
    assert list(scheduler.workqueue) == [known, "tests/new.py"]
    scheduler.workqueue.move_to_end(known)
    scheduler.order_queue()  # once: the queue is not ordered again
    assert list(scheduler.workqueue) == ["tests/new.py", known]
    other = types.SimpleNamespace(getoption=lambda name: "load")
    assert conftest.pytest_xdist_make_scheduler(other, None) is None


def test_units_go_longest_first_and_those_not_measured_by_their_test_count():
    queue = {"a.py": {"a.py::t1": False}, "b.py": {f"b.py::t{i}": False for i in range(5)},
             "c.py": {"c.py::t1": False}, "d.py::t": {"d.py::t": False}}
    durations = {"a.py": 0.4, "c.py": 40.0, "d.py::t": 2.0}
    # b.py was not measured: 5 tests of UNKNOWN_TEST_S, 2.5 s
    assert [unit for unit, _ in schedule.longest_first(queue, durations)] == \
        ["c.py", "b.py", "d.py::t", "a.py"]
    assert [unit for unit, _ in schedule.longest_first(queue, {})] == \
        ["b.py", "a.py", "c.py", "d.py::t"]  # by test count, equal ones in their order


def test_durations_read_back_as_written(tmp_path):
    phases = [("tests/a.py::t1", "setup", 9.0, 2.0), ("tests/a.py::t1", "call", 9.0, 3.25),
              ("tests/a.py::t2", "call", 1.0, 0.5),
              ("tests/test_bench_scripts.py::t[x]", "call", 7.0, 6.0),
              ("tests/quick.py::t", "call", 0.2, 0.1)]  # under KEPT_S: left out
    path = tmp_path / "durations.json"
    schedule.write_durations(phases, path)
    assert schedule.read_durations(path) == {"tests/a.py": 5.8,
                                             "tests/test_bench_scripts.py::t[x]": 6.0}
    for text in ("", "[1, 2]", '{"a.py": "slow", "b.py": 2}', "{"):
        path.write_text(text)
        assert schedule.read_durations(path) == ({"b.py": 2.0} if "b.py" in text else {})
    assert schedule.read_durations(tmp_path / "missing.json") == {}


def test_the_suites_durations_are_read():
    """tests/durations.json: the units of a whole run, none under KEPT_S."""
    found = schedule.read_durations()
    assert len(found) > 100 and all(s >= schedule.KEPT_S for s in found.values())
    assert all(unit.startswith("tests/") and ".py" in unit for unit in found)
