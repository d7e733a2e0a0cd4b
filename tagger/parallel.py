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
the worker pickles a result straight into the slot it was sent with the
item and sends only where it lies, so a megabyte-sized result is copied
twice (into the slot, out of it) rather than pickled, pushed through a
socket and read back in pieces. Byte strings a worker wraps in `Chunks`
are copied once: into the slot, where the receiving side reads them in
place until it asks for the next result. Where there is no memfd, or a
result does not fit its slot, it goes through the pipe.
"""

from __future__ import annotations

import collections
import functools
import io
import json
import mmap
import multiprocessing
import multiprocessing.connection
import os
import pickle
import shutil
import signal
import traceback
from multiprocessing import reduction, spawn

from tagger import multiprocessing_internals as internals

IN_FLIGHT_PER_WORKER = 4  # items sent but not yet yielded, per worker
QUEUED_PER_WORKER = 2  # items sent to one worker at a time (one runs, one waits)
ATTEMPTS = 2  # an item whose worker dies is tried this many times in all
# Result slots shared with each worker: pages are only taken as results
# fill them. Each item is sent with a free slot of its worker for its
# result; the slot is free again once the result is read out of it, or,
# for a result holding `Chunks`, once the consumer asks for the next result.
SLOTS_PER_WORKER = IN_FLIGHT_PER_WORKER
SLOT_BYTES = 64 << 20
# The environment variable that tells the fork server where the main module
# is (tagger.fork_server).
FORK_SERVER_MAIN = "TAGGER_FORK_SERVER_MAIN"


class WorkerDied(RuntimeError):
    """A worker process died on an item on every attempt; the message names it."""

    def __init__(self, item, reason: str):
        super().__init__(f"a worker process died on {item!r} ({reason})")
        self.item = item
        self.reason = reason


class WorkerError(RuntimeError):
    """`fn` raised in a worker; the message carries the worker's traceback."""


class Chunks:
    """Byte strings inside a worker's result that are not to be copied on
    the way (a record to write, say). Through the shared slots they arrive
    as read-only memoryviews of the worker's slot, valid until the consumer
    asks `map` for the next result: keep them no longer (copy what must
    outlive that). Elsewhere (one worker in this process, or through the
    pipe) they arrive as given, or as bytes."""

    __slots__ = ("parts",)

    def __init__(self, parts):
        self.parts = tuple(parts)

    def __reduce__(self):  # through the pipe: copied into bytes
        return Chunks, (tuple(bytes(part) for part in self.parts),)


def _chunks(*parts) -> Chunks:
    return Chunks(parts)


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
        if context.get_start_method() == "forkserver":
            restart_unreachable_fork_server()  # a long run's server may have lost its socket
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
        self.free = collections.deque(range(SLOTS_PER_WORKER))  # slots for results
        self.slot_of = {}  # seq -> the slot its result goes to

    def receive(self):
        """The next (seq, status, value, held) the worker sent; `held`: the
        value holds memoryviews of its slot (`Chunks`)."""
        seq, status, value = self.conn.recv()
        if status != "slot":
            return seq, status, value, False
        # value: where (status, value) lies pickled, then its Chunks' parts
        offset, length, sizes = value
        parts, start = [], offset + length
        for size in sizes:
            parts.append(self.slots[start:start + size])
            start += size
        with self.slots[offset:offset + length] as pickled:
            status, value = pickle.loads(pickled, buffers=parts)
        return seq, status, value, bool(sizes)

    def release(self):
        """Unmaps the shared slots (the worker has stopped or died); where a
        consumer still holds Chunks of them, once it lets them go."""
        if self.slots is not None:
            self.slots.release()
            try:
                self.memory.close()
            except BufferError:  # memoryviews of it are still held
                pass
            self.slots = None

    def send(self, seq, item):
        self.queue.append(seq)
        slot = self.slot_of[seq] = self.free.popleft()
        try:
            self.conn.send((seq, item, slot))
        except OSError:  # it died: its sentinel says so, and the item is sent again
            pass

    def ask_to_stop(self):
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass

    def stop(self, timeout: float = 2.0):
        self.ask_to_stop()
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()
        self.release()


