"""The records read without TensorFlow: NumPy batches for training and
evaluation where TensorFlow is not installed (Keras's JAX backend on a GPU
machine or a TPU VM); `reader` is the tf.data reader of the same records.

    train_batches  (x, y) training batches, endless: x (batch, *window) in
                   the records' storage dtype (int16 stays int16), y float32
                   (batch, num_tags); as `reader.train_dataset`
    eval_batches   (x float32 (batch, *window), clips) covering every
                   window of a split; as `reader.eval_windows` padded to
                   whole batches (`evaluation.predict`)
    clip_labels    (clip_ids, tags) of a split; as `reader.clip_labels`

Every record's length and data are checked against their CRC32Cs
(`tfrecord`, the framing's one reader and writer) and parsed by
`schema.parse_clip` (a reader of tf.train.Example's wire format beside the
schema's writer); a damaged, cut or missing shard is one UserError naming
it and how to rebuild it.

What does the work, and why:
- The files: `tfrecord`'s own framing code. The `tfrecord` package
  (1.14.6) reads the framing without checking either CRC and parses
  Examples with protobuf, which copies every clip's segments into a bytes
  object; grain's TFRecordIterDataset (0.2.18) checks no CRC either.
- The Example: `schema.parse_clip`, whose segments are a view of the
  record's bytes.
- The loading: the project's worker pool (`tagger.parallel.WorkerPool`):
  worker processes read, check and parse the records and cut the windows
  (a few work items in flight each: the reading's prefetch), and return
  them through memory they share with this process (a memfd); this
  process shuffles them in blocks and cuts the batches, `prefetch` batches
  ahead in a thread of its own. grain 0.2.18 (`MapDataset.map` of the same
  work items, `mp_prefetch`) was measured against it on the same records
  and machine (docs/performance.md) and not used: it served fewer
  segments a second at more CPU time in this process, and took seconds
  more to its first batch (its workers are spawned anew, importing
  everything, for every iterator: one an epoch); it copies every element
  into a new /dev/shm segment (a container's default /dev/shm of 64 MB
  holds two work items of raw audio), prefetches 500 elements in 16
  threads per worker unless told otherwise, and in a script with JAX
  installed stops with absl's UnparsedFlagAccessError (google/grain#1355,
  fixed after 0.2.18) unless the program's absl flags are marked parsed.

The order is a function of the seed alone: not of the number of workers,
the machine or the time, so a resumed run sees what an uninterrupted one
saw. The workers come from a fork server that imports the program's main
module: a script guards its work with `if __name__ == "__main__"`.
Reading records from a gs:// path needs TensorFlow (tf.io.gfile).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import itertools
import os
import queue
import threading
import time

import numpy as np

from tagger import fileio
from tagger.config import INT16_SCALE
from tagger.errors import UserError
from tagger.parallel import Chunks, WorkerPool
from tagger.records.info import (
    DatasetInfo,
    clip_count_error,
    load_info,
    shard_paths,
    unreadable_shard,
)
from tagger.records.schema import parse_clip
from tagger.records.tfrecord import HEADER, DamagedRecords, read_records, read_span
from tagger.records.windows import (
    DEFAULT_SHUFFLE_SEGMENTS,
    eval_windows_of_clip,
    join_windows,
)

READ_CYCLE = 4  # shards read side by side in a pass, as reader.clip_dataset's interleave
# A work item's records, in bytes, at most (a clip longer than that is an
# item of its own): its windows fit the pool's shared result slot.
PART_BYTES = 32 << 20
DEFAULT_PREFETCH = 8  # batches made ahead, in a thread of the reading process
CLOSE_SECONDS = 30  # close() waits this long at most for its thread and workers


def default_workers() -> int:
    """Worker processes when none are asked for: one core left to the
    process that trains, at most 4 (docs/performance.md: a worker serves
    several times what a GPU consumes)."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


