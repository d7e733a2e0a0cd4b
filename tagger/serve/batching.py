"""Dynamic batching: the windows of many requests share the model's calls.

    decoder threads                           the batcher's thread
    request A: windows (5, W) -- submit --\
    request B: windows (2, W) -- submit ---> FIFO of requests -> batch of up
    request C: windows (40, W) - submit --/   to `max_batch` windows -> predictor
                                             -> each request's rows -> its Future

As in tag.py's pipeline (`tagger.inference.engine.tagging`), one thread owns the
predictor and fills each batch with the windows waiting, whoever sent them:
a request's windows may span several batches and a batch may hold the tail
of one request and the head of the next, so under load every call has the
full size. When fewer windows wait than a batch holds, the batcher waits at
most `max_wait` seconds after the oldest of them arrived for more to come,
then runs what it has: a lone request is answered at once, a burst is
batched.

The backlog is bounded: `submit` blocks the decoder thread while
`max_pending` windows already wait (a request larger than that is taken
when nothing waits), so decoded audio never piles up in memory faster than
the model scores it.
"""

from __future__ import annotations

import collections
import concurrent.futures
import threading
import time

import numpy as np

_CLOSED = "the server is shutting down"


class Closed(RuntimeError):
    """The batcher no longer takes requests."""


class _Job:
    def __init__(self, windows: np.ndarray):
        self.windows = windows  # (rows, window_samples) float32
        self.future = concurrent.futures.Future()
        self.arrived = time.monotonic()
        self.next_row = 0  # first row not yet in a batch
        self.done_rows = 0
        self.scores = None  # (rows, tags), allocated with the first batch
        self.embeddings = None  # (rows, dim) or None

    @property
    def rows(self) -> int:
        return len(self.windows)


