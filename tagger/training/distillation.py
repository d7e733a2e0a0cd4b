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
best tags (`agreement.teacher_tags`). Every read checks the clips' ids:
a training clip the targets lack, or a clip of validation or test whose
place holds another's targets, is one line (`target_errors`). The
schedules, augmentation and rounds are the usual ones (`run.train`,
`rounds.train_rounds`).

Measuring a student against its teachers (eval.py --against):
`evaluation.against`.
"""

from __future__ import annotations

import numpy as np

from tagger.config import TrainConfig
from tagger.errors import UserError
from tagger.evaluation.against import MISSING, student_info
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
        """`targets(clip) -> (segments, tags)` for the training pipeline
        (`records.reader.train_dataset`): the clip's segment targets, found
        by its clip id in a table made once (`segment_lookup`), its file
        written at `path` (in the run's folder)."""
        if self._lookup is None:
            self._lookup = segment_lookup(self.targets.split("train"), path)
            self.targets.forget("train")  # the table holds them now
        return self._lookup


TABLE_FILE = "train_targets.tsv"


def segment_lookup(targets, path: str):
    """`lookup(clip) -> (segments, tags)` float32: the rows of `targets` (a
    SplitTargets) of the clip's id, from a table of them written at `path`
    (`row_table`: the pipeline's graph holds the file's name, not the
    targets). A clip id that the table lacks fails the pipeline with
    MISSING and the id (`target_errors`)."""
    import tensorflow as tf

    if len(np.unique(targets.clip_ids)) != len(targets.clip_ids):
        raise UserError("the training records hold several clips with one clip id; the "
                        "teachers' targets are found by clip id: rebuild the records")
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


def setup(config: TrainConfig, info: DatasetInfo, strategy=None,
          log=print) -> Distillation | None:
    """A Distillation for a run with teachers (None without); the targets
    of the splits it reads are scored now where they were not stored before,
    by the chief of a multi-worker `strategy` alone (`strategy.chief_first`)."""
    if not config.distillation.teachers:
        return None
    if config.noisy_student.teacher:
        raise UserError("distillation and noisy-student training do not combine: the "
                        "records without labels give no labelled half")
    from tagger.training import strategy as strategies

    distillation = Distillation(config, info, log)
    test = config.evaluate_test and info.splits.get("test", {}).get("clips")

    def score():
        for split in ("train", "val", "test") if test else ("train", "val"):
            distillation.targets.split(split)

    strategies.chief_first(strategy, score)
    return distillation


def loss_of(config: TrainConfig):
    """The per-window loss `(targets, logits) -> (batch,)` of a distillation
    run, T^2 * BCE(sigmoid(logit(targets) / T), sigmoid(logits / T)) at
    temperature T (plain BCE on the targets at T = 1), on the student's
    logits (`from_logits`: the training step passes the `tags` layer's
    logits, not its scores), so a saturated student still has a gradient;
    None (the usual BCE on the scores) without teachers."""
    if not config.distillation.teachers:
        return None
    import tensorflow as tf

    temperature = config.distillation.temperature

    def loss(targets, logits):
        t = tf.clip_by_value(targets, EPSILON, 1 - EPSILON)
        soft = tf.sigmoid((tf.math.log(t) - tf.math.log1p(-t)) / temperature)
        bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=soft, logits=logits / temperature)
        return temperature ** 2 * tf.reduce_mean(bce, axis=-1)

    loss.from_logits = True
    return loss
