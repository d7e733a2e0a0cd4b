"""The records read without TensorFlow: NumPy batches for training and
evaluation where TensorFlow is not installed (Keras's JAX backend on a GPU
machine or a TPU VM); `reader` is the tf.data reader of the same records.

    train_batches  (x, y) training batches, endless: x (batch, *window) in
                   the records' storage dtype (int16 stays int16), y float32
                   (batch, num_tags), the clips' tags or soft targets;
                   as `reader.train_dataset`
    eval_batches   (x float32 (batch, *window), clips) covering every
                   window of a split; as `reader.eval_windows` padded to
                   whole batches (`evaluation.predict`)
    clip_labels    (clip_ids, tags) of a split; as `reader.clip_labels`
    clip_paths     (clip_ids, audio paths) of a split; as `reader.clip_paths`

Every record's length and data are checked against their CRC32Cs
(`tfrecord`, the framing's one reader and writer) and its framing against
the shard's framing index, whose digest is the one the build recorded
(`shard_check`), and parsed by
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
  and machine (docs/performance.md, "How each figure is measured") and not used: it served fewer
  segments a second at more CPU time in this process, and took seconds
  more to its first batch (its workers are spawned anew, importing
  everything, for every iterator: one an epoch); it copies every element
  into a new /dev/shm segment (a container's default /dev/shm of 64 MB
  holds two work items of raw audio), prefetches 500 elements in 16
  threads per worker unless told otherwise, and in a script with JAX
  installed stops with absl's UnparsedFlagAccessError (google/grain#1355,
  fixed after 0.2.18) unless the program's absl flags are marked parsed.

The training order is `records.order`'s, tf.data's reader's too: a
function of the seed alone, not of the reader, the number of workers,
the machine or the time, so a resumed run sees what an uninterrupted one
saw, with either reader. Each shard is checked against dataset_info.json
before it is read (`shard_check`, once a process). The workers
come from a fork server that imports the program's main module: a
script guards its work with `if __name__ == "__main__"`.
Reading records from a gs:// path needs TensorFlow (tf.io.gfile).
"""

from __future__ import annotations

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
    load_info,
    shard_paths,
    unreadable_shard,
)
from tagger.records.order import (
    READ_CYCLE,
    TrainOrder,
    block_windows,
    interleave,
    window_offset,
)
from tagger.records.schema import parse_clip
from tagger.records.shard_check import ShardErrors, split_records
from tagger.records.tfrecord import HEADER, read_record, read_records
from tagger.records.windows import (
    DEFAULT_SHUFFLE_SEGMENTS,
    eval_windows_of_clip,
    join_windows,
    pass_windows_bound,
    window_means,
)

# A work item's records, in bytes, at most (a clip longer than that is an
# item of its own): its windows fit the pool's shared result slot.
PART_BYTES = 32 << 20
DEFAULT_PREFETCH = 8  # batches made ahead, in a thread of the reading process
CLOSE_SECONDS = 30  # close() waits this long at most for its thread and workers


