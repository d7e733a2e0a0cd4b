"""Tagging metrics on numpy arrays (sklearn; no TensorFlow).

Macro averages run over the tags that have both positive and negative clips
in the split; the others are excluded and named, since ROC-AUC is undefined
for them. Tags with fewer than `FEW_CLIPS` positive (or negative) clips are
flagged: their AUCs rest on too few clips to mean much.

`bootstrap_intervals` gives confidence intervals of the macro averages by
resampling clips with replacement over the same tags as the point estimate
(a resample that draws no positive, or no negative, clip of one of them gets
one added: dropping the tag instead would move the interval away from the
estimate); vectorised, equal to running sklearn on every resample, as the
tests check; `paired_bootstrap_gain` gives the
interval of one model's gain over another on the same resampled clips.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

FEW_CLIPS = 5  # tags with fewer positive or negative clips are flagged
DEFAULT_BOOTSTRAP = 1000  # resamples for the confidence intervals


@dataclasses.dataclass(frozen=True)
class TagMetrics:
    roc_auc: float  # macro over `evaluated` tags
    pr_auc: float
    # tag, roc_auc, pr_auc, positives, negatives, few_clips; sorted by roc_auc
    per_tag: pd.DataFrame
    excluded: tuple  # tags without positives or without negatives
    intervals: dict | None = None  # from `bootstrap_intervals`, when computed

    def as_dict(self) -> dict:
        few = self.per_tag.tag[self.per_tag.few_clips].tolist()
        return {"roc_auc": self.roc_auc, "pr_auc": self.pr_auc,
                "roc_auc_ci": _interval(self.intervals, "roc_auc"),
                "pr_auc_ci": _interval(self.intervals, "pr_auc"),
                "bootstrap": ({k: v for k, v in self.intervals.items()
                               if k not in ("roc_auc", "pr_auc")}
                              if self.intervals else None),
                "evaluated_tags": len(self.per_tag), "excluded_tags": list(self.excluded),
                "few_clip_tags": few, "few_clips_threshold": FEW_CLIPS,
                "per_tag": self.per_tag.to_dict(orient="records")}


def _interval(intervals, key):
    return list(intervals[key]) if intervals else None


def tag_metrics(labels: np.ndarray, scores: np.ndarray, tag_names) -> TagMetrics:
    """labels (clips, tags) 0/1, scores (clips, tags) -> macro ROC-AUC and PR-AUC."""
    labels = np.asarray(labels)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.shape != scores.shape or labels.ndim != 2:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} must both "
                         "be (clips, tags)")
    if labels.shape[1] != len(tag_names):
        raise ValueError(f"{labels.shape[1]} tag columns but {len(tag_names)} tag names")
    positives = labels.sum(axis=0)
    usable = (positives > 0) & (positives < labels.shape[0])
    rows = []
    for i in np.flatnonzero(usable):
        rows.append({"tag": tag_names[i],
                     "roc_auc": roc_auc_score(labels[:, i], scores[:, i]),
                     "pr_auc": average_precision_score(labels[:, i], scores[:, i]),
                     "positives": int(positives[i]),
                     "negatives": int(labels.shape[0] - positives[i])})
    per_tag = pd.DataFrame(rows, columns=["tag", "roc_auc", "pr_auc", "positives",
                                          "negatives"])
    per_tag["few_clips"] = (per_tag.positives < FEW_CLIPS) | (per_tag.negatives < FEW_CLIPS)
    per_tag = per_tag.sort_values("roc_auc", ascending=False, kind="stable")
    per_tag = per_tag.reset_index(drop=True)
    excluded = tuple(tag_names[i] for i in np.flatnonzero(~usable))
    if per_tag.empty:
        return TagMetrics(float("nan"), float("nan"), per_tag, excluded)
    return TagMetrics(float(per_tag.roc_auc.mean()), float(per_tag.pr_auc.mean()),
                      per_tag, excluded)


def binary_crossentropy(labels: np.ndarray, scores: np.ndarray, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy of probabilities `scores` against 0/1 `labels`."""
    return float(np.mean(window_crossentropy(labels, scores, eps)))


