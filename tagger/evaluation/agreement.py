"""How well a student ranks what its teacher ranks (numpy/sklearn, no TensorFlow).

On the same clips, with the student's and the teacher's clip scores
`(clips, tags)` on the same tags:

- per-tag ROC-AUC and PR-AUC of the student's scores against the teacher's
  binarised tags (a teacher score at or above `threshold` counts as the
  tag), macro-averaged as `metrics.tag_metrics` does (a tag the teacher
  gives to every clip, or to none, is excluded and named);
- the mean absolute difference of the scores, over clips and tags;
- top-k agreement: the share of the teacher's k best tags of a clip that
  are among the student's k best, averaged over clips.

Bootstrap intervals resample the clips: the AUCs' as
`metrics.bootstrap_intervals` does, the other two figures on the same
resampled clips (the same `numpy.random.default_rng(seed)` draws).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tagger.evaluation.metrics import (
    TagMetrics,
    bootstrap_intervals,
    interval_text,
    tag_metrics,
)

TOP_K = 5


def binarised(scores: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Scores as 0/1 tags (float32): 1 where the score is at least `threshold`
    (0/1 labels stay as they are for any threshold in (0, 1])."""
    return (np.asarray(scores) >= threshold).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Agreement:
    metrics: TagMetrics  # student scores against the teacher's binarised tags
    threshold: float
    mean_abs_diff: float
    top_k: int
    top_k_agreement: float
    # level, resamples, seed; mean_abs_diff and top_k_agreement: (low, high)
    intervals: dict | None = None

    def as_dict(self) -> dict:
        ci = self.intervals or {}
        return {**self.metrics.as_dict(), "threshold": self.threshold,
                "mean_abs_diff": self.mean_abs_diff,
                "mean_abs_diff_ci": list(ci["mean_abs_diff"]) if ci else None,
                "top_k": self.top_k, "top_k_agreement": self.top_k_agreement,
                "top_k_agreement_ci": list(ci["top_k_agreement"]) if ci else None}


def agreement(student: np.ndarray, teacher: np.ndarray, tag_names, threshold: float = 0.5,
              top_k: int = TOP_K, bootstrap: int = 0, seed: int = 0,
              level: float = 0.95) -> Agreement:
    """The figures of the module docstring for the student's and teacher's
    clip scores `(clips, tags)`, with `bootstrap` resamples (0: none) for
    `level` confidence intervals."""
    student = np.asarray(student, np.float64)
    teacher = np.asarray(teacher, np.float64)
    if student.shape != teacher.shape or student.ndim != 2:
        raise ValueError(f"student scores {student.shape} and teacher scores "
                         f"{teacher.shape} must both be (clips, tags)")
    labels = binarised(teacher, threshold)
    metrics = tag_metrics(labels, student, list(tag_names))
    k = min(top_k, student.shape[1])
    per_clip_diff = np.abs(student - teacher).mean(axis=1)  # (clips,)
    per_clip_top = top_k_overlap(student, teacher, k)  # (clips,)
    intervals = None
    if bootstrap > 0 and len(student):
        if len(metrics.per_tag):
            metrics = dataclasses.replace(metrics, intervals=bootstrap_intervals(
                labels, student, bootstrap, seed, level))
        intervals = {"level": level, "resamples": bootstrap, "seed": seed,
                     **{name: _mean_interval(values, bootstrap, seed, level)
                        for name, values in (("mean_abs_diff", per_clip_diff),
                                             ("top_k_agreement", per_clip_top))}}
    return Agreement(metrics, float(threshold), _mean(per_clip_diff), k,
                     _mean(per_clip_top), intervals)


def top_k_overlap(student: np.ndarray, teacher: np.ndarray, k: int) -> np.ndarray:
    """(clips,) the share of each clip's k best teacher tags among its k best
    student tags (ties broken by tag order)."""
    best_s = np.argsort(-student, axis=1, kind="stable")[:, :k]
    best_t = np.argsort(-teacher, axis=1, kind="stable")[:, :k]
    hits = (best_s[:, :, None] == best_t[:, None, :]).any(axis=1)  # (clips, k)
    return hits.mean(axis=1) if k else np.zeros(len(student))


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else float("nan")


def _mean_interval(values: np.ndarray, resamples: int, seed: int, level: float) -> tuple:
    """The percentile interval of the mean of per-clip `values` over the
    resamples `bootstrap_intervals` draws with this seed."""
    rng = np.random.default_rng(seed)
    n = len(values)
    means = np.array([values[rng.integers(0, n, n)].mean() for _ in range(resamples)])
    tail = 100 * (1 - level) / 2
    return (float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail)))


def agreement_lines(result: Agreement) -> list:
    """The report's lines: macro AUCs, score difference, top-k agreement,
    excluded tags and the per-tag table."""
    m, ci = result.metrics, result.intervals or {}

    lines = [f"against the teacher's tags (its scores >= {result.threshold:g}): macro "
             f"ROC-AUC {m.roc_auc:.4f}{interval_text(m.intervals, 'roc_auc')}   "
             f"macro PR-AUC {m.pr_auc:.4f}{interval_text(m.intervals, 'pr_auc')}   "
             f"over {len(m.per_tag)} tags",
             f"against the teacher's scores: mean absolute difference "
             f"{result.mean_abs_diff:.4f}{interval_text(ci, 'mean_abs_diff')}   "
             f"top-{result.top_k} agreement {result.top_k_agreement:.4f}"
             f"{interval_text(ci, 'top_k_agreement')}"]
    if ci:
        lines.append(f"  [{ci['level']:.0%} bootstrap confidence intervals over clips: "
                     f"{ci['resamples']} resamples, seed {ci['seed']}]")
    if m.excluded:
        lines.append(f"excluded (the teacher gives them to every clip or to none at "
                     f"{result.threshold:g}): {', '.join(m.excluded)}")
    lines.append("per tag (sorted by ROC-AUC against the teacher's tags):")
    lines += [f"  {row.tag:20s} ROC {row.roc_auc:.4f}  PR {row.pr_auc:.4f}  "
              f"({row.positives} clips with the tag, {row.negatives} without)"
              for row in m.per_tag.itertuples()]
    return lines