def default_workers() -> int:
    """Worker processes when none are asked for: one core left to the
    process that trains, at most 4 (a worker serves several times what a GPU consumes:
    docs/performance.md, the rows "Training reader without TensorFlow" and
    "GPU machine's reader without TensorFlow")."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


def train_batches(data_dir: str, batch_size: int, split: str = "train",
                  window_segments: int = 1, info: DatasetInfo | None = None,
                  shuffle_segments: int = DEFAULT_SHUFFLE_SEGMENTS, seed=None,
                  shard: tuple | None = None, with_tags: bool = True,
                  workers: int | None = None, prefetch: int = DEFAULT_PREFETCH,
                  cycle: int = READ_CYCLE, global_batch: int | None = None, targets=None):
    """An endless iterator of training batches `(x, y)` (`(x,)` without
    `with_tags`, the tags never read): x (batch_size, *window) in the
    storage dtype, y float32 (batch_size, num_tags), the clip's tags; in
    the order of `records.order`, tf.data's reader's batch for batch.
    `targets(clip_id) -> (segments, num_tags)`: each segment's soft target
    in place of the clip's tags (a window's is the mean of its segments',
    `windows.window_means`; the tags are not read), looked up in this
    process as the batches are cut.

    Each pass over the split reads its shard files in an order drawn for
    it, `cycle` of them side by side (train.py's --num-read-threads); the
    clips' windows (for k = window_segments > 1, from an offset drawn per
    clip and pass) are shuffled in blocks of about `shuffle_segments`
    segments (a whole number of `global_batch`es, default `batch_size`)
    and cut into batches. `seed` (a non-negative int or a tuple of them,
    None: a fresh one) fixes the order completely. `shard=(count, index)`
    reads one host's share: whole shard files when there are at least
    `count`, else every count-th clip of each pass. `workers` processes
    read the records (0: this process; None: `default_workers()`),
    `prefetch` batches are made ahead in a thread (0: none). Close the
    iterator to stop its workers (dropping it stops them too, later)."""
    info = info or load_info(data_dir)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    layout = Layout.of(info, split, window_segments, with_tags and targets is None)
    sources = split_spans(data_dir, info, split, with_tags and targets is None)
    every = None
    if shard is not None:
        count, index = shard
        if not 0 <= index < count:
            raise ValueError(f"shard (count, index) needs 0 <= index < count, got {shard}")
        if len(sources) >= count:
            sources = sources[index::count]
        else:  # too few shard files: every count-th clip of each pass
            every = shard
    if not sum(map(len, sources)) or (every and sum(map(len, sources)) <= every[1]):
        raise UserError(f"the {split} split of {data_dir!r} holds no clips to train on"
                        + (f" in share {shard} (count, index)" if shard else ""))
    bound = pass_windows_bound([span[2] for spans in sources for span in spans], info,
                               window_segments)
    order = TrainOrder.of(seed, cycle, block_windows(shuffle_segments, window_segments,
                                                     global_batch or batch_size, bound))
    plan = TrainPlan(tuple(map(tuple, sources)), order, layout, every)

    def make():
        return _shuffled_batches(plan, batch_size, _loaded(plan.parts(), workers), targets)

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
    parts = _parts(itertools.chain(*split_spans(data_dir, info, split, with_tags=False)), None,
                   layout)
    return Batches(lambda: _eval_batches(layout, batch_size, _loaded(parts, workers)),
                   prefetch)


def clip_labels(data_dir: str, split: str, info: DatasetInfo | None = None):
    """(clip_ids int64 (clips,), tags float32 (clips, num_tags)) of `split`,
    in split order; a split that holds another number of clips than
    dataset_info.json lists is a UserError."""
    info = info or load_info(data_dir)
    ids, tags = [], []
    for clip in _parsed(data_dir, info, split, with_tags=True):
        ids.append(clip["clip_id"])
        tags.append(clip["tags"])
    return (np.array(ids, np.int64),
            np.stack(tags) if tags else np.zeros((0, info.num_tags), np.float32))


def clip_paths(data_dir: str, split: str, info: DatasetInfo | None = None):
    """(clip_ids int64 (clips,), [path relative to the audio folder, ...])
    of `split`, in split order, as `reader.clip_paths`: their audio never
    decoded."""
    info = info or load_info(data_dir)
    ids, paths = [], []
    for clip in _parsed(data_dir, info, split, with_tags=False):
        ids.append(clip["clip_id"])
        paths.append(os.fsdecode(clip["path"]))
    return np.array(ids, np.int64), paths


def clips(data_dir: str, split: str, info: DatasetInfo | None = None,
          shard: tuple | None = None):
    """Yields every clip of `split` in split order as `reader.clip_dataset`
    (without tags) gives them: dict of `clip_id` (int64), `path` (bytes)
    and float32 `segments` (num_segments, *segment_shape), int16 scaled to
    [-1, 1]. `shard=(count, index)`: the shard files index, index + count,
    ... when there are at least `count`, else every count-th clip."""
    info = info or load_info(data_dir)
    for clip in _parsed(data_dir, info, split, with_tags=False, shard=shard):
        segments = clip["segments"]
        if segments.dtype == np.int16:
            segments = segments.astype(np.float32) / INT16_SCALE
        yield {"clip_id": np.int64(clip["clip_id"]), "path": bytes(clip["path"]),
               "segments": np.array(segments, np.float32)}


def _parsed(data_dir: str, info: DatasetInfo, split: str, with_tags: bool,
            shard: tuple | None = None):
    """Yields each record of `split` in split order parsed by
    `schema.parse_clip` (its segments a view of the record's bytes, not
    decoded; its tags `with_tags`), each shard checked against
    dataset_info.json first; `shard` as in `clips`."""
    layout = Layout.of(info, split, 1, with_tags=with_tags)
    paths = shard_paths(data_dir, info, split)
    count, index = shard or (1, 0)
    split_records(data_dir, info, split, with_tags)  # each shard checked
    whole_files = len(paths) >= count
    if whole_files:
        paths = paths[index::count]
    position = 0
    for path in paths:
        with ShardErrors(path, split), fileio.open_file(path, "rb") as file:
            for record in read_records(file):
                if whole_files or position % count == index:
                    yield layout.parse(record.data, path, record.offset)
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
    """A work item: clips ((path, data offset, length, framing), ...) to
    read, each record's framing checked against its shard's index's
    (`tfrecord.read_record`), and cut into windows. With `draws` (one a
    clip, `records.order`'s), training windows (k > 1: from the offset
    each clip's draw gives); without, every window of
    `eval_window_starts`."""

    clips: tuple
    draws: tuple | None
    layout: Layout


def read_part(part: Part):
    """(clip_ids int64 (clips,), windows int64 (clips,) each clip's count,
    tags float32 (clips, num_tags) or None, Chunks of each clip's windows'
    bytes (its (windows, *window) array in the storage dtype), offsets
    int64 (clips,) the segment each clip's training windows start from,
    as drawn)."""
    layout, k = part.layout, part.layout.window_segments
    ids, counts, tags, windows, offsets = [], [], [], [], []
    files = {}
    try:
        for i, (path, offset, length, framing) in enumerate(part.clips):
            with ShardErrors(path, layout.split):
                if path not in files:
                    files[path] = fileio.open_file(path, "rb")
                data = read_record(files[path], offset, length, framing)
            clip = layout.parse(data, path, offset)
            x = clip["segments"]  # (n, *segment_shape), a view of the record
            offset = 0
            if part.draws is None:
                x = eval_windows_of_clip(x, k)
            elif k > 1:
                offset = window_offset(part.draws[i], len(x), k)
                x = join_windows(x, k, offset)
            ids.append(clip["clip_id"])
            offsets.append(offset)
            counts.append(len(x))
            windows.append(memoryview(np.ascontiguousarray(x)).cast("B"))
            if layout.with_tags:
                tags.append(clip["tags"])
    finally:
        for file in files.values():
            file.close()
    return (np.array(ids, np.int64), np.array(counts, np.int64),
            np.stack(tags) if tags else None, Chunks(windows), np.array(offsets, np.int64))


def split_spans(data_dir: str, info: DatasetInfo, split: str, with_tags: bool = True) -> list:
    """Per shard of `split`, in order: ((path, data offset, length, framing
    bytes), ...) of its records (`shard_check.split_records`: from the
    shard's framing index, once a process, the shard checked against
    dataset_info.json, its clips' tags too `with_tags`); a split holding
    another number of clips than dataset_info.json lists is a UserError."""
    return [[(path, offset, length, index.framing_of(i))
             for i, (offset, length) in enumerate(index.spans())]
            for path, index in zip(shard_paths(data_dir, info, split),
                                   split_records(data_dir, info, split, with_tags))]


@dataclasses.dataclass(frozen=True)
class TrainPlan:
    """The endless stream of training work of one share of a split, in
    `order` (`records.order.TrainOrder`): pass p reads the `sources` (per
    shard file, its clips' (path, offset, length, framing)) in the pass's
    shard order, `order.cycle` of them side by side, keeping every
    count-th clip of them with `every` = (count, index); its clips are cut
    into parts of at most PART_BYTES of records, each clip with its offset
    draw."""

    sources: tuple
    order: TrainOrder
    layout: Layout
    every: tuple | None = None

    def pass_clips(self, index: int) -> list:
        shards = self.order.shards(index, len(self.sources))
        clips = interleave([self.sources[i] for i in shards], self.order.cycle)
        if self.every is not None:
            count, share = self.every
            clips = clips[share::count]
        return clips

    def parts(self):
        """Endless: the Parts of every pass in turn."""
        for pass_index in itertools.count():
            draws = self.order.clip_draws(pass_index) if self.layout.window_segments > 1 \
                else itertools.repeat(0)
            yield from _parts(self.pass_clips(pass_index), draws, self.layout)


def _parts(clips, draws, layout: Layout):
    """Parts of consecutive `clips` of at most PART_BYTES of records (at
    least one clip each); with `draws` (an iterator, one a clip), training
    parts that hold them."""
    part, size = [], 0
    for clip in clips:
        if part and size + clip[2] > PART_BYTES:
            yield _part(part, draws, layout)
            part, size = [], 0
        part.append(clip)
        size += clip[2]
    if part:
        yield _part(part, draws, layout)


def _part(clips: list, draws, layout: Layout) -> Part:
    return Part(tuple(clips), None if draws is None else tuple(
        itertools.islice(draws, len(clips))), layout)


def _loaded(parts, workers: int | None):
    """read_part(part) for each of `parts`, in order: read by `workers`
    processes (0: in this process)."""
    workers = default_workers() if workers is None else workers
    if workers <= 0:
        yield from map(read_part, parts)
        return
    with WorkerPool(read_part, workers) as pool:
        yield from pool.map(iter(parts))


def _shuffled_batches(plan: TrainPlan, batch_size: int, results, targets=None):
    """Training batches of the parts' windows: the stream of windows cut
    into blocks of `plan.order.block` windows, each block's windows in
    the order drawn for it (`TrainOrder.block_order`), cut into batches;
    with `targets`, each window's soft target in place of its tags."""
    layout = plan.layout
    block = _Rows(layout.window_shape, np.dtype(layout.dtype),
                  layout.num_tags if layout.with_tags or targets else 0,
                  per_window=targets is not None)
    if targets is not None:
        results = _with_window_targets(results, targets, layout.window_segments)
    with contextlib.closing(results):
        yield from _shuffled(block, plan.order, batch_size, results)


def _with_window_targets(results, targets, k: int):
    """The parts' results, each clip's tags replaced by its windows' soft
    targets (windows, num_tags): the means of their segments' targets."""
    with contextlib.closing(results):
        for ids, counts, _, chunks, offsets in results:
            rows = [window_means(targets(clip_id), k, offset)
                    for clip_id, offset in zip(ids, offsets)]
            if [len(r) for r in rows] != counts.tolist():
                raise ValueError(f"the soft targets of clips {ids.tolist()} cover other "
                                 "segments than their records hold")
            yield ids, counts, np.concatenate(rows), chunks, offsets


def _shuffled(rows, order: TrainOrder, batch_size: int, results):
    size, block_index = order.block, 0
    for _, counts, tags, chunks, _ in results:
        rows.add(counts, tags, chunks.parts)
        while rows.filled >= size:
            drawn = order.block_order(block_index, size)
            for start in range(0, size // batch_size * batch_size, batch_size):
                yield rows.take(drawn[start:start + batch_size])
            rows.keep(np.arange(size, rows.filled))
            block_index += 1


class _Rows:
    """A growing block of windows (and their tags: one row a clip, or with
    `per_window` one a window), filled from the parts' results, taken from
    in any order."""

    def __init__(self, shape: tuple, dtype, num_tags: int, per_window: bool = False):
        self.x = np.empty((0, *shape), dtype)
        self.y = np.empty((0, num_tags), np.float32) if num_tags else None
        self.per_window = per_window
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
            self.y[self.filled:end] = tags if self.per_window else np.repeat(tags, counts,
                                                                             axis=0)
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
        for ids, counts, _, chunks, _ in results:
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