def _shared_slots():
    """(fd, mmap) of SLOTS_PER_WORKER result slots in a fresh memfd, or
    None where the platform has none (then results go through the pipe)."""
    if not hasattr(os, "memfd_create"):
        return None
    size = SLOTS_PER_WORKER * SLOT_BYTES
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
    clean process that imports `fn`'s module and this program's main module
    once, so each worker starts in milliseconds instead of importing them
    again), else plain spawning. Either way a worker never inherits this
    process's threads (TensorFlow's)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    main = describe_main()  # for the server to load (tagger.fork_server)
    if os.environ.get(FORK_SERVER_MAIN) != main:
        os.environ[FORK_SERVER_MAIN] = main
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["tagger.fork_server", fn.__module__])  # once it starts
    return context


def restart_unreachable_fork_server() -> None:
    """Makes the next worker start a new fork server where this process's
    server can no longer be reached: its Unix socket, or multiprocessing's
    temporary folder that holds it, was removed (a cleaner of temporary
    files, or the folder `tempfile` pointed at when the server started).
    multiprocessing would go on connecting to the removed socket, and
    every later worker would fail to start."""
    folder = internals.temporary_folder()
    if folder and not os.path.isdir(folder):
        forget_temporary_folder()
    address = internals.fork_server_address()
    if address and address[0] != "\0" and not os.path.exists(address):
        stop_fork_server()


def stop_fork_server() -> None:
    """Leaves this process's fork server, if one runs, so that the next
    worker starts a new one (multiprocessing's own `_stop` fails where its
    socket is gone, and waits for the server, which runs until every
    worker it started has ended: a live pool keeps its workers). The
    server ends once its last worker has; it is reaped at a later call."""
    left = internals.leave_fork_server()  # it ends when its workers have
    if left is not None:
        pid, address = left
        _LEFT_SERVERS.append(pid)
        if address and address[0] != "\0" and os.path.exists(address):
            os.unlink(address)
    for pid in list(_LEFT_SERVERS):
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                _LEFT_SERVERS.remove(pid)
        except ChildProcessError:
            _LEFT_SERVERS.remove(pid)


_LEFT_SERVERS = []  # fork servers left by stop_fork_server, not yet reaped


def forget_temporary_folder() -> None:
    """Makes multiprocessing take a new temporary folder when it next needs
    one (in `tempfile`'s folder of that time), and removes the one it had."""
    folder = internals.forget_temporary_folder()
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def describe_main() -> str:
    """Where this process's fork server finds the main module (JSON): this
    process, the module search path, the arguments and the main module's
    name or path, as multiprocessing tells a worker."""
    data = spawn.get_preparation_data("fork server")
    keys = ("sys_path", "sys_argv", "init_main_from_name", "init_main_from_path")
    return json.dumps({"parent": os.getpid(), **{key: data[key] for key in keys if key in data}})


