"""ordered_map: input order, bounded memory, and a worker that dies on an item."""

import os
import signal
import time

import numpy as np
import pytest

from tagger.parallel import Chunks, WorkerDied, ordered_map


def square(x):
    return x * x


def die_on_three(x):
    if x == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return x * x


def die_once_on_three(item):
    x, marker = item
    if x == 3 and not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), signal.SIGKILL)
    return x * x


def slow_first(x):
    if x == 0:
        time.sleep(0.5)
    return os.getpid()


def fail_on_two(x):
    if x == 2:
        raise ValueError(f"bad item {x}")
    return x


@pytest.mark.slow
def test_results_in_input_order_over_two_workers():
    assert list(ordered_map(square, range(20), 2)) == [x * x for x in range(20)]


@pytest.mark.slow
def test_workers_are_started_once_and_reused():
    pids = list(ordered_map(slow_first, range(12), 2))
    assert len(set(pids)) == 2 and os.getpid() not in pids


@pytest.mark.slow
def test_dead_worker_is_retried_once_then_reported():
    results = list(ordered_map(die_on_three, range(8), 2,
                               on_failure=lambda item, reason: f"{item}: {reason}"))
    assert results[:3] == [0, 1, 4] and results[4:] == [16, 25, 36, 49]
    assert results[3] == "3: killed by SIGKILL (out of memory?)"


@pytest.mark.slow
def test_dead_worker_without_on_failure_names_the_item():
    with pytest.raises(WorkerDied, match=r"died on 3 \(killed by SIGKILL"):
        list(ordered_map(die_on_three, range(8), 2))


@pytest.mark.slow
def test_item_succeeds_in_a_fresh_worker(tmp_path):
    marker = str(tmp_path / "died")
    items = [(x, marker) for x in range(8)]
    assert list(ordered_map(die_once_on_three, items, 2)) == [x * x for x in range(8)]
    assert os.path.exists(marker)


@pytest.mark.slow
def test_exception_in_worker_is_raised_here():
    with pytest.raises(ValueError, match="bad item 2"):
        list(ordered_map(fail_on_two, range(5), 2))


@pytest.mark.slow
def test_items_are_pulled_lazily():
    pulled = []

    def items():
        for x in range(1000):
            pulled.append(x)
            yield x

    results = ordered_map(square, items(), 2)
    assert next(results) == 0
    assert len(pulled) <= 2 * 4 + 1  # two workers, a few items each in flight
    results.close()


@pytest.mark.slow
def test_worker_that_cannot_start_is_one_error(tmp_path, monkeypatch):
    import sys

    from tagger.parallel import WorkerError

    main = tmp_path / "gone_main.py"  # spawn re-runs the parent's main script
    main.write_text("")
    monkeypatch.setattr(sys.modules["__main__"], "__file__", str(main), raising=False)
    monkeypatch.setattr(sys.modules["__main__"], "__spec__", None, raising=False)
    main.unlink()
    with pytest.raises(WorkerError, match="failed to start"):
        list(ordered_map(square, range(50), 2))


def clip_sized(x):
    """A result the size of a serialized clip, its bytes set by the item."""
    return bytes([x % 251]) * (1_300_000 + x)


@pytest.fixture
def loads_in_parent(monkeypatch):
    """Sizes of the results this process unpickles from shared slots."""
    import pickle

    calls, loads = [], pickle.loads

    def counting(data, **options):
        calls.append(len(data))
        return loads(data, **options)

    monkeypatch.setattr(pickle, "loads", counting)
    return calls


needs_memfd = pytest.mark.skipif(not hasattr(os, "memfd_create"),
                                 reason="results go through the pipe without memfd")


@pytest.mark.slow
@needs_memfd
def test_large_results_come_through_shared_slots(loads_in_parent):
    results = ordered_map(clip_sized, range(24), 2)
    for x, result in enumerate(results):
        time.sleep(0.01)  # a slow consumer: workers run ahead as far as they may
        assert result == clip_sized(x)
    assert len(loads_in_parent) == 24 and min(loads_in_parent) > 1_300_000


@pytest.mark.slow
def test_result_larger_than_a_slot_comes_through_the_pipe(loads_in_parent, monkeypatch):
    import tagger.parallel

    monkeypatch.setattr(tagger.parallel, "SLOT_BYTES", 1 << 20)  # < 1.3 MB
    assert list(ordered_map(clip_sized, range(6), 2)) == [clip_sized(x) for x in range(6)]
    assert loads_in_parent == []


@pytest.mark.slow
def test_results_come_through_the_pipe_without_shared_memory(loads_in_parent, monkeypatch):
    import tagger.parallel

    monkeypatch.setattr(tagger.parallel, "_shared_slots", lambda: None)
    assert list(ordered_map(clip_sized, range(6), 2)) == [clip_sized(x) for x in range(6)]
    assert loads_in_parent == []


