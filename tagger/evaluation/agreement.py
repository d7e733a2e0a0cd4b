"""How well a student ranks what its teacher ranks (numpy/sklearn, no TensorFlow).

On the same clips, with the student's and the teacher's clip scores
`(clips, tags)` on the same tags:

- per-tag ROC-AUC and PR-AUC of the student's scores against the teacher's
  tags of each clip, chosen as tag.py lists a file's tags (`teacher_tags`:
  its `top_k` best, or those scoring at least `threshold`),
  macro-averaged as `metrics.tag_metrics` does (a tag the teacher gives to
  every clip, or to none, is excluded and named);
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


def teacher_tags(scores: np.ndarray, top_k: int | None = None,
                 threshold: float | None = None) -> np.ndarray:
    """(clips, tags) 0/1 float32: each clip's tags as tag.py selects a file's
    (`inference.outputs.selected_indices`): without `threshold` its `top_k`
    best (default TOP_K; ties by tag order), with it every tag scoring at
    least `threshold`, at most `top_k` of them when given. A tagger's
    scores are seldom calibrated (MTT_musicnn rarely reaches 0.5), so the
    default is the ranking, not a fixed score."""
    scores = np.asarray(scores, np.float64)
    if top_k is None:
        top_k = TOP_K if threshold is None else scores.shape[1]
    order = np.argsort(-scores, axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(scores.shape[1])[None, :], axis=1)
    chosen = rank < top_k
    if threshold is not None:
        chosen &= scores >= threshold
    return chosen.astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Agreement:
    metrics: TagMetrics  # student scores against the teacher's tags
    teacher_tags: str  # how they were chosen, in words (`tags_rule`)
    threshold: float | None
    top_k: int  # the k of top-k agreement
    mean_abs_diff: float
    top_k_agreement: float
    # level, resamples, seed; mean_abs_diff and top_k_agreement: (low, high)
    intervals: dict | None = None

    def as_dict(self) -> dict:
        ci = self.intervals or {}
        return {**self.metrics.as_dict(), "teacher_tags": self.teacher_tags,
                "threshold": self.threshold,
                "mean_abs_diff": self.mean_abs_diff,
                "mean_abs_diff_ci": list(ci["mean_abs_diff"]) if ci else None,
                "top_k": self.top_k, "top_k_agreement": self.top_k_agreement,
                "top_k_agreement_ci": list(ci["top_k_agreement"]) if ci else None}


def agreement(student: np.ndarray, teacher: np.ndarray, tag_names, top_k: int | None = None,
              threshold: float | None = None, bootstrap: int = 0, seed: int = 0,
              level: float = 0.95) -> Agreement:
    """The figures of the module docstring for the student's and teacher's
    clip scores `(clips, tags)`, the teacher's tags chosen by `teacher_tags`
    (`top_k`, `threshold`), with `bootstrap` resamples (0: none) for `level`
    confidence intervals. Top-k agreement counts `top_k` tags (default TOP_K)."""
    student = np.asarray(student, np.float64)
    teacher = np.asarray(teacher, np.float64)
    if student.shape != teacher.shape or student.ndim != 2:
        raise ValueError(f"student scores {student.shape} and teacher scores "
                         f"{teacher.shape} must both be (clips, tags)")
    labels = teacher_tags(teacher, top_k, threshold)
    metrics = tag_metrics(labels, student, list(tag_names))
    k = min(TOP_K if top_k is None else top_k, student.shape[1])
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
    return Agreement(metrics, tags_rule(top_k, threshold), threshold, k,
                     _mean(per_clip_diff), _mean(per_clip_top), intervals)


def tags_rule(top_k: int | None = None, threshold: float | None = None) -> str:
    """`teacher_tags`' choice in words: 'its top 5 of each clip', 'its scores
    >= 0.3', 'its scores >= 0.3, at most 5 a clip'."""
    if threshold is None:
        return f"its top {TOP_K if top_k is None else top_k} of each clip"
    limit = "" if top_k is None else f", at most {top_k} a clip"
    return f"its scores >= {threshold:g}{limit}"


def top_k_overlap(student: np.ndarray, teacher: np.ndarray, k: int) -> np.ndarray:
    """(clips,) the share of each clip's k best teacher tags among its k best
    student tags (ties broken by tag order)."""
    best_s = np.argsort(-student, axis=1, kind="stable")[:, :k]
    best_t = np.argsort(-teacher, axis=1, kind="stable")[:, :k]
    hits = (best_s[:, :, None] == best_t[:, None, :]).any(axis=1)  # (clips, k)
    return hits.mean(axis=1) if k else np.zeros(len(student))


def tie_aware_top_k_overlap(student: np.ndarray, teacher: np.ndarray, k: int,
                            tolerance: float = 0.01) -> np.ndarray:
    """(clips,) `top_k_overlap` where tags tied at the teacher's k-th place
    count as one: a tag among the student's k best matches when the teacher
    scores it within `tolerance` of its own k-th best score or above (so a
    swap of the k-th and (k+1)-th tag whose teacher scores are that close is
    no miss). Scores (clips, tags)."""
    if not k:
        return np.zeros(len(student))
    best_s = np.argsort(-student, axis=1, kind="stable")[:, :k]
    kth = -np.sort(-teacher, axis=1)[:, k - 1:k]  # (clips, 1): the teacher's k-th score
    hits = np.take_along_axis(teacher, best_s, axis=1) >= kth - tolerance  # (clips, k)
    return hits.mean(axis=1)


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

    lines = [f"against the teacher's tags ({result.teacher_tags}): macro "
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
        lines.append(f"excluded (the teacher gives them to every clip or to none): "
                     f"{', '.join(m.excluded)}")
    lines.append("per tag (sorted by ROC-AUC against the teacher's tags):")
    lines += [f"  {row.tag:20s} ROC {row.roc_auc:.4f}  PR {row.pr_auc:.4f}  "
              f"({row.positives} clips with the tag, {row.negatives} without)"
              for row in m.per_tag.itertuples()]
    return lines