class Batcher:
    """Scores windows of many requests on one predictor, in shared batches.

    `predictor(windows) -> (scores, embeddings or None)` is called from
    this object's own thread only (as tag.py calls it from one thread).
    `submit(windows)` returns a `concurrent.futures.Future` of `(scores
    (rows, tags), embeddings (rows, dim) or None)`; a predictor error
    fails the requests of that batch. `close()` fails what waits and ends
    the thread.
    """

    def __init__(self, predictor, max_batch: int = 32, max_wait: float = 0.005,
                 max_pending: int | None = None, name: str = "model"):
        if max_batch < 1 or max_wait < 0:
            raise ValueError(f"max_batch must be >= 1 and max_wait >= 0, got {max_batch}, "
                             f"{max_wait}")
        self.predictor = predictor
        self.max_batch = int(max_batch)
        self.max_wait = float(max_wait)
        self.max_pending = int(max_pending) if max_pending else 4 * self.max_batch
        self._waiting = collections.deque()  # jobs with rows not yet in a batch
        self._unscheduled = 0  # rows of `_waiting` not yet in a batch
        self._in_flight = 0  # rows in the batch being scored
        self._cond = threading.Condition()
        self._closed = False
        self._rate = None  # windows per second, a moving average
        self.batches = 0  # calls of the predictor so far
        self.windows = 0  # windows scored so far
        self._buffer = None
        self._thread = threading.Thread(target=self._run, name=f"tagger-batcher-{name}",
                                        daemon=True)
        self._thread.start()

    # -- the decoders' side -------------------------------------------------

    def submit(self, windows) -> concurrent.futures.Future:
        """Queues `(rows, window_samples)` windows (rows >= 1); blocks while
        `max_pending` windows already wait. Raises Closed after `close()`."""
        windows = np.asarray(windows, np.float32)
        if windows.ndim != 2 or not len(windows):
            raise ValueError(f"expected (rows >= 1, samples) windows, got {windows.shape}")
        job = _Job(windows)
        with self._cond:
            while (not self._closed and self._unscheduled
                   and self._unscheduled + job.rows > self.max_pending):
                self._cond.wait(0.5)
            if self._closed:
                raise Closed(_CLOSED)
            job.arrived = time.monotonic()
            self._waiting.append(job)
            self._unscheduled += job.rows
            self._cond.notify_all()
        return job.future

    @property
    def backlog(self) -> int:
        """Windows submitted and not yet scored."""
        with self._cond:
            return self._unscheduled + self._in_flight

    def seconds_to_drain(self) -> float | None:
        """How long the backlog should take at the recent speed (None
        before the first batch)."""
        rate = self._rate
        return None if not rate else self.backlog / rate

    def close(self, timeout: float = 5.0) -> None:
        with self._cond:
            self._closed = True
            waiting, self._waiting = list(self._waiting), collections.deque()
            self._unscheduled = 0
            self._cond.notify_all()
        for job in waiting:
            if not job.future.done():
                job.future.set_exception(Closed(_CLOSED))
        self._thread.join(timeout)

    # -- the batcher's thread ---------------------------------------------------

    def _next_batch(self):
        """[(job, first row, count)] of the next batch, or None once closed."""
        with self._cond:
            while not self._closed and not self._unscheduled:
                self._cond.wait()
            if self._closed:
                return None
            deadline = self._waiting[0].arrived + self.max_wait
            while not self._closed and self._unscheduled < self.max_batch:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            if self._closed:
                return None
            parts, room = [], self.max_batch
            while room and self._waiting:
                job = self._waiting[0]
                count = min(room, job.rows - job.next_row)
                parts.append((job, job.next_row, count))
                job.next_row += count
                room -= count
                if job.next_row == job.rows:
                    self._waiting.popleft()
            taken = self.max_batch - room
            self._unscheduled -= taken
            self._in_flight = taken
            self._cond.notify_all()  # decoders blocked on the backlog
            return parts

    def _run(self) -> None:
        while True:
            parts = self._next_batch()
            if parts is None:
                return
            rows = sum(count for _, _, count in parts)
            width = parts[0][0].windows.shape[1]
            if self._buffer is None or self._buffer.shape[1] != width:
                self._buffer = np.empty((self.max_batch, width), np.float32)
            offset = 0
            for job, first, count in parts:
                self._buffer[offset:offset + count] = job.windows[first:first + count]
                offset += count
            start = time.perf_counter()
            try:
                scores, embeddings = self.predictor(self._buffer[:rows])
            except BaseException as error:  # the requests learn it; the thread goes on
                self._fail([job for job, _, _ in parts], error)
                continue
            finally:
                with self._cond:
                    self._in_flight = 0
            self._measure(rows, time.perf_counter() - start)
            offset = 0
            for job, first, count in parts:
                self._deliver(job, first, count, scores[offset:offset + count],
                              None if embeddings is None else embeddings[offset:offset + count])
                offset += count

    def _deliver(self, job: _Job, first: int, count: int, scores, embeddings) -> None:
        if job.future.done():  # failed in an earlier batch
            return
        if job.scores is None:
            job.scores = np.empty((job.rows, scores.shape[1]), np.float32)
            if embeddings is not None:
                job.embeddings = np.empty((job.rows, embeddings.shape[1]), np.float32)
        job.scores[first:first + count] = scores
        if embeddings is not None:
            job.embeddings[first:first + count] = embeddings
        job.done_rows += count
        if job.done_rows == job.rows:
            job.windows = None  # the audio is no longer needed
            job.future.set_result((job.scores, job.embeddings))

    def _fail(self, jobs, error: BaseException) -> None:
        with self._cond:  # their rows still waiting are dropped
            for job in jobs:
                if job in self._waiting:
                    self._waiting.remove(job)
                    self._unscheduled -= job.rows - job.next_row
            self._cond.notify_all()
        for job in jobs:
            if not job.future.done():
                job.future.set_exception(error)

    def _measure(self, rows: int, seconds: float) -> None:
        self.batches += 1
        self.windows += rows
        rate = rows / max(seconds, 1e-6)
        self._rate = rate if self._rate is None else 0.8 * self._rate + 0.2 * rate
