"""The suite's guard on each test's CPU time (tests/cpu_budget.py)."""

from __future__ import annotations

from tests import cpu_budget

pytest_plugins = ["pytester"]


def test_the_listed_tests_are_the_first_cells_of_docs_tables():
    text = ("| test | reason |\n| --- | --- |\n"
            "| `tests/test_demo.py::test_demo_runs` | the whole demo |\n"
            "| `tests/training/test_backends_agree.py` | every family |\n"
            "a `tests/test_x.py::test_named_in_prose` is not listed\n")
    assert cpu_budget.listed_tests(text) == {"tests/test_demo.py::test_demo_runs",
                                             "tests/training/test_backends_agree.py"}


def test_a_phase_over_the_limit_fails_unless_it_or_its_module_is_listed():
    listed = {"tests/a.py::test_listed", "tests/b.py"}
    assert cpu_budget.over_budget("tests/a.py::test_other", 90.5, listed, 90)
    assert not cpu_budget.over_budget("tests/a.py::test_other", 89.5, listed, 90)
    assert not cpu_budget.over_budget("tests/a.py::test_listed", 500, listed, 90)
    assert not cpu_budget.over_budget("tests/b.py::test_any[param]", 500, listed, 90)


def test_the_limits_are_longer_on_a_cpu_other_than_the_one_they_were_set_on():
    """Set on an AMD EPYC with AVX-512; an EPYC with AVX2 alone and an Intel
    Xeon with AMX do the same work in up to 3.7 times the CPU seconds."""
    epyc = "AMD EPYC 9R14 96-Core Processor"
    assert cpu_budget.machine_limits(epyc, {"avx2", "avx512f", "avx512_bf16"}) == (150.0, 10.0)
    assert cpu_budget.machine_limits(epyc, {"avx2", "fma"}) == (675.0, 45.0)
    assert cpu_budget.machine_limits("Intel(R) Xeon(R) Processor",
                                     {"avx2", "avx512f", "amx_bf16"}) == (675.0, 45.0)
    assert cpu_budget.machine_limits("unknown CPU", set()) == (675.0, 45.0)
    # a name given is kept where the flags are this machine's
    assert cpu_budget.machine_limits("Intel(R) Xeon(R) Processor") == (675.0, 45.0)


def test_the_slowest_lines_give_wall_cpu_and_share():
    phases = [("t::a", "call", 30.0, 55.0), ("t::b", "setup", 10.0, 9.0),
              ("t::c", "call", 60.0, 61.0)]
    lines = cpu_budget.slowest_lines(phases, count=2)
    assert len(lines) == 2
    assert lines[0].split() == ["60.0", "s", "wall", "61.0", "s", "CPU", "60.0%", "call", "t::c"]
    assert lines[1].split()[-2:] == ["call", "t::a"] and "30.0%" in lines[1]


def test_the_cpu_seconds_count_the_work_done(monkeypatch):
    before = cpu_budget.cpu_seconds()
    total = 0
    for i in range(3_000_000):
        total += i * i
    assert total > 0 and cpu_budget.cpu_seconds() - before > 0.01


def test_a_test_over_the_limit_fails_naming_itself(pytester):
    pytester.makepyfile(test_spin="""
        import pytest

        def spin():
            total = 0
            for i in range(3_000_000):
                total += i * i

        @pytest.mark.slow
        def test_spins():
            spin()

        @pytest.mark.slow
        def test_idles():
            pass

        def test_spins_in_the_quick_loop():
            spin()
    """)
    pytester.makeconftest("""
        from tests import cpu_budget

        def pytest_configure(config):
            config.addinivalue_line("markers", "slow: slow")
            config.pluginmanager.register(cpu_budget.CpuBudget(limit_s=0.02,
                                                               quick_limit_s=0.01))
    """)
    result = pytester.runpytest_inprocess("-p", "no:xdist", "-p", "no:random_order")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*test_spin.py::test_spins took * CPU seconds in its call, "
                                 "over the suite's limit of 0.02*"])
    result.stdout.fnmatch_lines(["*test_spin.py::test_spins_in_the_quick_loop took * CPU "
                                 "seconds, over the quick loop's limit of 0.01*"])
    result.stdout.fnmatch_lines(["*the 30 slowest test phases, of * (limit: 0.02 CPU s a "
                                 "phase on this CPU)*"])


def test_every_test_docs_testing_lists_exists():
    root = cpu_budget.LISTING.parents[1]
    for row in cpu_budget.listed_tests(cpu_budget.LISTING.read_text(encoding="utf-8")):
        path, _, name = row.partition("::")
        assert (root / path).is_file(), f"docs/testing.md lists {row}, whose file is gone"
        if name:
            assert f"def {name.split('[')[0]}(" in (root / path).read_text(encoding="utf-8"), (
                f"docs/testing.md lists {row}, which its file does not define")