@pytest.mark.slow
@needs_memfd
def test_dead_worker_with_shared_slots_is_replaced(tmp_path, loads_in_parent):
    marker = str(tmp_path / "died")
    items = [(x, marker) for x in range(8)]
    assert list(ordered_map(die_once_on_three, items, 2)) == [x * x for x in range(8)]
    assert len(loads_in_parent) == 8  # the replacement's slots carried its results


@pytest.mark.slow
@needs_memfd
def test_worker_that_cannot_be_given_its_slots_is_replaced(monkeypatch):
    import errno
    from multiprocessing import reduction

    import tagger.parallel

    handed, send_handle = [], reduction.send_handle

    def fails_first(conn, fd, pid):
        handed.append(pid)
        if len(handed) == 1:
            raise OSError(errno.EMFILE, "Too many open files")
        return send_handle(conn, fd, pid)

    monkeypatch.setattr(tagger.parallel.reduction, "send_handle", fails_first)
    assert list(ordered_map(square, range(8), 2)) == [x * x for x in range(8)]
    assert len(handed) == 3  # two workers, and one in place of the first


def chunked(x):
    """(pid, Chunks) of a record-like result: small head, large body, small tail."""
    import gc

    gc.collect()  # what a worker left for the collector is collected now, not by chance
    body = np.full(300_000 + x, x, np.int32)
    return os.getpid(), Chunks([bytes([x]) * 10, memoryview(body).cast("B"), b"end"])


def expected_parts(x):
    return [bytes([x]) * 10, np.full(300_000 + x, x, np.int32).tobytes(), b"end"]


@pytest.mark.slow
@needs_memfd
def test_chunks_are_read_in_the_shared_slot_until_the_next_result():
    import mmap

    pids = []
    for x, (pid, chunks) in enumerate(ordered_map(chunked, range(40), 2)):
        assert all(isinstance(part, memoryview) and isinstance(part.obj, mmap.mmap)
                   for part in chunks.parts)  # not copied out of the slot
        time.sleep(0.005)  # the workers run ahead into their other slots meanwhile
        assert [bytes(part) for part in chunks.parts] == expected_parts(x)
        pids.append(pid)
    assert len(set(pids)) == 2  # no worker died on the way


@pytest.mark.slow
@pytest.mark.parametrize("how", ["no shared memory", "slots too small"])
def test_chunks_through_the_pipe_or_in_this_process(monkeypatch, how):
    import tagger.parallel

    if how == "no shared memory":
        monkeypatch.setattr(tagger.parallel, "_shared_slots", lambda: None)
    else:  # the parts do not fit after the pickled result
        monkeypatch.setattr(tagger.parallel, "SLOT_BYTES", 1 << 20)
    for workers in (1, 2):
        results = list(ordered_map(chunked, range(4), workers))
        assert [[bytes(p) for p in chunks.parts] for _, chunks in results] == [
            expected_parts(x) for x in range(4)]
        assert workers == 1 or all(isinstance(p, bytes) for _, c in results for p in c.parts)


@pytest.mark.slow
@pytest.mark.parametrize("removed", ["socket", "folder"])
def test_a_fork_server_whose_socket_was_removed_is_started_anew(monkeypatch, removed):
    """A cleaner of temporary files removes the fork server's socket, or
    the folder it lay in (where `tempfile` pointed when it started): the
    next map starts a new server instead of failing every worker."""
    import shutil
    import tempfile

    from tagger.multiprocessing_internals import fork_server_address
    from tagger.parallel import forget_temporary_folder, stop_fork_server

    folder = tempfile.mkdtemp(prefix="fs-")  # short: a socket's path has 107 bytes at most
    try:
        stop_fork_server()  # a server of its own, in `folder`
        forget_temporary_folder()
        with monkeypatch.context() as patch:
            patch.setattr(tempfile, "tempdir", folder)
            assert list(ordered_map(square, range(4), 2)) == [0, 1, 4, 9]
        address = fork_server_address()
        assert address.startswith(folder + os.sep)
        if removed == "socket":
            os.remove(address)
        else:
            shutil.rmtree(folder)
        assert list(ordered_map(square, range(6), 2)) == [x * x for x in range(6)]
        assert fork_server_address() != address
    finally:
        stop_fork_server()  # the next test's server in the usual folder
        forget_temporary_folder()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_a_pool_whose_fork_server_lost_its_socket_replaces_a_dead_worker(tmp_path):
    """A long-running pool (tagger-serve's decoding): a cleaner of temporary
    files removes the server's socket; a worker that dies afterwards is
    still replaced, through a new server."""
    from tagger.multiprocessing_internals import fork_server_address
    from tagger.parallel import WorkerPool

    marker = str(tmp_path / "died")
    with WorkerPool(die_once_on_three, 2) as pool:
        assert list(pool.map(iter([(0, marker), (1, marker)]))) == [0, 1]
        address = fork_server_address()
        os.remove(address)
        items = [(x, marker) for x in range(6)]
        assert list(pool.map(iter(items))) == [x * x for x in range(6)]
    assert os.path.exists(marker)
