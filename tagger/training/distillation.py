"""Distillation: a student of any family learns trained taggers' (teachers')
soft targets on records without labels, and is measured against them.

Training: the teachers' targets for every segment of the records
(`teacher_targets`, computed once and stored beside the records) take the
place of the labels. The student learns the teachers' tags (their shared
tags for several), so the run sees the records with those tags
(`Distillation.info`); a training window's target is the mean of its
segments' targets, and the loss is binary cross-entropy on these soft
targets, with a temperature T != 1 that of the softened scores,
T^2 * BCE(sigmoid(z_teacher / T), sigmoid(z_student / T)) (z: logits).
Validation and test figures are taken against the teachers' clip targets
(the mean over the clip's segments), the AUCs against each clip's five
best tags (`agreement.teacher_tags`). The
schedules, augmentation and rounds are the usual ones (`run.train`,
`rounds.train_rounds`).

Measuring (`evaluate_against`, eval.py --against): the student's clip
scores against the teachers' on a split it never saw, with
`evaluation.agreement`'s figures; where the records hold labels of some of
the student's tags, the usual figures on those tags too.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tagger.config import TrainConfig
from tagger.errors import UserError
from tagger.evaluation.metrics import DEFAULT_BOOTSTRAP
from tagger.records.info import DatasetInfo
from tagger.training.teacher_targets import TeacherTargets, require_raw

EPSILON = 1e-7  # scores are clipped to [EPSILON, 1 - EPSILON] before their logits


def student_info(info: DatasetInfo, tag_names) -> DatasetInfo:
    """The records' dataset_info as a student of these tags sees them."""
    return dataclasses.replace(info, tag_names=tuple(tag_names), num_tags=len(tag_names))


class Distillation:
    """The distillation parts of a training run (see tagger.training.run)."""

    def __init__(self, config: TrainConfig, info: DatasetInfo, log=print):
        require_raw(info, config.data_dir)
        self.targets = TeacherTargets(config.distillation.teachers, config.data_dir, info,
                                      config.progress, log)
        self.info = student_info(info, self.targets.tag_names)
        self._lookup = None

    def clip_targets(self, split: str) -> tuple:
        """(clip ids, (clips, tags) targets) of `split`, in split order."""
        targets = self.targets.split(split)
        return targets.clip_ids, targets.clip_means()

    def train_targets(self):
        """`targets(clip) -> (segments, tags)` for the training pipeline
        (`records.reader.train_dataset`): the clip's segment targets, found
        by its clip id in a table made once."""
        if self._lookup is None:
            self._lookup = _segment_lookup(self.targets.split("train"))
        return self._lookup


def _segment_lookup(targets):
    import tensorflow as tf

    if len(np.unique(targets.clip_ids)) != len(targets.clip_ids):
        raise UserError("the training records hold several clips with one clip id; the "
                        "teachers' targets are found by clip id: rebuild the records")
    table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(
        tf.constant(targets.clip_ids, tf.int64),
        tf.range(len(targets.clip_ids), dtype=tf.int64)), default_value=-1)
    offsets = tf.constant(targets.offsets, tf.int64)
    values = tf.constant(targets.values, tf.float32)

    def lookup(clip):
        row = table.lookup(clip["clip_id"])
        return values[offsets[row]:offsets[row + 1]]  # (segments, tags)

    return lookup


def setup(config: TrainConfig, info: DatasetInfo, log=print) -> Distillation | None:
    """A Distillation for a run with teachers (None without); the targets
    of the splits it reads are scored now where they were not stored before."""
    if not config.distillation.teachers:
        return None
    if config.noisy_student.teacher:
        raise UserError("distillation and noisy-student training do not combine: the "
                        "records without labels give no labelled half")
    distillation = Distillation(config, info, log)
    test = config.evaluate_test and info.splits.get("test", {}).get("clips")
    for split in ("train", "val", "test") if test else ("train", "val"):
        distillation.targets.split(split)
    return distillation


def loss_of(config: TrainConfig):
    """The per-window loss `(targets, scores) -> (batch,)` of a distillation
    run with a temperature other than 1; None (plain BCE) otherwise."""
    temperature = config.distillation.temperature
    if not config.distillation.teachers or temperature == 1:
        return None
    import keras
    import tensorflow as tf

    def softened(p):
        p = tf.clip_by_value(p, EPSILON, 1 - EPSILON)
        return tf.sigmoid((tf.math.log(p) - tf.math.log1p(-p)) / temperature)

    def loss(targets, scores):
        return temperature ** 2 * keras.losses.binary_crossentropy(softened(targets),
                                                                   softened(scores))

    return loss