def train_batches(data_dir: str, batch_size: int, split: str = "train",
                  window_segments: int = 1, info: DatasetInfo | None = None,
                  shuffle_segments: int = DEFAULT_SHUFFLE_SEGMENTS, seed=None,
                  shard: tuple | None = None, with_tags: bool = True,
                  workers: int | None = None, prefetch: int = DEFAULT_PREFETCH,
                  cycle: int = READ_CYCLE):
    """An endless iterator of training batches `(x, y)` (`(x,)` without
    `with_tags`, the tags never read): x (batch_size, *window) in the
    storage dtype, y float32 (batch_size, num_tags), the clip's tags.

    Each pass over the split shuffles its shard files and reads `cycle`
    of them side by side (train.py's --num-read-threads); the clips'
    windows (for k = window_segments > 1, from a random offset per clip
    and pass) are shuffled in blocks of about `shuffle_segments` segments
    and cut into batches; the windows
    left over from a block go into the next, so every window of a pass is
    in some batch. `seed` (a non-negative int or a tuple of them, None:
    a fresh one) fixes the order completely. `shard=(count, index)` reads
    one host's share: whole shard files when there are at least `count`,
    else every count-th clip of the split. `workers` processes read the
    records (0: this process; None: `default_workers()`), `prefetch`
    batches are made ahead in a thread (0: none). Close the iterator (or
    drop it) to stop its workers."""
    info = info or load_info(data_dir)
    if batch_size < 1 or cycle < 1:
        raise ValueError(f"batch_size and cycle must be at least 1, got {batch_size}, {cycle}")
    layout = Layout.of(info, split, window_segments, with_tags)
    spans = split_spans(data_dir, info, split)
    if shard is not None:
        count, index = shard
        if not 0 <= index < count:
            raise ValueError(f"shard (count, index) needs 0 <= index < count, got {shard}")
        if len(spans) >= count:
            spans = spans[index::count]
        else:  # too few shard files: every count-th clip, each a source of its own
            spans = [(clip,) for clip in itertools.chain(*spans)][index::count]
    if not sum(map(len, spans)):
        raise UserError(f"the {split} split of {data_dir!r} holds no clips to train on"
                        + (f" in share {shard} (count, index)" if shard else ""))
    per_clip = info.splits[split]["segments"] / max(info.splits[split]["clips"], 1)
    plan = TrainPlan(tuple(map(tuple, spans)), _entropy(seed),
                     max(1, round(shuffle_segments / max(per_clip, 1))), layout, cycle)

    def make():
        return _shuffled_batches(plan, batch_size, _loaded(plan.parts(), workers))

    return Batches(make, prefetch)


def eval_batches(data_dir: str, split: str, window_segments: int, batch_size: int,
                 info: DatasetInfo | None = None, workers: int | None = None,
                 prefetch: int = DEFAULT_PREFETCH):
    """`(x, clips)` batches covering every clip of `split` in order, each
    clip's windows at `windows.eval_window_starts`: x float32 (batch_size,
    *window) (int16 scaled to [-1, 1]); clips a dict of int64 arrays
    (batch_size,): `clip` (position in the split), `clip_id` and
    `windows` (how many windows the clip has). The last batch is padded
    to full size: x zeros, every clips field -1. `workers`, `prefetch`:
    as in `train_batches`."""
    info = info or load_info(data_dir)
    layout = Layout.of(info, split, window_segments, with_tags=False)
    parts = _parts(itertools.chain(*split_spans(data_dir, info, split)), None, layout)
    items = ((part, None) for part in parts)
    return Batches(lambda: _eval_batches(layout, batch_size, _loaded(items, workers)),
                   prefetch)


def clip_labels(data_dir: str, split: str, info: DatasetInfo | None = None):
    """(clip_ids int64 (clips,), tags float32 (clips, num_tags)) of `split`,
    in split order; a split that holds another number of clips than
    dataset_info.json lists is a UserError."""
    info = info or load_info(data_dir)
    layout = Layout.of(info, split, 1, with_tags=True)
    ids, tags = [], []
    for path in shard_paths(data_dir, info, split):
        with _ShardErrors(path, split), fileio.open_file(path, "rb") as file:
            for record in read_records(file):
                clip = layout.parse(record.data, path, record.offset)
                ids.append(clip["clip_id"])
                tags.append(clip["tags"])
    expected = info.splits[split]["clips"]
    if len(ids) != expected:
        raise clip_count_error(data_dir, split, len(ids), expected)
    return (np.array(ids, np.int64),
            np.stack(tags) if tags else np.zeros((0, info.num_tags), np.float32))


