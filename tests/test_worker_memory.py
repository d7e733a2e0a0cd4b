"""tests/worker_memory.py: each test process's peak memory, summed up at the
end of a run."""

import types

from tests import worker_memory


def report(worker, node, when, peak):
    gateway = types.SimpleNamespace(id=worker)
    return types.SimpleNamespace(node=types.SimpleNamespace(gateway=gateway), nodeid=node,
                                 when=when, user_properties=[("cpu_s", 1.0), ("peak_rss", peak)])


def test_the_peaks_and_the_rises_of_each_worker():
    plugin = worker_memory.WorkerMemory()
    for args in [("gw0", "a", "call", 1e9), ("gw1", "b", "call", 2e9),
                 ("gw0", "c", "setup", 3e9), ("gw0", "c", "call", 3e9),
                 ("gw1", "d", "call", 5e9), ("gw0", "e", "call", 2.5e9)]:
        plugin.pytest_runtest_logreport(report(*args))
    assert plugin.peaks == {"gw0": 3e9, "gw1": 5e9}
    assert worker_memory.summary_lines(plugin.peaks, plugin.rises) == [
        "gw0: 3.00 GB at its peak (goal at most 4 GB: met)",
        "gw1: 5.00 GB at its peak (goal at most 4 GB: not met)",
        "  +3.00 GB on gw1 in call of d",
        "  +2.00 GB on gw0 in setup of c"]


def test_a_report_without_xdist_is_the_pytest_process_and_the_peak_is_this_process():
    plugin = worker_memory.WorkerMemory()
    plugin.pytest_runtest_logreport(types.SimpleNamespace(
        nodeid="a", when="call", user_properties=[("peak_rss", 7)]))
    assert plugin.peaks == {"pytest": 7}
    import resource
    kilobytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert worker_memory.peak_bytes() >= kilobytes * 1024 > 10e6  # Python alone holds more
