"""An ordered, memory-bounded parallel map over worker processes (forked
from a clean fork server, or spawned) that survives a worker's death.

`ordered_map` starts its workers once and feeds them items over one pipe
each; results come back in input order. A worker that dies (SIGKILL, the
kernel's out-of-memory killer) is noticed at once through its process
sentinel: the item it was working on is tried once more in a fresh worker,
and if that one dies too the item fails (`on_failure` turns it into a
result, or `WorkerDied` names it). Items queued behind it were never
started and are simply sent again.

Results travel through memory shared with each worker (a memfd, on Linux):
the worker pickles a result straight into one of its slots and sends only
where it lies, so a megabyte-sized result is copied twice (into the slot,
out of it) rather than pickled, pushed through a socket and read back in
pieces. Where there is no memfd, or a result does not fit its slot, it
goes through the pipe.
"""

from __future__ import annotations

import collections
import mmap
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import traceback
from multiprocessing import reduction

IN_FLIGHT_PER_WORKER = 4  # items sent but not yet yielded, per worker
QUEUED_PER_WORKER = 2  # items sent to one worker at a time (one runs, one waits)
ATTEMPTS = 2  # an item whose worker dies is tried this many times in all
# Result slots shared with each worker: pages are only taken as results
# fill them. A worker's n-th result goes to slot n % QUEUED_PER_WORKER: a
# worker is sent its n-th item only once fewer than QUEUED_PER_WORKER of
# its items are uncollected, so result n - QUEUED_PER_WORKER has been read
# out of that slot before result n is written there.
SLOT_BYTES = 64 << 20


class WorkerDied(RuntimeError):
    """A worker process died on an item on every attempt; the message names it."""

    def __init__(self, item, reason: str):
        super().__init__(f"a worker process died on {item!r} ({reason})")
        self.item = item
        self.reason = reason


class WorkerError(RuntimeError):
    """`fn` raised in a worker; the message carries the worker's traceback."""


def describe_exit(exitcode) -> str:
    """'killed by SIGKILL (out of memory?)', 'exit code 3', ..."""
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (out of memory?)" if -exitcode == signal.SIGKILL else ""
        return f"killed by {name}{hint}"
    return f"exit code {exitcode}"


def ordered_map(fn, items, workers: int, on_failure=None, pool=None):
    """Like map(fn, items), over `workers` worker processes, results in
    input order, with at most a few items per worker in flight (memory stays
    flat however many items there are). One worker runs in this process.

    A worker that dies on an item is replaced and the item retried once;
    after that, `on_failure(item, reason)` gives the item's result, or
    without it `WorkerDied` is raised. An exception raised by `fn` is
    raised here (as WorkerError with the worker's traceback when the type
    cannot travel). Workers import `fn`'s module afresh, not from this
    process (see `worker_context`): keep it free of TensorFlow. `pool`, a
    WorkerPool of `fn` started earlier (so that its start-up overlaps other
    work), is used instead of starting one.
    """
    if pool is not None:
        yield from pool.map(iter(items), on_failure)
        return
    if workers <= 1:
        yield from map(fn, items)
        return
    pool = WorkerPool(fn, workers)
    try:
        yield from pool.map(iter(items), on_failure)
    finally:
        pool.close()


class _Worker:
    def __init__(self, context, fn):
        self.conn, child = context.Pipe(duplex=True)
        shared = _shared_slots()
        slot_bytes = SLOT_BYTES if shared else 0
        try:
            self.process = context.Process(target=_work, args=(child, fn, slot_bytes),
                                           daemon=True)
            self.process.start()
        except BaseException:
            if shared:
                os.close(shared[0])
                shared[1].close()
            raise
        child.close()
        self.slots = None  # a memoryview of the shared slots, or None
        if shared:
            fd, self.memory = shared
            try:
                reduction.send_handle(self.conn, fd, self.process.pid)
            except OSError:  # it cannot work without them: it dies, and is replaced
                self.process.kill()
            finally:
                os.close(fd)
            self.slots = memoryview(self.memory)
        self.queue = collections.deque()  # sequence numbers sent, oldest first
        self.finished = 0  # items it returned

    def receive(self):
        """The next (seq, status, value) the worker sent."""
        seq, status, value = self.conn.recv()
        if status == "slot":  # value: (offset, length) of (status, value) pickled
            offset, length = value
            with self.slots[offset:offset + length] as pickled:
                status, value = pickle.loads(pickled)
        return seq, status, value

    def release(self):
        """Unmaps the shared slots (the worker has stopped or died)."""
        if self.slots is not None:
            self.slots.release()
            self.memory.close()
            self.slots = None

    def send(self, seq, item):
        self.queue.append(seq)
        try:
            self.conn.send((seq, item))
        except OSError:  # it died: its sentinel says so, and the item is sent again
            pass

    def stop(self, timeout: float = 2.0):
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()
        self.release()


def _shared_slots():
    """(fd, mmap) of QUEUED_PER_WORKER result slots in a fresh memfd, or
    None where the platform has none (then results go through the pipe)."""
    if not hasattr(os, "memfd_create"):
        return None
    size = QUEUED_PER_WORKER * SLOT_BYTES
    try:
        fd = os.memfd_create("tagger-results", os.MFD_CLOEXEC)
    except OSError:
        return None
    try:
        os.ftruncate(fd, size)
        return fd, mmap.mmap(fd, size)
    except OSError:
        os.close(fd)
        return None