def clips(data_dir: str, split: str, info: DatasetInfo | None = None,
          shard: tuple | None = None):
    """Yields every clip of `split` in split order as `reader.clip_dataset`
    (without tags) gives them: dict of `clip_id` (int64), `path` (bytes)
    and float32 `segments` (num_segments, *segment_shape), int16 scaled to
    [-1, 1]. `shard=(count, index)`: the shard files index, index + count,
    ... when there are at least `count`, else every count-th clip."""
    info = info or load_info(data_dir)
    layout = Layout.of(info, split, 1, with_tags=False)
    paths = shard_paths(data_dir, info, split)
    count, index = shard or (1, 0)
    whole_files = len(paths) >= count
    if whole_files:
        paths = paths[index::count]
    position = 0
    for path in paths:
        with _ShardErrors(path, split), fileio.open_file(path, "rb") as file:
            for record in read_records(file):
                if whole_files or position % count == index:
                    clip = layout.parse(record.data, path, record.offset)
                    segments = clip["segments"]
                    if segments.dtype == np.int16:
                        segments = segments.astype(np.float32) / INT16_SCALE
                    yield {"clip_id": np.int64(clip["clip_id"]), "path": bytes(clip["path"]),
                           "segments": np.array(segments, np.float32)}
                position += 1


class Batches:
    """An iterator of the batches `make()` yields, made `prefetch` ahead in
    a thread of this process (without `prefetch`, as they are asked for);
    an error there is raised here. `close()` (or dropping it) stops it."""

    def __init__(self, make, prefetch: int):
        self._stop = threading.Event()
        self._queue = self._thread = self._made = None
        if prefetch:
            self._queue = queue.Queue(prefetch)
            self._thread = threading.Thread(target=_fill, args=(make, self._queue, self._stop),
                                            name="plain_reader", daemon=True)
            self._thread.start()
        else:
            self._made = make()

    def __iter__(self):
        return self

    def __next__(self):
        if self._stop.is_set():  # closed: nothing more is made
            raise StopIteration
        if self._queue is None:
            return next(self._made)
        item = self._queue.get()
        if isinstance(item, _Ended):
            self._queue.put(item)  # asked again: the same end
            if item.error is not None:
                raise item.error
            raise StopIteration
        return item

    def close(self, wait: float = CLOSE_SECONDS) -> None:
        """Stops making batches; waits up to `wait` seconds for the thread
        (and its workers) to stop."""
        self._stop.set()
        if self._thread is not None:
            deadline = time.monotonic() + wait
            while self._thread.is_alive() and time.monotonic() < deadline:
                try:  # make room for the filler to see the stop
                    self._queue.get(timeout=0.05)
                except queue.Empty:
                    pass
        elif self._made is not None:
            self._made.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):  # dropped: the filler stops on its own, not waited for
        self.close(wait=0)


@dataclasses.dataclass
class _Ended:
    error: BaseException | None


def _fill(make, batches: queue.Queue, stop: threading.Event) -> None:
    made = None
    try:
        made = make()
        for batch in made:
            if not _put(batches, batch, stop):
                return
        _put(batches, _Ended(None), stop)
    except BaseException as error:  # noqa: BLE001 (raised in the consumer's thread)
        _put(batches, _Ended(error), stop)
    finally:
        if made is not None:
            made.close()


def _put(batches: queue.Queue, item, stop: threading.Event) -> bool:
    """Puts `item` once there is room; False, not put, once `stop` is set."""
    while not stop.is_set():
        try:
            batches.put(item, timeout=0.1)
            return True
        except queue.Full:
            pass
    return False