def window_crossentropy(labels: np.ndarray, scores: np.ndarray,
                        eps: float = 1e-7) -> np.ndarray:
    """(rows,) the binary cross-entropy of each row of probabilities
    `scores` (rows, tags) against `labels`, averaged over the tags."""
    p = np.clip(np.asarray(scores, np.float64), eps, 1 - eps)
    y = np.asarray(labels, np.float64)
    return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p), axis=-1)


def bootstrap_intervals(labels: np.ndarray, scores: np.ndarray, resamples: int = 1000,
                        seed: int = 0, level: float = 0.95) -> dict:
    """Percentile bootstrap intervals of macro ROC-AUC and PR-AUC over clips.

    Resample b draws `clips` clip indices with replacement
    (`numpy.random.default_rng(seed).integers(0, clips, clips)`, one call per
    resample, in order); its macro averages run over exactly the tags the
    point estimate averages (those with both classes in the whole split;
    the others are excluded once, up front, and named by `tag_metrics`).
    Where a resample holds no positive (or no negative) clip of one of these
    tags, one of the tag's positive (negative) clips is added, drawn from
    `numpy.random.default_rng([seed, 1]).choice`, resample by resample and
    tag by tag in order, positives first. Returns {"roc_auc": (low, high),
    "pr_auc": (low, high), "level", "resamples", "seed"}.
    """
    (roc, pr), = bootstrap_macro_aucs(labels, [scores], resamples, seed)
    return {"level": level, "resamples": resamples, "seed": seed,
            "roc_auc": _percentile_interval(roc, level),
            "pr_auc": _percentile_interval(pr, level)}


def paired_bootstrap_gain(labels: np.ndarray, baseline_scores: np.ndarray,
                          scores: np.ndarray, resamples: int = 1000, seed: int = 0,
                          level: float = 0.95) -> dict:
    """Percentile bootstrap intervals of the gain in macro ROC-AUC and PR-AUC
    of `scores` over `baseline_scores` (two models on the same clips): both
    are scored on the same resampled clips, which are those that
    `bootstrap_intervals` draws with this `seed`, and the interval is that
    of the per-resample differences. Returns {"roc_auc": (low, high),
    "pr_auc": (low, high), "level", "resamples", "seed"}."""
    (roc_a, pr_a), (roc_b, pr_b) = bootstrap_macro_aucs(
        labels, [baseline_scores, scores], resamples, seed)
    return {"level": level, "resamples": resamples, "seed": seed,
            "roc_auc": _percentile_interval(roc_b - roc_a, level),
            "pr_auc": _percentile_interval(pr_b - pr_a, level)}


def bootstrap_macro_aucs(labels: np.ndarray, scores_list, resamples: int = 1000,
                         seed: int = 0) -> list:
    """Macro ROC-AUC and PR-AUC on each of `resamples` bootstrap resamples of
    the clips (drawn as `bootstrap_intervals` says), for every score matrix
    `(clips, tags)` of `scores_list` on the same resamples. Returns one
    (roc_auc, pr_auc) pair of arrays (resamples,) per score matrix; NaN
    where a resample has no tag with both classes."""
    labels = np.asarray(labels) > 0.5
    scores_list = [np.asarray(scores, np.float64) for scores in scores_list]
    clips = labels.shape[0]
    positives = labels.sum(axis=0)
    tags = np.flatnonzero((positives > 0) & (positives < clips))
    rng = np.random.default_rng(seed)
    repair = np.random.default_rng([seed, 1])
    roc = [[] for _ in scores_list]
    pr = [[] for _ in scores_list]
    for start in range(0, resamples, 100):  # bounded memory: 100 resamples at a time
        size = min(100, resamples - start)
        weights = np.stack([np.bincount(rng.integers(0, clips, clips), minlength=clips)
                            for _ in range(size)], axis=1).astype(np.int32)  # (clips, size)
        _keep_both_classes(weights, labels, tags, repair)
        for k, scores in enumerate(scores_list):
            per_tag = [_weighted_aucs(labels[:, t], scores[:, t], weights) for t in tags]
            with np.errstate(invalid="ignore"):
                roc[k].append(np.nanmean(np.stack([r for r, _ in per_tag]), axis=0)
                              if per_tag else np.full(size, np.nan))
                pr[k].append(np.nanmean(np.stack([p for _, p in per_tag]), axis=0)
                             if per_tag else np.full(size, np.nan))
    return [(np.concatenate(r) if r else np.zeros(0), np.concatenate(p) if p else np.zeros(0))
            for r, p in zip(roc, pr)]