class WorkerPool:
    """`workers` worker processes running `fn`, started at once and reused
    by every `map` (see `ordered_map`); a context manager that stops them."""

    def __init__(self, fn, workers: int):
        self.fn = fn
        self.context = worker_context(fn)
        self.workers = [_Worker(self.context, fn) for _ in range(workers)]

    def close(self):
        for worker in self.workers:  # all at once: they exit side by side
            worker.ask_to_stop()
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
        holding = {}  # seq -> (worker, slot) of a result that holds its slot
        next_seq = next_out = 0
        exhausted = False
        try:
            while True:
                # Feed idle workers: retries first, then new items, within the bound.
                for worker in sorted(self.workers, key=lambda w: len(w.queue)):
                    while len(worker.queue) < QUEUED_PER_WORKER and worker.free:
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
                    seq, next_out = next_out, next_out + 1
                    yield done.pop(seq)
                    if seq in holding:  # the consumer is done with it: its slot is free
                        worker, slot = holding.pop(seq)
                        worker.free.append(slot)
                if exhausted and not pending and not done:
                    return
                if not any(w.queue for w in self.workers):
                    continue
                ready = multiprocessing.connection.wait(
                    [w.conn for w in self.workers if w.queue]
                    + [w.process.sentinel for w in self.workers if w.queue])
                for worker in list(self.workers):
                    if worker.conn in ready or worker.process.sentinel in ready:
                        self._collect(worker, pending, done, holding, attempts, retry,
                                      on_failure)
        finally:  # the slots of results not yielded, or of the consumer's last one
            for worker, slot in holding.values():
                worker.free.append(slot)

    def _collect(self, worker, pending, done, holding, attempts, retry, on_failure):
        """Reads every result `worker` has sent; replaces it if it died."""
        try:
            while worker.queue and worker.conn.poll():
                seq, status, value, held = worker.receive()
                worker.queue.remove(seq)
                worker.finished += 1
                slot = worker.slot_of.pop(seq)
                if held:
                    holding[seq] = (worker, slot)
                else:
                    worker.free.append(slot)
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
    are pickled into them (see `_Worker.receive`). A pool gone (its process
    ended, by an error say) ends the worker quietly, at any point."""
    from tagger.host_memory import keep_freed_heap

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    keep_freed_heap()  # items are clips: megabytes allocated and freed each
    slots = []  # one mapping per slot: a result cannot spill into the next
    if slot_bytes:
        try:
            fd = reduction.recv_handle(conn)
        except (EOFError, OSError):  # the pool went away before this worker began
            return
        slots = [mmap.mmap(fd, slot_bytes, offset=i * slot_bytes)
                 for i in range(SLOTS_PER_WORKER)]
        os.close(fd)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        seq, item, slot = message
        try:
            reply = (seq, "ok", fn(item))
        except Exception as error:
            reply = (seq, "error", _portable(error))
        if slots and reply[1] == "ok":
            reply = _into_slot(reply, slots[slot], slot * slot_bytes)
        try:
            conn.send(reply)
        except OSError:  # the pool went away (its process ended): nothing to send to
            return


class _SlotPickler(pickle.Pickler):
    """Pickles into a slot; the parts of `Chunks` go out of band (`parts`)."""

    def __init__(self, file):
        parts = self.parts = []  # the PickleBuffers of Chunks' parts, in pickling order
        # Other buffers (numpy arrays') are pickled in band. (The callback
        # must not refer to the pickler: a cycle through buffers still
        # exported would be left to the garbage collector, which crashes
        # on it.)
        super().__init__(file, pickle.HIGHEST_PROTOCOL,
                         buffer_callback=lambda buffer: all(buffer is not p for p in parts))
        self.dispatch_table = _forking_reducers()  # as multiprocessing pickles

    def reducer_override(self, obj):
        if type(obj) is not Chunks:
            return NotImplemented
        buffers = [pickle.PickleBuffer(part) for part in obj.parts]
        self.parts += buffers
        return _chunks, tuple(buffers)


@functools.cache
def _forking_reducers() -> dict:
    return reduction.ForkingPickler(io.BytesIO()).dispatch_table


def _into_slot(reply, slot, offset: int):
    """Pickles reply's (status, value) into `slot` (a mapping of the shared
    memory at `offset`), its Chunks' parts after it, and returns the
    message that says where; `reply` itself if it does not fit."""
    seq, status, value = reply
    slot.seek(0)
    pickler = _SlotPickler(slot)
    try:
        pickler.dump((status, value))
        length = slot.tell()
        sizes = []
        for part in pickler.parts:
            with part.raw() as raw:
                slot.write(raw)
                sizes.append(raw.nbytes)
    except ValueError:  # past the end of the slot: sent through the pipe instead
        if hasattr(mmap, "MADV_REMOVE"):  # and the slot's pages are given back
            slot.madvise(mmap.MADV_REMOVE)
        return reply
    finally:
        for part in pickler.parts:
            part.release()
    return seq, "slot", (offset, length, sizes)


def _portable(error: Exception) -> Exception:
    """`error` if it survives pickling, else a WorkerError with its traceback."""
    import pickle

    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return WorkerError("".join(traceback.format_exception(error)).strip())