@dataclasses.dataclass(frozen=True)
class Layout:
    """How a split's records are read: the split (for errors), the clips'
    storage, the windows made of them."""

    split: str
    num_tags: int
    segment_shape: tuple
    dtype: str
    window_segments: int
    with_tags: bool

    @classmethod
    def of(cls, info: DatasetInfo, split: str, window_segments: int, with_tags: bool):
        if window_segments < 1:
            raise ValueError(f"window_segments must be at least 1, got {window_segments}")
        return cls(split, info.num_tags, tuple(info.segment_shape), info.features["dtype"],
                   window_segments, with_tags)

    @property
    def window_shape(self) -> tuple:
        return (self.window_segments * self.segment_shape[0], *self.segment_shape[1:])

    def parse(self, data, path: str, offset: int) -> dict:
        """`schema.parse_clip` of the record whose data starts at byte
        `offset` of the shard at `path`; a record that is no clip is the
        shard's UserError."""
        try:
            return parse_clip(data, self.num_tags, self.segment_shape, self.dtype,
                              self.with_tags)
        except ValueError as error:
            raise unreadable_shard(path, self.split, f"is damaged (its record at byte "
                                   f"{offset - HEADER}: {error})") from None


@dataclasses.dataclass(frozen=True)
class Part:
    """A work item: clips ((path, data offset, length), ...) to read and cut
    into windows. With a `seed`, training windows (k > 1: from an offset
    the seed draws per clip); without, every window of `eval_window_starts`."""

    clips: tuple
    seed: tuple | None
    layout: Layout


