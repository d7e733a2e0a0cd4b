"""Clip-level prediction: the mean of the sigmoid outputs over a clip's windows."""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np
from tqdm import tqdm

from tagger import backends
from tagger.errors import UserError
from tagger.evaluation.metrics import window_crossentropy
from tagger.records import batches as record_batches
from tagger.records.info import DatasetInfo, load_info


@dataclasses.dataclass(frozen=True)
class ClipPredictions:
    clip_ids: np.ndarray  # (clips,)
    labels: np.ndarray  # (clips, tags) 0/1
    scores: np.ndarray  # (clips, tags) mean over windows
    window_loss: float  # mean BCE of every window against its clip's tags
    windows: int


class ClipPredictor:
    """Runs a model over every window of every clip of a split and averages
    the sigmoid outputs per clip.

    With a tf.distribute `strategy`, `batch_size` is the global batch; the
    last batch is padded to full size (padding is dropped afterwards) so
    every replica always gets the same static shape (TPU-friendly). The
    compiled step is made once and reused across calls. Under another Keras
    backend the windows come as NumPy batches (`records.batches`) and
    `scores(x) -> (batch, tags)` scores them (default: `jitted_scores`).
    """

    def __init__(self, model, strategy=None, jit_compile: bool = False, scores=None):
        self.model = model
        self.tensorflow = backends.current() == "tensorflow"
        if not self.tensorflow:
            score = scores or jitted_scores(model)
            self._predict_batch = lambda x, clips: (score(x), clips)
            return
        import tensorflow as tf

        self.strategy = strategy or tf.distribute.get_strategy()
        self.distributed = _distributes_prediction(self.strategy)
        self._predict_batch = _batch_predictor(model, self.strategy, self.distributed,
                                               jit_compile)

    def __call__(self, data_dir: str, split: str, window_segments: int,
                 batch_size: int = 32, info: DatasetInfo | None = None,
                 max_batches: int | None = None, progress: bool = False,
                 columns: list | None = None, labels: tuple | None = None) -> ClipPredictions:
        """`max_batches` limits the work: the clip that the last of them
        cuts is read to its end and the clips after it are left out, so
        every clip's figures are those of the whole split;
        `columns`: the model's output for each of the dataset's tags, when
        they come in another order (`tagger.records.model_fit.tag_order`);
        `labels`: (clip ids, (clips, tags)) in split order, in place of the
        records' tags (a teacher's soft targets); each clip's id is checked
        as it is read: another id there is a ClipMismatch."""
        info = info or load_info(data_dir)
        with record_batches.shard_errors(data_dir, split, info):
            return self._predict(data_dir, split, window_segments, batch_size, info,
                                 max_batches, progress, columns, labels)

    def _predict(self, data_dir, split, window_segments, batch_size, info, max_batches,
                 progress, columns=None, labels=None) -> ClipPredictions:
        clip_ids, labels = labels or record_batches.clip_labels(data_dir, split, info)
        if self.tensorflow:
            from tagger.records.reader import padded_eval_windows

            data = padded_eval_windows(data_dir, split, window_segments, batch_size, info)
            if self.distributed:
                data = self.strategy.experimental_distribute_dataset(data)
        else:  # NumPy batches, read by worker processes: closed when done with
            data = record_batches.eval_batches(data_dir, split, window_segments, batch_size,
                                               info)
        closing = contextlib.closing(data) if hasattr(data, "close") else contextlib.nullcontext()
        with closing:
            return self._scores(data, split, clip_ids, labels, max_batches, progress, columns)

    def _scores(self, data, split, clip_ids, labels, max_batches, progress,
                columns) -> ClipPredictions:
        """The ClipPredictions of the batches of `data` (see `__call__`)."""
        sums = np.zeros(labels.shape, np.float64)
        counts = np.zeros(len(labels), np.int64)  # windows read
        windows_of = np.zeros(len(labels), np.int64)  # windows in the clip
        losses = np.zeros(len(labels), np.float64)  # summed over the windows read
        last = -1  # the last clip that `max_batches` batches reach
        batches = tqdm(data, desc=f"predict {split}", unit="batch", disable=not progress)
        for read, (x, clips) in enumerate(batches):
            capped = max_batches is not None and read >= max_batches
            if capped and (last < 0 or counts[last] == windows_of[last]):
                break  # the clip the cap cut is read to its end, and no other
            scores, clips = self._predict_batch(x, clips)
            scores = np.asarray(scores, np.float64)
            index, ids, windows = (np.asarray(clips[key])
                                   for key in ("clip", "clip_id", "windows"))
            if columns is not None:
                scores = scores[:, columns]  # (batch, the dataset's tags)
            keep = (index >= 0) & ((index <= last) if capped else True)
            scores, index = scores[keep], index[keep]
            check_clip_ids(split, clip_ids, index, ids[keep])
            if not capped and len(index):
                last = max(last, int(index.max()))
            np.add.at(sums, index, scores)
            np.add.at(counts, index, 1)
            windows_of[index] = windows[keep]
            np.add.at(losses, index, window_crossentropy(labels[index], scores))
        seen = counts > 0
        mean_scores = sums[seen] / counts[seen, None]
        windows = int(counts.sum())
        loss = losses.sum() / windows if windows else float("nan")
        return ClipPredictions(clip_ids[seen], labels[seen],
                               mean_scores.astype(np.float32), float(loss), windows)


