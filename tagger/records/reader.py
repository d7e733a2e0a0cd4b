"""tf.data pipelines over the shards described by dataset_info.json.

Every element's features are float32: waveforms in [-1, 1] (int16 storage
scaled) or log-mel frames. A "window" is `window_segments` consecutive
segments of one clip joined in time: `(k * segment_length,)` for raw audio,
`(k * frames, n_mels)` for log-mel; k = 1 is the sample-level CNN's input.
"""

from __future__ import annotations

import contextlib
import os

import numpy as np
import tensorflow as tf

from tagger.config import join_path
from tagger.errors import UserError
from tagger.records.info import (
    DatasetInfo,
    clip_count_error,
    load_info,
    shard_paths,
    unreadable_shard,
)
from tagger.records.order import TrainOrder, block_windows
from tagger.records.schema import make_parser, to_float
from tagger.records.shard_check import split_records
from tagger.records.windows import (  # noqa: F401 (the readers' shared names, here too)
    DEFAULT_SHUFFLE_SEGMENTS,
    eval_window_starts,
    pass_windows_bound,
    train_windows_per_pass,
)

AUTOTUNE = tf.data.AUTOTUNE


def clip_dataset(data_dir: str, split: str, info: DatasetInfo | None = None,
                 shard: tuple | None = None, as_stored: bool = False,
                 with_tags: bool = True) -> tf.data.Dataset:
    """One element per clip, in the written order: dict(clip_id, path, tags
    (num_tags,), segments (num_segments, *segment_shape); float32, or the
    storage dtype with `as_stored`). `shard=(count, index)` keeps one input
    pipeline's share: whole shard files when there are enough of them, else
    every count-th clip. Without `with_tags` the elements have no `tags`
    (not parsed: unlabelled audio). Each shard is checked against
    dataset_info.json first (`shard_check`)."""
    info = info or load_info(data_dir)
    paths = checked_paths(data_dir, info, split, with_tags)
    if shard is not None:
        count, index = shard
        if len(paths) < count:  # too few shard files: every count-th clip
            return clip_dataset(data_dir, split, info, as_stored=as_stored,
                                with_tags=with_tags).shard(count, index)
        paths = paths[index::count]
    records = tf.data.TFRecordDataset(paths)
    return records.map(_parser(info, as_stored, with_tags), num_parallel_calls=AUTOTUNE,
                       deterministic=True)


def checked_paths(data_dir: str, info: DatasetInfo, split: str,
                  with_tags: bool = True) -> list:
    """The shard files of `split`, each checked against dataset_info.json
    (`shard_check.split_records`, once a process; the clips' tags where
    `with_tags`)."""
    split_records(data_dir, info, split, with_tags)
    return shard_paths(data_dir, info, split)


def _parser(info: DatasetInfo, as_stored: bool, with_tags: bool):
    return make_parser(info.num_tags, tuple(info.segment_shape), info.features["dtype"],
                       as_stored, with_tags)


def join_windows(segments: tf.Tensor, window_segments: int, offset=0) -> tf.Tensor:
    """(n, *shape) -> (m, k * shape[0], *shape[1:]) non-overlapping windows of
    k segments starting at `offset`; m = (n - offset) // k. A clip shorter
    than one window is zero-padded to one window."""
    k = window_segments
    shape = tf.shape(segments)
    n = shape[0]
    missing = tf.maximum(k - n, 0)
    padding = tf.concat([[[0, missing]], tf.zeros([tf.rank(segments) - 1, 2], tf.int32)], 0)
    segments = tf.pad(segments, padding)
    n = tf.maximum(n, k)
    offset = tf.minimum(offset, n - k)
    m = (n - offset) // k
    windows = segments[offset:offset + m * k]
    new_shape = tf.concat([[m, k * shape[1]], shape[2:]], 0)
    return tf.reshape(windows, new_shape)


def window_means(values: tf.Tensor, window_segments: int, offset=0) -> tf.Tensor:
    """(n, d) per-segment values -> (m, d), the mean over the segments of
    each of `join_windows`' windows (its zero padding left out)."""
    k = window_segments
    sums = tf.reshape(join_windows(values, k, offset), [-1, k, tf.shape(values)[1]])
    counts = join_windows(tf.ones_like(values[:, :1]), k, offset)  # (m, k)
    return tf.reduce_sum(sums, 1) / tf.reduce_sum(counts, 1, keepdims=True)


