"""Clip-level prediction: the mean of the sigmoid outputs over a clip's windows."""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from tagger.evaluation.metrics import binary_crossentropy
from tagger.records import reader
from tagger.records.info import DatasetInfo, load_info


@dataclasses.dataclass(frozen=True)
class ClipPredictions:
    clip_ids: np.ndarray  # (clips,)
    labels: np.ndarray  # (clips, tags) 0/1
    scores: np.ndarray  # (clips, tags) mean over windows
    window_loss: float  # mean BCE of every window against its clip's tags
    windows: int


def window_shape(info: DatasetInfo, window_segments: int) -> tuple:
    """Shape of one window of k segments: (k * L,) or (k * frames, n_mels)."""
    shape = list(info.segment_shape)
    shape[0] *= window_segments
    return tuple(shape)


class ClipPredictor:
    """Runs a model over every window of every clip of a split and averages
    the sigmoid outputs per clip.

    With a tf.distribute `strategy`, `batch_size` is the global batch; the
    last batch is padded to full size (padding is dropped afterwards) so
    every replica always gets the same static shape (TPU-friendly). The
    compiled step is made once and reused across calls.
    """

    def __init__(self, model, strategy=None, jit_compile: bool = False):
        self.model = model
        self.strategy = strategy or tf.distribute.get_strategy()
        self.distributed = _distributes_prediction(self.strategy)
        self._predict_batch = _batch_predictor(model, self.strategy, self.distributed,
                                               jit_compile)

    def __call__(self, data_dir: str, split: str, window_segments: int,
                 batch_size: int = 32, info: DatasetInfo | None = None,
                 max_batches: int | None = None, progress: bool = False,
                 columns: list | None = None, labels: tuple | None = None) -> ClipPredictions:
        """`max_batches` limits the work (clips never reached are left out);
        `columns`: the model's output for each of the dataset's tags, when
        they come in another order (`tagger.records.model_fit.tag_order`);
        `labels`: (clip ids, (clips, tags)) in split order, in place of the
        records' tags (a teacher's soft targets)."""
        info = info or load_info(data_dir)
        with reader.shard_errors(data_dir, split, info):
            return self._predict(data_dir, split, window_segments, batch_size, info,
                                 max_batches, progress, columns, labels)

    def _predict(self, data_dir, split, window_segments, batch_size, info, max_batches,
                 progress, columns=None, labels=None) -> ClipPredictions:
        data = _padded_windows(data_dir, split, window_segments, batch_size, info)
        if max_batches is not None:
            data = data.take(max_batches)
        if self.distributed:
            data = self.strategy.experimental_distribute_dataset(data)
        clip_ids, labels = labels or reader.clip_labels(data_dir, split, info)
        sums = np.zeros(labels.shape, np.float64)
        counts = np.zeros(len(labels), np.int64)
        loss_sum, windows = 0.0, 0
        batches = tqdm(data, desc=f"predict {split}", unit="batch", disable=not progress)
        for x, index in batches:
            scores, index = self._predict_batch(x, index)
            scores, index = np.asarray(scores, np.float64), np.asarray(index)
            if columns is not None:
                scores = scores[:, columns]  # (batch, the dataset's tags)
            keep = index >= 0
            scores, index = scores[keep], index[keep]
            np.add.at(sums, index, scores)
            np.add.at(counts, index, 1)
            if len(index):
                loss_sum += binary_crossentropy(labels[index], scores) * len(index)
                windows += len(index)
        seen = counts > 0
        mean_scores = sums[seen] / counts[seen, None]
        loss = loss_sum / windows if windows else float("nan")
        return ClipPredictions(clip_ids[seen], labels[seen],
                               mean_scores.astype(np.float32), float(loss), windows)


def _padded_windows(data_dir, split, window_segments, batch_size, info):
    windows = reader.eval_windows(data_dir, split, window_segments, info=info)
    shape = window_shape(info, window_segments)
    padding = tf.data.Dataset.from_tensors(
        (tf.zeros(shape, tf.float32), tf.constant(-1, tf.int64))).repeat(batch_size - 1)
    return windows.concatenate(padding).batch(batch_size, drop_remainder=True).prefetch(2)


def _distributes_prediction(strategy) -> bool:
    """Mirrored (several devices) and TPU strategies split batches over
    replicas; a multi-worker strategy predicts everything on each worker
    (workers would otherwise see different batch counts and stall)."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    return strategy.num_replicas_in_sync > 1 or isinstance(
        strategy, tf.distribute.TPUStrategy)


def _batch_predictor(model, strategy, distributed, jit_compile):
    def step(x):
        return tf.cast(model(x, training=False), tf.float32)

    step = tf.function(step, jit_compile=jit_compile or None, reduce_retracing=True)
    if not distributed:
        return lambda x, index: (step(x), index)

    @tf.function
    def distributed(x, index):
        scores = strategy.run(step, args=(x,))
        return strategy.gather(scores, axis=0), strategy.gather(index, axis=0)

    return distributed