class ClipMismatch(UserError):
    """Labels (targets) given for a split whose clip ids are not the split's, in order."""


def check_clip_ids(split: str, clip_ids: np.ndarray, index: np.ndarray,
                   found: np.ndarray) -> None:
    """A ClipMismatch unless the clips at positions `index` of `split`,
    read with clip ids `found`, are those that `clip_ids` (the labels' clip
    ids, in split order) name there."""
    beyond = index >= len(clip_ids)
    if beyond.any():
        position = int(index[beyond][0])
        raise ClipMismatch(f"clip {position} of the {split} split is clip id "
                           f"{found[beyond][0]}, but the targets given hold "
                           f"{len(clip_ids)} clips")
    wrong = np.flatnonzero(clip_ids[index] != found)
    if len(wrong):
        position = int(index[wrong[0]])
        raise ClipMismatch(f"clip {position} of the {split} split is clip id "
                           f"{found[wrong[0]]}, but the targets given for it are of clip id "
                           f"{clip_ids[position]}")


def _distributes_prediction(strategy) -> bool:
    """Mirrored (several devices) and TPU strategies split batches over
    replicas; a multi-worker strategy predicts everything on each worker
    (workers would otherwise see different batch counts and stall)."""
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    return strategy.num_replicas_in_sync > 1 or isinstance(
        strategy, tf.distribute.TPUStrategy)


def _batch_predictor(model, strategy, distributed, jit_compile):
    import tensorflow as tf

    def step(x):
        return tf.cast(model(x, training=False), tf.float32)

    step = tf.function(step, jit_compile=jit_compile or None, reduce_retracing=True)
    if not distributed:
        return lambda x, clips: (step(x), clips)

    @tf.function
    def distributed(x, clips):
        scores = strategy.run(step, args=(x,))
        # one gather a field: gathered whole, a dict comes back as one replica's
        return strategy.gather(scores, axis=0), {
            key: strategy.gather(value, axis=0) for key, value in clips.items()}

    return distributed


def jitted_scores(model, put=None):
    """`scores(x) -> (batch, tags)` float32 NumPy: `model`'s inference call
    on NumPy windows `x` as float32, compiled by JAX once per batch shape
    (`models.jax_call`); `put(x)` places a batch on the devices."""
    from tagger.models.jax_call import jitted_call

    call = jitted_call(model, put)
    return lambda x: call(np.asarray(x, np.float32))