def worker_context(fn):
    """Where workers come from: a fork server where the platform has one (a
    clean process that imports `fn`'s module once, so each worker starts in
    milliseconds instead of importing it again), else plain spawning. Either
    way a worker never inherits this process's threads (TensorFlow's)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", fn.__module__])  # once the server starts
    return context


class WorkerPool:
    """`workers` worker processes running `fn`, started at once and reused
    by every `map` (see `ordered_map`); a context manager that stops them."""

    def __init__(self, fn, workers: int):
        self.fn = fn
        self.context = worker_context(fn)
        self.workers = [_Worker(self.context, fn) for _ in range(workers)]

    def close(self):
        for worker in self.workers:
            worker.stop()
        self.workers = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def map(self, items, on_failure=None):
        """Yields fn(item) for each item, in order (see `ordered_map`)."""
        limit = len(self.workers) * IN_FLIGHT_PER_WORKER
        pending = {}  # seq -> item, sent and not finished
        attempts = collections.Counter()
        retry = collections.deque()  # seqs to send again, before new items
        done = {}  # seq -> result, finished and not yet yielded
        next_seq = next_out = 0
        exhausted = False
        while True:
            # Feed idle workers: retries first, then new items, within the bound.
            for worker in sorted(self.workers, key=lambda w: len(w.queue)):
                while len(worker.queue) < QUEUED_PER_WORKER:
                    if retry:
                        seq = retry.popleft()
                    elif not exhausted and next_seq - next_out < limit:
                        item = next(items, _END)
                        if item is _END:
                            exhausted = True
                            break
                        seq, next_seq = next_seq, next_seq + 1
                        pending[seq] = item
                    else:
                        break
                    worker.send(seq, pending[seq])
            while next_out in done:
                result = done.pop(next_out)
                next_out += 1
                yield result
            if exhausted and not pending and not done:
                return
            if not any(w.queue for w in self.workers):
                continue
            ready = multiprocessing.connection.wait(
                [w.conn for w in self.workers if w.queue]
                + [w.process.sentinel for w in self.workers if w.queue])
            for worker in list(self.workers):
                if worker.conn in ready or worker.process.sentinel in ready:
                    self._collect(worker, pending, done, attempts, retry, on_failure)

    def _collect(self, worker, pending, done, attempts, retry, on_failure):
        """Reads every result `worker` has sent; replaces it if it died."""
        try:
            while worker.queue and worker.conn.poll():
                seq, status, value = worker.receive()
                worker.queue.remove(seq)
                worker.finished += 1
                if status == "error":
                    raise value
                done[seq] = value
                del pending[seq]
            if worker.process.is_alive():
                return
        except (EOFError, OSError):
            pass  # the worker is gone; what it sent was read above
        worker.process.join()
        reason = describe_exit(worker.process.exitcode)
        worker.conn.close()
        worker.release()
        if worker.finished == 0 and worker.process.exitcode > 0:
            # Not the item's fault: the worker could not start (it failed to
            # import the function's module, say); every item would fail alike.
            raise WorkerError(f"a worker process failed to start ({reason}); see the "
                              "messages above")
        self.workers[self.workers.index(worker)] = _Worker(self.context, self.fn)
        if not worker.queue:
            return
        culprit, *unstarted = worker.queue
        worker.queue.clear()
        attempts[culprit] += 1
        if attempts[culprit] >= ATTEMPTS:
            item = pending.pop(culprit)
            if on_failure is None:
                raise WorkerDied(item, reason)
            done[culprit] = on_failure(item, reason)
        else:
            retry.append(culprit)
        retry.extend(unstarted)
        # Keep retries in input order so results are not held back longer than needed.
        ordered = sorted(retry)
        retry.clear()
        retry.extend(ordered)


_END = object()


def _work(conn, fn, slot_bytes):
    """A worker's loop: (seq, item) in, (seq, status, result) out; None stops
    it. With `slot_bytes`, the shared slots' memfd comes first, and results
    are pickled into them (see `_Worker.receive`)."""
    from tagger.host_memory import keep_freed_heap

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    keep_freed_heap()  # items are clips: megabytes allocated and freed each
    slots = []  # one mapping per slot: a result cannot spill into the next
    if slot_bytes:
        fd = reduction.recv_handle(conn)
        slots = [mmap.mmap(fd, slot_bytes, offset=i * slot_bytes)
                 for i in range(QUEUED_PER_WORKER)]
        os.close(fd)
    sent = 0
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        seq, item = message
        try:
            reply = (seq, "ok", fn(item))
        except Exception as error:
            reply = (seq, "error", _portable(error))
        if slots and reply[1] == "ok":
            index = sent % QUEUED_PER_WORKER
            reply = _into_slot(reply, slots[index], index * slot_bytes)
        conn.send(reply)
        sent += 1


def _into_slot(reply, slot, offset: int):
    """Pickles reply's (status, value) into `slot` (a mapping of the shared
    memory at `offset`) and returns the message that says where; `reply`
    itself if it does not fit."""
    seq, status, value = reply
    slot.seek(0)
    try:
        reduction.ForkingPickler(slot, pickle.HIGHEST_PROTOCOL).dump((status, value))
    except ValueError:  # past the end of the slot: sent through the pipe instead
        if hasattr(mmap, "MADV_REMOVE"):  # and the slot's pages are given back
            slot.madvise(mmap.MADV_REMOVE)
        return reply
    return seq, "slot", (offset, slot.tell())


def _portable(error: Exception) -> Exception:
    """`error` if it survives pickling, else a WorkerError with its traceback."""
    import pickle

    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return WorkerError("".join(traceback.format_exception(error)).strip())