def read_part(part: Part):
    """(clip_ids int64 (clips,), windows int64 (clips,) each clip's count,
    tags float32 (clips, num_tags) or None, Chunks of each clip's windows'
    bytes (its (windows, *window) array in the storage dtype))."""
    layout, k = part.layout, part.layout.window_segments
    rng = None if part.seed is None else np.random.default_rng(part.seed)
    ids, counts, tags, windows = [], [], [], []
    files = {}
    try:
        for path, offset, length in part.clips:
            with _ShardErrors(path, layout.split):
                if path not in files:
                    files[path] = fileio.open_file(path, "rb")
                data = read_span(files[path], offset, length)
            clip = layout.parse(data, path, offset)
            x = clip["segments"]  # (n, *segment_shape), a view of the record
            if rng is None:
                x = eval_windows_of_clip(x, k)
            elif k > 1:
                n = len(x)
                x = join_windows(x, k, int(rng.integers(max(n - n // k * k, 0) + 1)))
            ids.append(clip["clip_id"])
            counts.append(len(x))
            windows.append(memoryview(np.ascontiguousarray(x)).cast("B"))
            if layout.with_tags:
                tags.append(clip["tags"])
    finally:
        for file in files.values():
            file.close()
    return (np.array(ids, np.int64), np.array(counts, np.int64),
            np.stack(tags) if tags else None, Chunks(windows))


class _ShardErrors:
    """Inside it, a failed read of the shard at `path` is its UserError."""

    def __init__(self, path: str, split: str):
        self.path, self.split = path, split

    def __enter__(self):
        return self

    def __exit__(self, kind, error, trace):
        if error is None or isinstance(error, UserError):
            return False
        if isinstance(error, FileNotFoundError):
            raise unreadable_shard(self.path, self.split, "is missing") from None
        if isinstance(error, DamagedRecords):
            raise unreadable_shard(self.path, self.split, f"is damaged ({error})") from None
        if isinstance(error, OSError):
            raise unreadable_shard(self.path, self.split, "could not be read "
                                   f"({fileio.describe_os_error(error)})") from None
        if isinstance(error, ImportError) and not fileio.is_local(self.path):
            raise UserError(f"shard {self.path!r} is read through tf.io.gfile, which needs "
                            "TensorFlow; copy the records to a local folder or install "
                            "TensorFlow") from None
        return False


def split_spans(data_dir: str, info: DatasetInfo, split: str) -> list:
    """Per shard of `split`, in order: ((path, data offset, length), ...) of
    its records (only their headers read, each length's CRC checked); a
    split holding another number of clips than dataset_info.json lists is
    a UserError."""
    spans = []
    for path in shard_paths(data_dir, info, split):
        with _ShardErrors(path, split), fileio.open_file(path, "rb") as file:
            spans.append([(path, record.offset, record.length)
                          for record in read_records(file, data=False)])
    found, expected = sum(map(len, spans)), info.splits[split]["clips"]
    if found != expected:
        raise clip_count_error(data_dir, split, found, expected)
    return spans


@dataclasses.dataclass(frozen=True)
class TrainPlan:
    """The endless stream of training work of one share of a split. Pass
    `p` shuffles the sources (shard files, or single clips) with the seed
    (entropy, p) and reads `cycle` of them side by side, one clip of
    each in turn; its clips are cut into blocks of `clips_per_block`, each
    block into parts of at most PART_BYTES of records."""

    sources: tuple  # per source ((path, offset, length), ...)
    entropy: tuple
    clips_per_block: int
    layout: Layout
    cycle: int = READ_CYCLE

    def pass_clips(self, index: int) -> list:
        order = np.random.default_rng([*self.entropy, index]).permutation(len(self.sources))
        return interleave([self.sources[i] for i in order], self.cycle)

    def block_seed(self, pass_index: int, block: int) -> tuple:
        return (*self.entropy, pass_index, block)

    def parts(self):
        """Endless: (Part, the block's seed or None), the seed given with
        each block's last part."""
        for pass_index in itertools.count():
            clips = self.pass_clips(pass_index)
            for block, start in enumerate(range(0, len(clips), self.clips_per_block)):
                seed = self.block_seed(pass_index, block)
                parts = list(_parts(clips[start:start + self.clips_per_block], seed,
                                    self.layout))
                for i, part in enumerate(parts):
                    yield part, seed if i == len(parts) - 1 else None


def _parts(clips, seed, layout: Layout):
    """Parts of consecutive `clips` of at most PART_BYTES of records (at
    least one clip each); with a `seed`, part i draws with (*seed, i)."""
    part, size, index = [], 0, 0
    for clip in clips:
        if part and size + clip[2] > PART_BYTES:
            yield Part(tuple(part), None if seed is None else (*seed, index), layout)
            part, size, index = [], 0, index + 1
        part.append(clip)
        size += clip[2]
    if part:
        yield Part(tuple(part), None if seed is None else (*seed, index), layout)


def interleave(sources, cycle: int) -> list:
    """The items of `sources` (sequences), `cycle` of them read side by side,
    one item of each in turn; a source found ended on its turn gives its
    place to the next source, first read from on the place's next turn
    (tf.data's interleave with `cycle_length` and `block_length` 1)."""
    waiting = iter(sources)
    active = [iter(source) for source in itertools.islice(waiting, cycle)]
    out, turn = [], 0
    while active:
        item = next(active[turn], _END)
        if item is not _END:
            out.append(item)
        elif (following := next(waiting, None)) is not None:
            active[turn] = iter(following)  # read from on its next turn
        else:
            del active[turn]
            turn -= 1
        if active:
            turn = (turn + 1) % len(active)
    return out


_END = object()


def _entropy(seed) -> tuple:
    if seed is None:
        return (np.random.SeedSequence().entropy,)
    seeds = tuple(int(s) for s in (seed if isinstance(seed, (tuple, list)) else (seed,)))
    if any(s < 0 for s in seeds):
        raise ValueError(f"a seed is a non-negative int or a tuple of them, got {seed!r}")
    return seeds


def _loaded(items, workers: int | None):
    """(item's tag, read_part(part)) for each (part, tag) of `items`, in
    order: read by `workers` processes (0: in this process)."""
    workers = default_workers() if workers is None else workers
    tags = collections.deque()

    def parts():
        for part, tag in items:
            tags.append(tag)
            yield part

    if workers <= 0:
        for result in map(read_part, parts()):
            yield tags.popleft(), result
        return
    with WorkerPool(read_part, workers) as pool:
        for result in pool.map(parts()):
            yield tags.popleft(), result


def _shuffled_batches(plan: TrainPlan, batch_size: int, results):
    """Training batches of the parts' windows: each block's windows (with
    those left over from the block before) in a random order drawn with
    the block's seed, cut into whole batches."""
    layout = plan.layout
    block = _Rows(layout.window_shape, np.dtype(layout.dtype),
                  layout.num_tags if layout.with_tags else 0)
    with contextlib.closing(results):
        yield from _shuffled(block, batch_size, results)


def _shuffled(block, batch_size: int, results):
    for block_seed, (_, counts, tags, chunks) in results:
        block.add(counts, tags, chunks.parts)
        if block_seed is None:
            continue  # more parts of this block to come
        order = np.random.default_rng(block_seed).permutation(block.filled)
        whole = len(order) // batch_size * batch_size
        for start in range(0, whole, batch_size):
            yield block.take(order[start:start + batch_size])
        block.keep(order[whole:])


class _Rows:
    """A growing block of windows (and their tags), filled from the parts'
    results, taken from in any order."""

    def __init__(self, shape: tuple, dtype, num_tags: int):
        self.x = np.empty((0, *shape), dtype)
        self.y = np.empty((0, num_tags), np.float32) if num_tags else None
        self.filled = 0

    def add(self, counts, tags, parts) -> None:
        end = self.filled + int(counts.sum())
        if end > len(self.x):
            self._grow(end)
        rows = self.x[self.filled:end].reshape(-1).view(np.uint8)
        at = 0
        for part in parts:
            rows[at:at + len(part)] = np.frombuffer(part, np.uint8)
            at += len(part)
        if self.y is not None:
            self.y[self.filled:end] = np.repeat(tags, counts, axis=0)
        self.filled = end

    def _grow(self, size: int) -> None:
        size += size // 8  # room for the next block's leftovers and longer clips
        x = np.empty((size, *self.x.shape[1:]), self.x.dtype)
        x[:self.filled] = self.x[:self.filled]
        self.x = x
        if self.y is not None:
            y = np.empty((size, self.y.shape[1]), np.float32)
            y[:self.filled] = self.y[:self.filled]
            self.y = y

    def take(self, rows) -> tuple:
        x = self.x.take(rows, axis=0)
        return (x,) if self.y is None else (x, self.y.take(rows, axis=0))

    def keep(self, rows) -> None:
        """Only `rows`, moved to the front."""
        self.x[:len(rows)] = self.x[rows]
        if self.y is not None:
            self.y[:len(rows)] = self.y[rows]
        self.filled = len(rows)


def _eval_batches(layout: Layout, batch_size: int, results):
    x = np.zeros((batch_size, *layout.window_shape), np.float32)
    clips = {name: np.full(batch_size, -1, np.int64) for name in ("clip", "clip_id", "windows")}
    filled, position = 0, 0
    dtype = np.dtype(layout.dtype)
    with contextlib.closing(results):
        for _, (ids, counts, _, chunks) in results:
            for clip_id, count, part in zip(ids, counts, chunks.parts):
                windows = np.frombuffer(part, dtype).reshape(count, *layout.window_shape)
                done = 0
                while done < count:
                    n = min(count - done, batch_size - filled)
                    rows = windows[done:done + n]
                    if dtype == np.int16:
                        np.divide(rows, np.float32(INT16_SCALE), out=x[filled:filled + n])
                    else:
                        x[filled:filled + n] = rows
                    clips["clip"][filled:filled + n] = position
                    clips["clip_id"][filled:filled + n] = clip_id
                    clips["windows"][filled:filled + n] = count
                    filled, done = filled + n, done + n
                    if filled == batch_size:
                        yield x, clips
                        x = np.zeros_like(x)
                        clips = {name: np.full(batch_size, -1, np.int64) for name in clips}
                        filled = 0
                position += 1
    if filled:
        yield x, clips
