"""Distillation: a student of any family learns trained taggers' (teachers')
soft targets on records without labels, and is measured against them.

Training: the teachers' targets for every segment of the records
(`teacher_targets`, computed once and stored beside the records) take the
place of the labels. The student learns the teachers' tags (their shared
tags for several), so the run sees the records with those tags
(`Distillation.info`); a training window's target is the mean of its
segments' targets (found by clip id in a table read from a file,
`segment_lookup`), and the loss is binary cross-entropy on these soft
targets, with a temperature T != 1 that of the softened scores,
T^2 * BCE(sigmoid(z_teacher / T), sigmoid(z_student / T)) (z: logits; the
student's come from its `tags` layer, not back from its scores).
Validation and test figures are taken against the teachers' clip targets
(the mean over the clip's segments), the AUCs against each clip's five
best tags (`agreement.teacher_tags`). The targets reach the training
batches by clip id, in the form of the reader that serves them: a lookup
in tf.data's graph (`segment_lookup`) or NumPy rows for the
TensorFlow-free reader (`SegmentRows`); the loss is written in keras.ops,
one for every backend (`SoftTargetLoss`). Every read checks the clips' ids:
a training clip the targets lack, or a clip of validation or test whose
place holds another's targets, is one line (`target_errors`). The
schedules, augmentation and rounds are the usual ones (`run.train`,
`rounds.train_rounds`).

Measuring a student against its teachers (eval.py --against):
`evaluation.against`.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from tagger.config import TrainConfig
from tagger.errors import UserError
from tagger.evaluation.against import MISSING, LackingTargets, student_info
from tagger.records.info import DatasetInfo, require_raw
from tagger.training import row_table
from tagger.training.teacher_targets import TeacherTargets

EPSILON = 1e-7  # targets are clipped to [EPSILON, 1 - EPSILON] before their logits


class Distillation:
    """The distillation parts of a training run (see tagger.training.run)."""

    def __init__(self, config: TrainConfig, info: DatasetInfo, log=print):
        require_raw(info, config.data_dir, "distillation (--distil)")
        self.targets = TeacherTargets(config.distillation.teachers, config.data_dir, info,
                                      config.progress, log)
        self.info = student_info(info, self.targets.tag_names)
        self._lookup = None

    def clip_targets(self, split: str) -> tuple:
        """(clip ids, (clips, tags) targets) of `split`, in split order."""
        targets = self.targets.split(split)
        return targets.clip_ids, targets.clip_means()

    def train_targets(self, path: str):
        """The clip's segment targets (segments, tags), found by its clip id,
        for the reader that serves the training batches, made once: where
        tf.data reads them, `targets(clip)` in its pipeline
        (`records.reader.train_dataset`) from a table whose file is written
        at `path` (in the run's folder, `segment_lookup`); else
        `targets(clip_id)` in NumPy (`SegmentRows`, for
        `records.plain_reader.train_batches`)."""
        from tagger.records.batches import uses_tf_data

        if self._lookup is None:
            train = self.targets.split("train")
            self._lookup = segment_lookup(train, path) if uses_tf_data() \
                else SegmentRows(train)
            self.targets.forget("train")  # the table holds them now
        return self._lookup


TABLE_FILE = "train_targets.tsv"


def check_unique(clip_ids) -> None:
    """Clip ids the targets are found by: each once."""
    if len(np.unique(clip_ids)) != len(clip_ids):
        raise UserError("the training records hold several clips with one clip id; the "
                        "teachers' targets are found by clip id: rebuild the records")


class SegmentRows:
    """`rows(clip_id) -> (segments, tags)` float32: the rows of `targets` (a
    SplitTargets) of the clip's id, in NumPy; a clip id they lack is a
    LackingTargets (`evaluation.against.target_errors`)."""

    def __init__(self, targets):
        check_unique(targets.clip_ids)
        self._order = np.argsort(targets.clip_ids, kind="stable")
        self._ids = targets.clip_ids[self._order]
        self._offsets = targets.offsets
        self._values = targets.values

    def __call__(self, clip_id):
        at = int(np.searchsorted(self._ids, clip_id))
        if at == len(self._ids) or self._ids[at] != clip_id:
            raise LackingTargets(int(clip_id))
        i = self._order[at]
        return self._values[self._offsets[i]:self._offsets[i + 1]]


def segment_lookup(targets, path: str):
    """`lookup(clip) -> (segments, tags)` float32: the rows of `targets` (a
    SplitTargets) of the clip's id, from a table of them written at `path`
    (`row_table`: the pipeline's graph holds the file's name, not the
    targets). A clip id that the table lacks fails the pipeline with
    MISSING and the id (`target_errors`)."""
    import tensorflow as tf

    check_unique(targets.clip_ids)
    offsets, ids = targets.offsets, targets.clip_ids
    row_table.write_table(path, ((ids[i], targets.values[offsets[i]:offsets[i + 1]])
                                 for i in range(len(ids))), "the training targets' table")
    table = row_table.read_table(path)
    tags = targets.values.shape[1]

    def lookup(clip):
        text = table.lookup(clip["clip_id"])
        found = tf.debugging.Assert(tf.strings.length(text) > 0, [tf.strings.join(
            [MISSING, tf.strings.as_string(clip["clip_id"])])])
        with tf.control_dependencies([found]):
            rows = row_table.values(text)
        return tf.reshape(rows, [-1, tags])  # (segments, tags)

    return lookup


def setup(config: TrainConfig, info: DatasetInfo, backend=None,
          log=print) -> Distillation | None:
    """A Distillation for a run with teachers (None without); the targets
    of the splits it reads are scored now where they were not stored before,
    by the chief of the training `backend`'s workers or hosts alone
    (`backend.chief_first`; without a backend, here)."""
    if not config.distillation.teachers:
        return None
    if config.noisy_student.teacher:
        raise UserError("distillation and noisy-student training do not combine: the "
                        "records without labels give no labelled half")
    distillation = Distillation(config, info, log)
    test = config.evaluate_test and info.splits.get("test", {}).get("clips")

    def score():
        for split in ("train", "val", "test") if test else ("train", "val"):
            distillation.targets.split(split)

    if backend is None:
        score()
    else:
        backend.chief_first(score)
    return distillation


def tags_layer(model):
    """`model`'s last layer, `tags`, a sigmoid Dense: the layer whose logits
    a distillation's loss takes (a ValueError for another model)."""
    import keras

    tags = model.get_layer("tags")
    if model.outputs[0] is not tags.output or tags.activation is not keras.activations.sigmoid:
        raise ValueError(f"model {model.name!r} does not end in a sigmoid Dense named tags")
    return tags


def loss_of(config: TrainConfig):
    """The per-window loss of a distillation run (`SoftTargetLoss` at its
    temperature); None (the usual BCE on the scores) without teachers."""
    if not config.distillation.teachers:
        return None
    return SoftTargetLoss(config.distillation.temperature)


@dataclasses.dataclass(frozen=True)
class SoftTargetLoss:
    """`(targets, logits) -> (batch,)`: T^2 * BCE(sigmoid(logit(targets) / T),
    sigmoid(logits / T)) at temperature T (plain BCE on the targets at
    T = 1; Hinton et al. 2015), on the student's logits (`from_logits`:
    the training step passes the `tags` layer's logits, not its scores),
    so a saturated student still has a gradient. In keras.ops: the same
    loss in every backend's step."""

    temperature: float = 1.0
    from_logits: ClassVar[bool] = True

    def __call__(self, targets, logits):
        from keras import ops

        t = ops.clip(targets, EPSILON, 1 - EPSILON)
        soft = ops.sigmoid((ops.log(t) - ops.log1p(-t)) / self.temperature)
        bce = ops.binary_crossentropy(soft, logits / self.temperature, from_logits=True)
        return self.temperature ** 2 * ops.mean(bce, axis=-1)