def _keep_both_classes(weights: np.ndarray, labels: np.ndarray, tags, rng) -> None:
    """Adds, in place, one positive (negative) clip of a tag in `tags` to
    each column of `weights` (clips, resamples) that draws none of them."""
    y = labels[:, tags].astype(np.int64)  # (clips, tags)
    positives = y.T @ weights  # (tags, resamples)
    negatives = weights.sum(axis=0) - positives
    members = {}
    for j in np.flatnonzero(((positives == 0) | (negatives == 0)).any(axis=0)):
        column = weights[:, j]
        for t in tags:
            for cls in (True, False):
                if (t, cls) not in members:
                    members[t, cls] = np.flatnonzero(labels[:, t] == cls)
                if not column[members[t, cls]].any():
                    column[rng.choice(members[t, cls])] += 1


def interval_text(intervals, key) -> str:
    """" [low, high]" of `intervals[key]` for a report line ("" without one)."""
    pair = (intervals or {}).get(key)
    return f" [{pair[0]:.4f}, {pair[1]:.4f}]" if pair else ""


def _percentile_interval(values: np.ndarray, level: float) -> tuple:
    """The central `level` percentile interval of the finite `values`."""
    values = values[np.isfinite(values)]
    if not len(values):
        return (float("nan"), float("nan"))
    tail = 100 * (1 - level) / 2
    return (float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail)))


def _weighted_aucs(y: np.ndarray, s: np.ndarray, weights: np.ndarray):
    """ROC-AUC and average precision of one tag under each column of clip
    `weights` `(clips, rows)` (bootstrap counts), as sklearn computes them on
    the clips repeated that many times; NaN where a row lacks either class.
    Counts stay integers (exact) until the per-threshold sums."""
    order = np.argsort(-s, kind="stable")  # descending score
    s, y = s[order], y[order]
    w = weights[order]  # (clips, rows)
    ends = np.flatnonzero(np.r_[s[1:] != s[:-1], True])  # last clip of each tie group
    tp = np.cumsum(w * y[:, None], axis=0, dtype=np.int64)[ends].T  # (rows, groups)
    fp = np.cumsum(w, axis=0, dtype=np.int64)[ends].T - tp
    tp, fp = tp.astype(np.float64), fp.astype(np.float64)
    pos = np.diff(tp, axis=1, prepend=0.0)  # weight of each group
    neg = np.diff(fp, axis=1, prepend=0.0)
    total_pos, total_neg = tp[:, -1], fp[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        # ROC-AUC: each positive beats the negatives below its score, half the ties.
        roc = (pos * (total_neg[:, None] - fp + 0.5 * neg)).sum(axis=1) / (
            total_pos * total_neg)
        # Average precision: precision at each threshold times the recall gained.
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1e-300), 0.0)
        ap = (precision * pos).sum(axis=1) / total_pos
    invalid = (total_pos == 0) | (total_neg == 0)
    roc[invalid] = np.nan
    ap[invalid] = np.nan
    return roc, ap
