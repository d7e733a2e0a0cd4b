"""Tagging metrics on numpy arrays (sklearn; no TensorFlow).

Macro averages run over the tags that have both positive and negative clips
in the split; the others are excluded and named, since ROC-AUC is undefined
for them.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score


@dataclasses.dataclass(frozen=True)
class TagMetrics:
    roc_auc: float  # macro over `evaluated` tags
    pr_auc: float
    per_tag: pd.DataFrame  # tag, roc_auc, pr_auc, positives; sorted by roc_auc
    excluded: tuple  # tags without positives or without negatives

    def as_dict(self) -> dict:
        return {"roc_auc": self.roc_auc, "pr_auc": self.pr_auc,
                "evaluated_tags": len(self.per_tag), "excluded_tags": list(self.excluded),
                "per_tag": self.per_tag.to_dict(orient="records")}


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
                     "positives": int(positives[i])})
    per_tag = pd.DataFrame(rows, columns=["tag", "roc_auc", "pr_auc", "positives"])
    per_tag = per_tag.sort_values("roc_auc", ascending=False, kind="stable")
    per_tag = per_tag.reset_index(drop=True)
    excluded = tuple(tag_names[i] for i in np.flatnonzero(~usable))
    if per_tag.empty:
        return TagMetrics(float("nan"), float("nan"), per_tag, excluded)
    return TagMetrics(float(per_tag.roc_auc.mean()), float(per_tag.pr_auc.mean()),
                      per_tag, excluded)


def binary_crossentropy(labels: np.ndarray, scores: np.ndarray, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy of probabilities `scores` against 0/1 `labels`."""
    p = np.clip(np.asarray(scores, np.float64), eps, 1 - eps)
    y = np.asarray(labels, np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
