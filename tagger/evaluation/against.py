"""A student measured against its teachers (eval.py --against, Hinton et
al. 2015's distillation measured as Won et al. 2021 measure noisy
students): its clip scores against the teachers' clip targets (the mean
of each clip's segment targets) on a split it never saw, with
`agreement`'s figures; where the records hold labels of some of the
student's tags, the usual figures on those tags too. Every read checks
the clips' ids: a clip whose place holds another's targets, or a training
clip the targets lack, is one line (`target_errors`)."""

from __future__ import annotations

import contextlib
import dataclasses
import re
import sys

from tagger.config import join_path
from tagger.errors import UserError
from tagger.evaluation.metrics import DEFAULT_BOOTSTRAP
from tagger.records.info import DatasetInfo

TARGETS_DIR = "teacher_targets"  # beside the records: <records>/teacher_targets/<teacher>/


def student_info(info: DatasetInfo, tag_names) -> DatasetInfo:
    """The records' dataset_info as a student of these tags sees them."""
    return dataclasses.replace(info, tag_names=tuple(tag_names), num_tags=len(tag_names))


# what the training pipeline fails with on a clip the targets lack (`target_errors`)
MISSING = "no teacher targets for clip id "  # no quote: TensorFlow escapes it


class LackingTargets(Exception):
    """The teachers' targets hold no rows for a training clip (its id, the
    TensorFlow-free reader's form of tf.data's MISSING failure)."""

    def __init__(self, clip_id: int):
        super().__init__(f"{MISSING}{clip_id}")
        self.clip_id = clip_id


@contextlib.contextmanager
def target_errors(data_dir: str):
    """Reading records with the teachers' targets inside this block: a clip
    id that the targets lack (training, by either reader) or hold elsewhere
    in the split (validation, test, eval.py --against) is one UserError
    naming it."""
    from tagger.evaluation.predict import ClipMismatch

    folder = join_path(data_dir, TARGETS_DIR)
    again = "delete that folder to score the records again"

    def lacking(clip_id):
        return UserError(f"the training records hold clip id {clip_id}, which the "
                         f"teachers' targets in {folder} lack: they were made for other "
                         f"records; {again}")

    try:
        yield
    except ClipMismatch as error:
        raise UserError(f"{error}: the teachers' targets in {folder} were made for other "
                        f"records; {again}") from None
    except LackingTargets as error:
        raise lacking(error.clip_id) from None
    except Exception as error:
        tf = sys.modules.get("tensorflow")  # tf.data's failures: TensorFlow's own errors
        found = None
        if tf is not None and isinstance(error, tf.errors.InvalidArgumentError):
            found = re.search(re.escape(MISSING) + r"(-?\d+)", str(error))
        if found is None:
            raise
        raise lacking(found[1]) from None


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


def evaluate_against(model_path: str, teachers, data_dir: str, targets_for,
                     split: str = "test", batch_size: int = 32, progress: bool = False,
                     bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0,
                     top_k: int | None = None, threshold: float | None = None
                     ) -> TeacherEvaluation:
    """The student at `model_path` against `teachers` (their names) on
    `split` (module docstring; `top_k` and `threshold` choose the teachers'
    tags as `agreement.teacher_tags` does). `targets_for(student_tags)`:
    the teachers' targets on the records for those tags (a
    `training.teacher_targets.TeacherTargets`: its `tag_names`, `indexes`,
    `dropped` and `split(name)`, scored first where not stored)."""
    from tagger.evaluation.agreement import agreement
    from tagger.evaluation.metrics import bootstrap_intervals, tag_metrics
    from tagger.evaluation.predict import ClipPredictor
    from tagger.models.saved import load_tagger, tag_names_of
    from tagger.records.batches import clip_labels
    from tagger.records.info import is_labelled, load_info, require_raw
    from tagger.records.model_fit import window_segments_for

    info = load_info(data_dir)
    if split not in info.splits:
        raise UserError(f"split {split!r} is not in {data_dir!r}; available: "
                        f"{', '.join(info.splits)}")
    require_raw(info, data_dir, "eval.py --against")
    model, model_info = load_tagger(model_path)
    tags, warning = tag_names_of(model, model_info)
    if warning:
        raise UserError(f"the student {model_path!r} names no tags ({warning}); its tags "
                        "cannot be mapped to the teachers'")
    # the student's rate, segment and window must fit the records
    window = window_segments_for(model, model_info, student_info(info, tags))
    targets = targets_for(tags)
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
