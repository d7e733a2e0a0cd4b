"""The suite's schedule over pytest-xdist's two workers (tests/conftest.py)."""

import types

from tests import conftest


def test_a_test_is_scheduled_with_its_file_unless_its_file_runs_each_test_alone():
    assert conftest.work_unit("tests/test_demo.py::test_demo[x]") == "tests/test_demo.py"
    alone = "tests/test_bench_scripts.py::test_bench_script_runs_tiny_and_prints_its_ratios[a.py]"
    assert conftest.work_unit(alone) == alone


def test_xdists_file_scheduler_groups_by_the_scope_the_suite_gives():
    """The private method the suite's scheduler overrides is still the one
    pytest-xdist's file scheduler groups tests by (checked with 3.8.0)."""
    from xdist.scheduler import LoadFileScheduling, LoadScopeScheduling

    config = types.SimpleNamespace(getoption=lambda name: "loadfile",
                                   getvalue=lambda name: ["2*popen"])  # -n 2
    scheduler = conftest.pytest_xdist_make_scheduler(config, None)
    assert isinstance(scheduler, LoadFileScheduling)
    assert "_split_scope" in vars(LoadScopeScheduling)
    for nodeid in ("tests/a.py::test_b", "tests/test_bench_scripts.py::test_c[d]"):
        assert scheduler._split_scope(nodeid) == conftest.work_unit(nodeid)
    other = types.SimpleNamespace(getoption=lambda name: "load")
    assert conftest.pytest_xdist_make_scheduler(other, None) is None
