"""Records as NumPy batches, for a Keras backend other than TensorFlow: read
by tf.data where TensorFlow is installed (kept off the accelerators,
`backends.tensorflow_for_input`), else by the TensorFlow-free reader
(`plain_reader`). Both give the same windows: the same window starts,
shuffled blocks and padding, in an order each fixes by its seed."""

from __future__ import annotations

from tagger import backends
from tagger.runtime import tensorflow_installed


def _tensorflow():
    return backends.tensorflow_for_input()


def reader_name() -> str:
    """Which reader serves the batches here: tf.data or the plain reader."""
    return "tf.data" if uses_tf_data() else "the TensorFlow-free reader"


def train_batches(data_dir: str, batch_size: int, info=None, window_segments: int = 1,
                  shuffle_segments: int = 2000, seed: int | None = None,
                  shard: tuple | None = None, num_read_threads: int | None = None,
                  global_batch: int | None = None, split: str = "train",
                  with_tags: bool = True, targets=None):
    """An endless iterator of (windows in their storage dtype, tags float32)
    NumPy batches of `split`, in the order of `records.order` whichever
    reader serves them (`reader.train_dataset`'s): `(windows,)` without
    `with_tags`, the tags never read; with `targets`, each window's soft
    target in place of its tags, `targets` in the form of the reader that
    serves them (`uses_tf_data`: `targets(clip)` in tf.data's graph, else
    `targets(clip_id)` in NumPy). The plain reader's has `close()`, which
    stops its workers."""
    if _tensorflow() is not None:
        from tagger.records import reader

        batches = reader.train_dataset(
            data_dir, batch_size, split=split, window_segments=window_segments, info=info,
            shuffle_segments=shuffle_segments, seed=seed, shard=shard,
            num_read_threads=num_read_threads, with_tags=with_tags, as_stored=True,
            targets=targets, global_batch=global_batch).as_numpy_iterator()
        return batches if with_tags else ((x,) for x in batches)
    from tagger.records import plain_reader
    from tagger.records.order import READ_CYCLE

    return plain_reader.train_batches(data_dir, batch_size, split=split,
                                      window_segments=window_segments, info=info,
                                      shuffle_segments=shuffle_segments, seed=seed,
                                      shard=shard, with_tags=with_tags,
                                      cycle=num_read_threads or READ_CYCLE,
                                      global_batch=global_batch, targets=targets)


def uses_tf_data() -> bool:
    """Whether tf.data serves the batches here (TensorFlow is installed),
    not the TensorFlow-free reader."""
    return tensorflow_installed()


def eval_batches(data_dir: str, split: str, window_segments: int, batch_size: int, info=None):
    """(windows float32, clips) NumPy batches covering every window of
    every clip of `split`, the last padded to `batch_size` (clips: dict of
    int64 `clip`, `clip_id`, `windows`; -1 in the padding)."""
    if _tensorflow() is not None:
        from tagger.records.reader import padded_eval_windows

        return padded_eval_windows(data_dir, split, window_segments, batch_size,
                                   info).as_numpy_iterator()
    from tagger.records import plain_reader

    return plain_reader.eval_batches(data_dir, split, window_segments, batch_size, info=info)


def clip_labels(data_dir: str, split: str, info=None):
    """(clip ids, tags) of `split` (`reader.clip_labels`)."""
    if _tensorflow() is not None:
        from tagger.records import reader

        return reader.clip_labels(data_dir, split, info)
    from tagger.records import plain_reader

    return plain_reader.clip_labels(data_dir, split, info)


def shard_errors(data_dir: str, split: str, info=None):
    """The reader's context that turns a damaged shard into one UserError."""
    if _tensorflow() is not None:
        from tagger.records import reader

        return reader.shard_errors(data_dir, split, info)
    import contextlib

    return contextlib.nullcontext()  # the plain reader names the shard itself


def clips(data_dir: str, split: str, info=None, shard: tuple | None = None):
    """Every clip of `split` in order, as NumPy dicts of `clip_id`, `path`
    and float32 `segments` (`reader.clip_dataset` without tags)."""
    if _tensorflow() is not None:
        from tagger.records import reader

        return reader.clip_dataset(data_dir, split, info, shard=shard,
                                   with_tags=False).as_numpy_iterator()
    from tagger.records import plain_reader

    return plain_reader.clips(data_dir, split, info, shard=shard)


def clip_paths(data_dir: str, split: str, info=None):
    """(clip ids, [path relative to the audio folder, ...]) of `split`, in
    order, the audio not decoded."""
    if _tensorflow() is not None:
        from tagger.records import reader

        return reader.clip_paths(data_dir, split, info)
    from tagger.records import plain_reader

    return plain_reader.clip_paths(data_dir, split, info)