@dataclasses.dataclass(frozen=True)
class TeacherEvaluation:
    """A student measured against its teachers on a split (eval.py --against)."""

    model_path: str
    teachers: tuple
    split: str
    agreement: object  # evaluation.agreement.Agreement
    predictions: object  # evaluation.predict.ClipPredictions, labels: the teachers' scores
    labelled: object = None  # TagMetrics against the records' labels, or None
    dropped: str | None = None

    @property
    def metrics(self):
        return self.agreement.metrics

    def as_dict(self) -> dict:
        return {"model": self.model_path, "against": list(self.teachers),
                "split": self.split, "clips": int(len(self.predictions.clip_ids)),
                "windows": self.predictions.windows,
                "loss": self.predictions.window_loss, "dropped_tags": self.dropped,
                **self.agreement.as_dict(),
                "labelled": self.labelled.as_dict() if self.labelled else None}

    def report_lines(self) -> list:
        from tagger.evaluation.agreement import agreement_lines

        p = self.predictions
        lines = [f"{self.split}: {len(p.clip_ids)} clips, {p.windows} windows; the student "
                 f"against {', '.join(self.teachers)} on {p.scores.shape[1]} tags",
                 f"BCE of the student's windows on the teacher clip scores "
                 f"{p.window_loss:.4f}",
                 *agreement_lines(self.agreement)]
        if self.labelled is not None:
            m = self.labelled
            lines.append(f"against the records' labels: macro ROC-AUC {m.roc_auc:.4f}   "
                         f"macro PR-AUC {m.pr_auc:.4f}   over {len(m.per_tag)} tags")
        return lines


def evaluate_against(model_path: str, teachers, data_dir: str, split: str = "test",
                     batch_size: int = 32, progress: bool = False,
                     bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0,
                     top_k: int | None = None, threshold: float | None = None,
                     log=print) -> TeacherEvaluation:
    """The student at `model_path` against `teachers` on `split` (module
    docstring; `top_k` and `threshold` choose the teachers' tags as
    `agreement.teacher_tags` does); the teachers' targets are scored first
    where not stored."""
    from tagger.evaluation.agreement import agreement
    from tagger.evaluation.metrics import bootstrap_intervals, tag_metrics
    from tagger.evaluation.predict import ClipPredictor
    from tagger.inference.common import tag_names_of
    from tagger.models.saved import load_tagger
    from tagger.records.info import is_labelled, load_info
    from tagger.records.model_fit import window_segments_for
    from tagger.records.reader import clip_labels

    info = load_info(data_dir)
    if split not in info.splits:
        raise UserError(f"split {split!r} is not in {data_dir!r}; available: "
                        f"{', '.join(info.splits)}")
    require_raw(info, data_dir)
    model, model_info = load_tagger(model_path)
    tags, warning = tag_names_of(model, model_info)
    if warning:
        raise UserError(f"the student {model_path!r} names no tags ({warning}); its tags "
                        "cannot be mapped to the teachers'")
    # the student's rate, segment and window must fit the records
    window = window_segments_for(model, model_info, student_info(info, tags))
    targets = TeacherTargets(teachers, data_dir, info, progress, log, tags=tags)
    teacher_scores = targets.split(split)
    clip_ids, scores = teacher_scores.clip_ids, teacher_scores.clip_means()
    shared = targets.tag_names
    predictions = ClipPredictor(model)(
        data_dir, split, window, batch_size, student_info(info, shared), progress=progress,
        columns=targets.indexes[-1], labels=(clip_ids, scores))
    result = agreement(predictions.scores, predictions.labels, shared, top_k, threshold,
                       bootstrap=bootstrap, seed=seed)
    labelled = None
    known = [t for t in shared if t in info.tag_names]
    if is_labelled(info, split) and known:
        _, labels = clip_labels(data_dir, split, info)
        y = labels[:, [info.tag_names.index(t) for t in known]]
        s = predictions.scores[:, [shared.index(t) for t in known]]
        labelled = tag_metrics(y, s, known)
        if bootstrap > 0 and len(labelled.per_tag):
            labelled = dataclasses.replace(labelled, intervals=bootstrap_intervals(
                y, s, bootstrap, seed))
    return TeacherEvaluation(model_path, tuple(teachers), split, result, predictions,
                             labelled, targets.dropped)
