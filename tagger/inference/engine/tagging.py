"""The tagging pipeline: decoding overlaps inference, windows of many files
share batches.

    decoder threads (workers)                      caller's thread
    file -> audio_windows -> _Window ...     --\
    file -> audio_windows -> _Window ...     ----> bounded queue -> batch of
    ...                      _Done           --/    `batch_size` windows ->
                                                     predictor -> per-file
                                                     scores -> FileResult

Each decoder thread takes the next file, streams it through `audio_windows`
(block reads of libsndfile, or of FFmpeg where libsndfile cannot open the
file, + soxr streaming resampling, so an hour-long file never sits in
memory), or with `windows=N` reads the N windows `window_choice` picks by
seeking, and puts its windows, then a `_Done` note with the
file's length or its decode error, on one bounded queue. The caller's thread
fills a batch from the queue and runs the model whenever the batch is full
(and once more at the end), so batches mix the tails and heads of
different files and all have the full size but the last. libsndfile (via
cffi), soxr and TensorFlow's kernels release the GIL, so the decoders run
while the model computes; the queue bound (a few batches) keeps memory
flat when decoding is faster than the model, and the model only waits for
audio when decoding is slower. Threads rather than processes: the windows
need no pickling and the decoders share the caller's memory
(bench/bench_tag.py measures what this leaves of the model's own speed).
How many threads: `workers`, or by default as many as keep up with the
model, sized from the rates measured while it runs (`decoder_pool`).

Results come in completion order, each file's windows in time order. A
path that is not a regular file is never opened (a named pipe would block a
decoder forever); a file whose audio holds NaN or infinite samples, or whose
scores come out non-finite, is a failed result with that reason, so no NaN
reaches a report. Whatever goes wrong while a decoder thread handles a file
(an unexpected exception included) is that file's failure, with the reason;
anything that fails outside one file's work (the iterable of files raising,
say) is raised again in the caller's thread, so a dead decoder can never
end a run early as if every file had been seen. Each result carries the
file's `os.stat` taken before it was opened (`read_stat`), so that what
stores the result can tell whether the file changed while it was read.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
import time
from typing import NamedTuple

import numpy as np

from tagger.audio import AudioDecodeError, WindowStream, audio_windows, decode_reason, file_info
from tagger.fileio import path_text
from tagger.inference.engine.decoder_pool import (
    AUTO_START,
    CHECK_SECONDS,
    DecoderRates,
    decoder_threads,
)
from tagger.inference.inputs import path_problem
from tagger.inference.window_choice import read_chosen

NOT_FINITE_SCORES = "the model gave NaN or infinite scores for this file"

_PUT_TIMEOUT = 0.1  # seconds between checks for the consumer's stop signal


@dataclasses.dataclass
class FileResult:
    """One input file's outcome. `index` is its position in the input list.

    On success: `windows` (count), `scores` (windows, tags) and `embeddings`
    (windows, dim) or None (both dropped by `compact`), `clip_scores`
    (tags,) the mean over windows, `samples` (length at the model's
    `sample_rate`), `file_sample_rate` (the file's own), `window_samples`,
    `hop_samples`, `edge_padding`; window w starts at sample `w *
    hop_samples` of the file padded by `edge_padding` samples at each edge
    (`audio_windows`). A file shorter than one window is `padded`: one
    zero-padded window. With `tag_files(..., windows=N)`: `chosen`, the
    indices of the windows scored (None: every window), and `through`, why
    the file was decoded from its start rather than by seeking (None where
    it was not; `window_choice`). On failure: `error` (one line) and
    nothing else. Either way `read_stat`: the file's `os.stat` taken before
    it was opened (None where that failed), the file as its scores describe it.
    """

    index: int
    path: str
    error: str | None = None
    windows: int = 0
    samples: int = 0
    sample_rate: int = 0
    file_sample_rate: int | None = None
    window_samples: int = 0
    hop_samples: int = 0
    edge_padding: int = 0
    scores: np.ndarray | None = None
    clip_scores: np.ndarray | None = None
    embeddings: np.ndarray | None = None
    read_stat: os.stat_result | None = None
    chosen: np.ndarray | None = None
    through: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def padded(self) -> bool:
        return self.ok and self.samples + 2 * self.edge_padding < self.window_samples

    @property
    def duration(self) -> float:
        """Seconds."""
        return self.samples / self.sample_rate if self.sample_rate else 0.0

    @property
    def starts(self) -> np.ndarray:
        """(windows,) first sample of each window scored at `sample_rate`."""
        if self.chosen is not None:
            return np.asarray(self.chosen, np.int64) * self.hop_samples
        return np.arange(self.windows, dtype=np.int64) * self.hop_samples

    def compact(self) -> FileResult:
        """The same result without the per-window arrays."""
        return dataclasses.replace(self, scores=None, embeddings=None)


def tag_files(predictor, files, hop_samples: int | None = None, batch_size: int = 32,
              workers: int | None = None, queue_batches: int = 2,
              rates: DecoderRates | None = None, windows: int | None = None):
    """Yields a `FileResult` for every path in `files`, in completion order.

    `predictor(windows) -> (scores, embeddings or None)` scores
    `(batch, predictor.window_samples)` float32 windows at
    `predictor.sample_rate`; `hop_samples` is the step between windows
    (default: the predictor's `hop_samples`, else the window: no overlap),
    taken through each file padded by the predictor's `edge_padding` (0 if
    it has none). At most `queue_batches * batch_size`
    decoded windows wait in the queue. `files` may be any iterable (a lazy
    walk of a library): the decoder threads draw from it one path at a
    time, and nothing of a file is kept once its result is yielded.

    `workers` decoder threads, or None: `AUTO_START`, then more (up to the
    cores this process may use) when the measured rates say the model
    outpaces them (`decoder_pool.decoder_threads`). `rates`, a
    `DecoderRates`, receives the measurements (and the thread count).

    `windows` N (None or 0: every window): each file is scored from N of
    its windows, read by seeking (`window_choice.read_chosen`).
    """
    yield from _TaggingLoop(predictor, files, hop_samples, batch_size, workers, queue_batches,
                            rates, windows).results()


# what the decoder threads put on the queue: a window of file `index`; the
# file's end (its windows, length at the model's rate, own sample rate) or
# failure; a failure outside one file's work, and a thread's end


class _Window(NamedTuple):
    index: int
    samples: np.ndarray  # (window_samples,)


class _Done(NamedTuple):
    index: int
    windows: int
    samples: int
    rate: int | None
    error: str | None
    read_stat: os.stat_result | None
    chosen: np.ndarray | None = None
    through: str | None = None


class _Raised(NamedTuple):
    path: str | None
    error: BaseException


class _Exited(NamedTuple):
    pass


class _TaggingLoop:
    """`tag_files`' state: the decoder threads, the queue they fill and the
    batch the caller's thread fills from it."""

    def __init__(self, predictor, files, hop_samples, batch_size, workers, queue_batches,
                 rates, windows=None):
        from tagger.inference.common import available_cores

        if batch_size < 1 or (workers is not None and workers < 1):
            raise ValueError(f"batch_size and workers must be >= 1, got {batch_size}, "
                             f"{workers}")
        self.predictor = predictor
        self.window = predictor.window_samples
        self.hop = hop_samples or getattr(predictor, "hop_samples", None) or self.window
        self.edge = int(getattr(predictor, "edge_padding", 0) or 0)
        self.windows = windows or None
        self.auto = workers is None
        self.limit = len(files) if hasattr(files, "__len__") else None  # threads beyond: idle
        self.cores = available_cores() if self.auto else 0
        start = AUTO_START if self.auto else workers
        if self.limit is not None:
            start = min(start, self.limit)
        self.start = max(1, start)
        self.rates = rates if rates is not None else DecoderRates()
        self.items = queue.Queue(maxsize=max(queue_batches * batch_size,
                                             max(self.start, self.cores) + 1))
        self.stop = threading.Event()
        self.drained = threading.Event()  # every file handed to a decoder
        self.next_file = iter(enumerate(files))
        self.lock = threading.Lock()
        self.paths = {}  # index -> path of the files being decoded or scored
        self.threads = []
        self.checked = time.perf_counter()  # the last sizing decision
        self.pending = {}  # index -> _Accumulator
        self.batch = np.empty((batch_size, self.window), np.float32)
        self.owners = []  # (file index) of each row of `batch`
        self.calls = 0  # predictor calls; the first (tracing, compiling) is not timed

    def results(self):
        self._add_decoders(self.start)
        exited = 0
        try:
            while exited < len(self.threads):
                item = self.items.get()
                if isinstance(item, _Window):
                    self.pending.setdefault(item.index, _Accumulator())
                    self.batch[len(self.owners)] = item.samples
                    self.owners.append(item.index)
                    if len(self.owners) == len(self.batch):
                        self._flush()
                        self._resize()
                        yield from self._finished()
                elif isinstance(item, _Done):
                    entry = self.pending.setdefault(item.index, _Accumulator())
                    entry.expected, entry.samples, entry.rate, entry.error = (
                        item.windows, item.samples, item.rate, item.error)
                    entry.read_stat, entry.chosen, entry.through = (
                        item.read_stat, item.chosen, item.through)
                    yield from self._finished()
                elif isinstance(item, _Raised):
                    raise _decoder_failure(item.path, item.error)
                else:
                    exited += 1
            self._flush()
            yield from self._finished()
        finally:
            self.stop.set()
            for thread in self.threads:
                thread.join(timeout=5)

    # -- the decoder threads

    def _put(self, item) -> bool:
        while not self.stop.is_set():
            try:
                self.items.put(item, timeout=_PUT_TIMEOUT)
                return True
            except queue.Full:
                continue
        return False

    def _decode_file(self, index, path) -> _Done | None:
        """The file's windows onto the queue; returns its `_Done`, or None
        when the consumer has stopped."""
        rates, count = self.rates, 0
        began = time.perf_counter()  # decoding since, not counting blocked puts
        read_stat = _stat(path)  # before anything reads it
        try:
            problem = path_problem(path)  # never open a pipe or a device
            if problem is not None:
                raise AudioDecodeError(problem)
            if self.windows:
                stream = WindowStream(read_chosen(path, self.predictor.sample_rate, self.window,
                                                  self.hop, self.edge, self.windows))
            else:
                rate = _file_sample_rate(path)
                stream = WindowStream(audio_windows(path, self.predictor.sample_rate,
                                                    self.window, self.hop,
                                                    edge_padding=self.edge))
            for _, samples in stream:
                rates.decoded(1, time.perf_counter() - began)
                if not self._put(_Window(index, samples)):
                    return None
                began = time.perf_counter()
                count += 1
            if self.windows:
                chosen = stream.total
                done = _Done(index, count, chosen.length, chosen.file_rate, None, read_stat,
                             chosen.indices, chosen.through)
            else:
                done = _Done(index, count, stream.total, rate, None, read_stat)
        except AudioDecodeError as error:
            done = _Done(index, count, 0, None, decode_reason(error), read_stat)
        except Exception as error:  # a decoder bug: this file's failure, never a hang
            done = _Done(index, count, 0, None,
                         f"cannot decode ({type(error).__name__}: {error})", read_stat)
        rates.decoded(0, time.perf_counter() - began)  # the file's tail, or failure
        return done

    def _decode(self):
        path = None  # the file this thread holds
        try:
            while not self.stop.is_set():
                path = None
                with self.lock:
                    index, path = next(self.next_file, (None, None))
                    if index is not None:
                        self.paths[index] = path
                if index is None:
                    self.drained.set()
                    return
                done = self._decode_file(index, path)
                if done is None or not self._put(done):
                    return
        except BaseException as error:  # the caller's thread raises it: never silent
            self._put(_Raised(path, error))
        finally:
            self._put(_Exited())

    def _add_decoders(self, count):
        for _ in range(count):
            thread = threading.Thread(target=self._decode,
                                      name=f"tagger-decoder-{len(self.threads)}", daemon=True)
            self.threads.append(thread)
            self.rates.threads = len(self.threads)
            thread.start()

    def _resize(self):
        """Starts the decoders the measured rates ask for (auto only)."""
        now = time.perf_counter()
        if not self.auto or self.drained.is_set() or now - self.checked < CHECK_SECONDS:
            return
        self.checked = now
        target = decoder_threads(self.rates.model_rate, self.rates.decode_rate, self.cores)
        if self.limit is not None:
            target = min(target, self.limit)
        self._add_decoders(max(0, target - len(self.threads)))

    # -- the caller's thread

    def _flush(self):
        if not self.owners:
            return
        began = time.perf_counter()
        scores, embeddings = self.predictor(self.batch[:len(self.owners)])
        if self.calls:
            self.rates.model(len(self.owners), time.perf_counter() - began)
        self.calls += 1
        for row, index in enumerate(self.owners):
            entry = self.pending.get(index)
            if entry is not None and entry.error is None:  # else: failed meanwhile
                entry.scores.append(scores[row])
                if embeddings is not None:
                    entry.embeddings.append(embeddings[row])
        self.owners.clear()

    def _finished(self):
        done = [i for i, entry in self.pending.items() if entry.complete]
        return [self.pending.pop(i).result(i, self.paths.pop(i), self.predictor, self.window,
                                           self.hop, self.edge)
                for i in done]


class _Accumulator:
    def __init__(self):
        self.scores, self.embeddings = [], []
        self.expected = None  # windows, known once the decoder is done
        self.samples, self.rate, self.error = 0, None, None
        self.read_stat = self.chosen = self.through = None

    @property
    def complete(self) -> bool:
        return self.error is not None or (
            self.expected is not None and len(self.scores) == self.expected)

    def result(self, index, path, predictor, window, hop, edge=0) -> FileResult:
        if self.error is None and not self.scores:
            self.error = "no audio samples"
        if self.error is not None:
            return FileResult(index=index, path=path, error=self.error,
                              read_stat=self.read_stat)
        scores = np.stack(self.scores).astype(np.float32, copy=False)  # (windows, tags)
        if not np.isfinite(scores).all():
            return FileResult(index=index, path=path, error=NOT_FINITE_SCORES,
                              read_stat=self.read_stat)
        return FileResult(
            index=index, path=path, read_stat=self.read_stat, windows=len(scores),
            samples=self.samples, sample_rate=predictor.sample_rate, file_sample_rate=self.rate,
            window_samples=window, hop_samples=hop, edge_padding=edge, scores=scores,
            clip_scores=scores.mean(axis=0),
            embeddings=(np.stack(self.embeddings).astype(np.float32, copy=False)
                        if self.embeddings else None),
            chosen=self.chosen, through=self.through)


def _decoder_failure(path: str | None, error: BaseException) -> BaseException:
    """What the caller's thread raises when a decoder thread failed outside
    one file's work: a UserError as it is (one line for the user), anything
    else as a RuntimeError naming the file the thread held, if any."""
    from tagger.errors import UserError

    if isinstance(error, UserError):
        return error
    where = f"on {path_text(path)}" if path is not None else "taking the next file to tag"
    failure = RuntimeError(f"a decoder thread failed {where}: {type(error).__name__}: {error}")
    failure.__cause__ = error
    return failure


def _stat(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except (OSError, ValueError):  # gone, or a name the system cannot take
        return None


def _file_sample_rate(path: str) -> int | None:
    try:
        return int(file_info(path).sample_rate)
    except Exception:  # audio_windows reports the problem in its own words
        return None