def train_dataset(data_dir: str, batch_size: int, split: str = "train",
                  window_segments: int = 1, info: DatasetInfo | None = None,
                  shuffle_segments: int = DEFAULT_SHUFFLE_SEGMENTS,
                  seed: int | None = None, repeat: bool = True,
                  num_read_threads: int | None = None,
                  shard: tuple | None = None, with_tags: bool = True,
                  as_stored: bool = False, targets=None,
                  global_batch: int | None = None) -> tf.data.Dataset:
    """(window, tags) batches for training in the order of `records.order`
    (the TensorFlow-free reader's, batch for batch): shards read side by
    side (`num_read_threads` of them, default `order.READ_CYCLE`), each
    clip's windows (a drawn offset per clip and pass), blocks of windows
    shuffled, repeated pass after pass. `global_batch` (default
    `batch_size`): the batch a block holds a whole number of, where each
    of several replicas takes a batch of its share in turn. Without
    `with_tags`: window batches alone, the tags never read (the
    unlabelled half of noisy-student training). With `as_stored` the
    windows keep their storage dtype (int16 records: int16, half the bytes
    of float32 on their way to an accelerator) and the consumer converts
    them with `schema.to_float`, as the training step does. `targets(clip)
    -> (segments, tags)`: each segment's soft target in place of the clip's
    tags (a window's is the mean of its segments'; the tags are not read).

    The order's draws (a pass's shard order, clips' offsets, a block's
    order) are NumPy's (`tf.numpy_function`), a few per block. Each block
    of windows is gathered (`rebatch`), its order drawn and cut into
    batches, and each batch gathered, as float32, straight from the block:
    windows are copied once into the block and once into their batch, and
    no per-window element goes through tf.data (an element-wise shuffle
    buffer copies each window twice more and pays tf.data's per-element
    cost per window)."""
    info = info or load_info(data_dir)
    k = window_segments
    paths = shard_paths(data_dir, info, split)
    indexes = split_records(data_dir, info, split, with_tags and targets is None)  # checked
    counts = [len(records) for records in indexes]
    every = None  # (count, index): a share of every count-th clip, with too few shard files
    if shard is not None:
        count, index = shard
        if len(paths) >= count:
            paths, indexes = paths[index::count], indexes[index::count]
            counts = counts[index::count]
        else:
            every = shard
            counts = [max(sum(counts) - index + count - 1, 0) // count]
    bound = pass_windows_bound(np.concatenate([i.lengths for i in indexes] or [[]]), info, k)
    order = TrainOrder.of(seed, num_read_threads,
                          block_windows(shuffle_segments, k, global_batch or batch_size, bound))
    if not sum(counts):  # each pass would be empty, endlessly
        raise UserError(f"the {split} split of {data_dir!r} holds no clips to train on"
                        + (f" in share {shard} (count, index)" if shard else ""))
    # int16 records stay int16 through shuffling and become float32 one
    # batch at a time.
    parse = _parser(info, True, with_tags and targets is None)
    names = tf.constant(paths)

    def one_pass(pass_index):
        shards = tf.numpy_function(order.shards, [pass_index, len(paths)], tf.int64,
                                   stateful=False)
        files = tf.data.Dataset.from_tensor_slices(tf.gather(names, shards))
        records = files.interleave(tf.data.TFRecordDataset, cycle_length=order.cycle,
                                   block_length=1, num_parallel_calls=AUTOTUNE,
                                   deterministic=True)
        if every is not None:
            records = records.shard(*every)
        clips = records.map(parse, num_parallel_calls=AUTOTUNE, deterministic=True)
        if k == 1:
            return clips
        draws = tf.data.Dataset.counter().map(lambda chunk: tf.numpy_function(
            order.offset_draws, [pass_index, chunk], tf.int64, stateful=False)).unbatch()
        return tf.data.Dataset.zip(clips, draws)

    passes = tf.data.Dataset.counter() if repeat else tf.data.Dataset.range(1)
    clips = passes.flat_map(one_pass)

    def windows(clip, draw=None):
        x = clip["segments"]  # window 1: the segments themselves, not copied
        y = targets(clip) if targets is not None else None  # (segments, tags)
        if k > 1:  # a drawn start, so every segment lands in some window over passes
            n = tf.shape(x, out_type=tf.int64)[0]
            offset = draw % (tf.maximum(n - n // k * k, 0) + 1)  # order.window_offset
            x = join_windows(x, k, tf.cast(offset, tf.int32))
            y = None if y is None else window_means(y, k, tf.cast(offset, tf.int32))
        if not with_tags:
            return (x,)
        return x, y if y is not None else tf.repeat(clip["tags"][None], tf.shape(x)[0], axis=0)

    data = clips.map(windows, num_parallel_calls=AUTOTUNE, deterministic=True)
    data = data.rebatch(order.block)  # (block, *window), the last of a finite pass shorter
    data = tf.data.Dataset.zip(data, tf.data.Dataset.counter())

    def batch_indices(block, block_index):
        n = tf.shape(block[0], out_type=tf.int64)[0]
        drawn = tf.numpy_function(order.block_order, [block_index, n], tf.int64,
                                  stateful=False)
        return block, tf.reshape(drawn[:n // batch_size * batch_size], [-1, batch_size])

    def batches(block, indices):  # the block, once per batch of it (not copied)
        blocks = tf.data.Dataset.from_tensors(block).repeat()
        return tf.data.Dataset.zip(blocks, tf.data.Dataset.from_tensor_slices(indices))

    def gather(block, indices):
        x, *tags = (tf.gather(t, indices) for t in block)
        x = x if as_stored else to_float(x)
        return (x, *tags) if tags else x

    # the next block is assembled while batches are gathered from this one
    data = data.map(batch_indices).prefetch(1).flat_map(batches)
    return data.map(gather, num_parallel_calls=AUTOTUNE, deterministic=True).prefetch(AUTOTUNE)


def eval_windows(data_dir: str, split: str, window_segments: int,
                 info: DatasetInfo | None = None) -> tf.data.Dataset:
    """(window, clip) pairs covering every clip of `split` (see
    `eval_window_starts`), clip a dict of int64: `clip` its position in the
    split, `clip_id`, and `windows`, how many windows the clip has."""
    info = info or load_info(data_dir)
    k = window_segments
    clips = clip_dataset(data_dir, split, info, with_tags=False)

    def windows(index, clip):
        x = _eval_windows_of_clip(clip["segments"], k)
        count = tf.shape(x)[0]
        return tf.data.Dataset.from_tensor_slices((x, {
            "clip": tf.fill([count], tf.cast(index, tf.int64)),
            "clip_id": tf.fill([count], clip["clip_id"]),
            "windows": tf.fill([count], tf.cast(count, tf.int64))}))

    return clips.enumerate().flat_map(windows)


def padded_eval_windows(data_dir: str, split: str, window_segments: int, batch_size: int,
                        info: DatasetInfo | None = None) -> tf.data.Dataset:
    """`eval_windows` in batches of `batch_size`,
    the last padded to full size with zero windows of clip -1 (so every
    replica of a strategy gets the same static shape)."""
    windows = eval_windows(data_dir, split, window_segments, info=info)
    info = info or load_info(data_dir)
    shape = [info.segment_shape[0] * window_segments, *info.segment_shape[1:]]
    nothing = tf.constant(-1, tf.int64)
    padding = tf.data.Dataset.from_tensors(
        (tf.zeros(shape, tf.float32), {"clip": nothing, "clip_id": nothing, "windows": nothing})
    ).repeat(batch_size - 1)
    return windows.concatenate(padding).batch(batch_size, drop_remainder=True).prefetch(2)


def _eval_windows_of_clip(segments: tf.Tensor, k: int) -> tf.Tensor:
    if k == 1:
        return segments
    aligned = join_windows(segments, k)
    n = tf.shape(segments)[0]
    last = join_windows(segments[tf.maximum(n - k, 0):], k)
    return tf.cond(tf.logical_and(n > k, n % k > 0),
                   lambda: tf.concat([aligned, last], 0), lambda: aligned)


def clip_labels(data_dir: str, split: str, info: DatasetInfo | None = None):
    """(clip_ids (clips,), tags (clips, num_tags)) of `split`, in split order,
    read without decoding the segments."""
    info = info or load_info(data_dir)
    from tagger.records.schema import feature_spec

    spec = {k: v for k, v in feature_spec(info.num_tags).items()
            if k in ("clip_id", "tags")}
    records = tf.data.TFRecordDataset(checked_paths(data_dir, info, split))
    parsed = records.map(lambda r: tf.io.parse_single_example(r, spec))
    ids, tags = [], []
    with shard_errors(data_dir, split, info):
        for example in parsed.batch(1024).as_numpy_iterator():
            ids.append(example["clip_id"])
            tags.append(example["tags"])
    expected = info.splits[split]["clips"]
    found = sum(len(i) for i in ids)
    if found != expected:  # a shard cut at a record boundary reads as a clean file
        raise clip_count_error(data_dir, split, found, expected)
    if not ids:
        return np.zeros((0,), np.int64), np.zeros((0, info.num_tags), np.float32)
    return np.concatenate(ids), np.concatenate(tags).astype(np.float32)


def clip_paths(data_dir: str, split: str, info: DatasetInfo | None = None):
    """(clip_ids (clips,), [path relative to the audio folder, ...]) of
    `split`, in split order, read without decoding the segments."""
    info = info or load_info(data_dir)
    spec = {"clip_id": tf.io.FixedLenFeature([], tf.int64),
            "path": tf.io.FixedLenFeature([], tf.string)}
    records = tf.data.TFRecordDataset(checked_paths(data_dir, info, split, with_tags=False))
    ids, paths = [], []
    with shard_errors(data_dir, split, info):
        for example in records.map(lambda r: tf.io.parse_single_example(r, spec)).batch(
                1024).as_numpy_iterator():
            ids.append(example["clip_id"])
            paths += [os.fsdecode(path) for path in example["path"]]
    return (np.concatenate(ids) if ids else np.zeros((0,), np.int64)), paths


@contextlib.contextmanager
def shard_errors(data_dir: str, split: str, info: DatasetInfo | None = None):
    """Reading `split` inside this block: a damaged (truncated, corrupted) or
    missing shard becomes one UserError naming the shard and how to rebuild
    it. tf.data's message does not say which file failed, so the split's
    shards are checked one by one (only when reading has failed)."""
    try:
        yield
    except (tf.errors.DataLossError, tf.errors.NotFoundError) as error:
        raise damaged_shard_error(data_dir, split, info, error) from None


def damaged_shard_error(data_dir: str, split: str, info: DatasetInfo | None,
                        error: Exception) -> UserError:
    """The UserError for a failed read of `split`: names the first shard that
    cannot be read to its end."""
    info = info or load_info(data_dir)
    for path in shard_paths(data_dir, info, split):
        problem = shard_problem(path)
        if problem:
            return unreadable_shard(path, split, problem)
    reason = _first_line(error)
    return UserError(f"reading the {split} split of {data_dir!r} failed ({reason}); "
                     "rebuild the dataset")


def shard_problem(path: str) -> str | None:
    """None for a TFRecord file whose every record reads back with a valid
    checksum; else what is wrong with it ("is missing", "is damaged (...)")."""
    if not tf.io.gfile.exists(path):
        return "is missing"
    try:
        tf.data.TFRecordDataset(path).reduce(np.int64(0), lambda n, _: n + 1)
    except (tf.errors.DataLossError, tf.errors.NotFoundError,
            tf.errors.InvalidArgumentError) as error:
        return f"is damaged ({_first_line(error)})"
    return None


def _first_line(error: Exception) -> str:
    """A TensorFlow error's message without its op and function decorations."""
    text = getattr(error, "message", None) or str(error)
    text = text.split("[Op:")[0]
    if text.startswith("{{function_node"):
        text = text.split("}}", 1)[-1]
    return (text.strip().splitlines() or [type(error).__name__])[0].rstrip("' ")


def split_audio_files(records_dir: str, audio_dir: str, split: str = "test",
                      count: int = 1) -> list[str]:
    """The audio files of the first `count` clips of a built split (-1:
    all; clips that decoded when the records were built; `audio_dir` is the
    dataset's audio folder), e.g. to map a few test clips."""
    info = load_info(records_dir)
    spec = {"path": tf.io.FixedLenFeature([], tf.string)}
    records = tf.data.TFRecordDataset(shard_paths(records_dir, info, split)).take(count)
    return [join_path(audio_dir, os.fsdecode(tf.io.parse_single_example(r, spec)["path"].numpy()))
            for r in records]
