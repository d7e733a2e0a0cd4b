"""tests/worker_memory.py: each test process's peak memory, summed up at the
end of a run."""

import ctypes
import os
import types

import pytest

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


def test_the_system_allocators_are_set_where_the_environment_is_silent_and_unset_after():
    environ = {"TF_CPU_ALLOCATOR_USE_BFC": "true", "OTHER": "x"}
    added = worker_memory.system_allocators(environ)
    assert added == {"TF_ONEDNN_USE_SYSTEM_ALLOCATOR": "true"}  # a setting given is kept
    assert environ["TF_CPU_ALLOCATOR_USE_BFC"] == "true"
    assert environ["TF_ONEDNN_USE_SYSTEM_ALLOCATOR"] == "true"
    worker_memory.first_tensor_then_unset(added, environ)
    assert environ == {"TF_CPU_ALLOCATOR_USE_BFC": "true", "OTHER": "x"}
    assert worker_memory.system_allocators({}) == worker_memory.SYSTEM_ALLOCATORS


def resident_bytes() -> int:
    import os

    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_a_tensor_freed_in_this_process_gives_its_memory_back(pytestconfig):
    """The allocators this process got from `system_allocators`: a freed
    tensor's pages go back to the system (a pool would keep them), and the
    processes tests start are not told to do the same."""
    import os

    import tensorflow as tf

    plugin = pytestconfig.pluginmanager.get_plugin("tagger_worker_memory")
    if plugin.allocators != worker_memory.SYSTEM_ALLOCATORS:
        pytest.skip(f"the environment sets TensorFlow's allocators: {plugin.allocators}")
    assert "TF_ONEDNN_USE_SYSTEM_ALLOCATOR" not in os.environ
    assert os.environ["TF_CPU_ALLOCATOR_USE_BFC"] == "true"  # the commands' setting
    size = 256 << 20
    before = resident_bytes()
    tensor = tf.fill([size // 4], 1.0) + 1.0  # an operation's output, touched
    assert tensor.numpy()[-1] == 2.0
    held = resident_bytes()
    assert held - before > size * 0.9
    del tensor
    assert resident_bytes() - before < size * 0.2


def arena_count(capfd) -> int:
    """This process's malloc arenas: glibc's malloc_stats writes one
    `Arena N:` line for each to stderr."""
    capfd.readouterr()
    ctypes.CDLL(None).malloc_stats()
    return sum(line.startswith("Arena ") for line in capfd.readouterr().err.splitlines())


def test_threads_of_a_test_process_share_its_malloc_arenas(pytestconfig, capfd):
    """Six threads that allocate at once would each make an arena of their
    own (up to eight a core); here they add none past MALLOC_ARENAS."""
    import platform
    import threading

    plugin = pytestconfig.pluginmanager.get_plugin("tagger_worker_memory")
    if platform.libc_ver()[0] != "glibc":
        pytest.skip("malloc arenas are glibc's")
    if any(name in os.environ for name in worker_memory.ARENA_SETTINGS):
        pytest.skip("the environment sets malloc's arenas")
    assert plugin.arenas == worker_memory.MALLOC_ARENAS
    assert not worker_memory.fewer_malloc_arenas(environ={"MALLOC_ARENA_MAX": "4"})
    before = arena_count(capfd)
    barrier = threading.Barrier(6)
    held = []

    def allocate():
        held.append(bytearray(1 << 20))  # from this thread's arena
        barrier.wait()

    threads = [threading.Thread(target=allocate) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(held) == 6
    assert 1 <= arena_count(capfd) <= max(before, worker_memory.MALLOC_ARENAS)
