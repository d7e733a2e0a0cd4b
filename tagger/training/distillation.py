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

Measuring (`evaluate_against`, eval.py --against): the student's clip
scores against the teachers' on a split it never saw, with
`evaluation.agreement`'s figures; where the records hold labels of some of
the student's tags, the usual figures on those tags too.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import re
import tempfile

import numpy as np

from tagger.config import TrainConfig, join_path
from tagger.errors import UserError
from tagger.evaluation.metrics import DEFAULT_BOOTSTRAP
from tagger.records.info import DatasetInfo
from tagger.training.teacher_targets import TARGETS_DIR, TeacherTargets, require_raw

EPSILON = 1e-7  # targets are clipped to [EPSILON, 1 - EPSILON] before their logits


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
        self._table_folder = None

    def clip_targets(self, split: str) -> tuple:
        """(clip ids, (clips, tags) targets) of `split`, in split order."""
        targets = self.targets.split(split)
        return targets.clip_ids, targets.clip_means()

    def train_targets(self):
        """`targets(clip) -> (segments, tags)` for the training pipeline
        (`records.reader.train_dataset`): the clip's segment targets, found
        by its clip id in a table made once (`segment_lookup`, its file in
        a temporary folder removed with this object)."""
        if self._lookup is None:
            self._table_folder = tempfile.TemporaryDirectory(prefix="tagger-targets-")
            self._lookup = segment_lookup(self.targets.split("train"),
                                          self._table_folder.name)
            self.targets.forget("train")  # the table holds them now
        return self._lookup


TABLE_FILE = "train_targets.tsv"


def segment_lookup(targets, folder: str):
    """`lookup(clip) -> (segments, tags)` float32: the rows of `targets` (a
    SplitTargets) of the clip's id. They are written to `folder` as a table,
    one clip a line (its id, a tab, its rows' float32 bytes in web-safe
    base64), which a StaticHashTable reads (`tf.lookup.TextFileInitializer`):
    a tf.data graph that uses the lookup holds the file's name, not the
    targets, so it stays small when it is serialized (tf.data's rewrites,
    multi-worker input sharding; a graph beyond 2 GB cannot be). A clip id
    that the table lacks fails the pipeline with MISSING and the id
    (`target_errors`)."""
    import tensorflow as tf

    if len(np.unique(targets.clip_ids)) != len(targets.clip_ids):
        raise UserError("the training records hold several clips with one clip id; the "
                        "teachers' targets are found by clip id: rebuild the records")
    path = join_path(folder, TABLE_FILE)
    _write_table(path, targets)
    table = tf.lookup.StaticHashTable(tf.lookup.TextFileInitializer(
        path, tf.int64, 0, tf.string, 1, delimiter="\t"), default_value="")
    tags = targets.values.shape[1]

    def lookup(clip):
        text = table.lookup(clip["clip_id"])
        found = tf.debugging.Assert(tf.strings.length(text) > 0, [tf.strings.join(
            [MISSING, tf.strings.as_string(clip["clip_id"])])])
        with tf.control_dependencies([found]):
            rows = tf.io.decode_raw(tf.io.decode_base64(text), tf.float32)
        return tf.reshape(rows, [-1, tags])  # (segments, tags)

    return lookup


def _write_table(path: str, targets, clips_per_write: int = 10_000) -> None:
    """`segment_lookup`'s table of `targets` at local `path`, written in
    pieces (a million clips' lines are gigabytes)."""
    values = np.ascontiguousarray(targets.values, "<f4")
    offsets = targets.offsets.tolist()
    ids = targets.clip_ids.tolist()
    with open(path, "wb") as file:
        for start in range(0, len(ids), clips_per_write):
            file.write(b"".join(
                b"%d\t%s\n" % (ids[i], base64.urlsafe_b64encode(
                    values[offsets[i]:offsets[i + 1]].tobytes()))
                for i in range(start, min(start + clips_per_write, len(ids)))))


# what the training pipeline fails with on a clip the targets lack (`target_errors`)
MISSING = "no teacher targets for clip id "  # no quote: TensorFlow escapes it


@contextlib.contextmanager
def target_errors(data_dir: str):
    """Reading records with the teachers' targets inside this block: a clip
    id that the targets lack (training) or hold elsewhere in the split
    (validation, test, eval.py --against) is one UserError naming it."""
    import tensorflow as tf

    from tagger.evaluation.predict import ClipMismatch

    folder = join_path(data_dir, TARGETS_DIR)
    again = "delete that folder to score the records again"
    try:
        yield
    except ClipMismatch as error:
        raise UserError(f"{error}: the teachers' targets in {folder} were made for other "
                        f"records; {again}") from None
    except tf.errors.InvalidArgumentError as error:
        lacking = re.search(re.escape(MISSING) + r"(-?\d+)", str(error))
        if lacking is None:
            raise
        raise UserError(f"the training records hold clip id {lacking[1]}, which the "
                        f"teachers' targets in {folder} lack: they were made for other "
                        f"records; {again}") from None


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
    with target_errors(data_dir):
        predictions = ClipPredictor(model)(
            data_dir, split, window, batch_size, student_info(info, shared),
            progress=progress, columns=targets.indexes[-1], labels=(clip_ids, scores))
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
