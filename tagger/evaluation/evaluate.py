"""Evaluating a saved tagger on a split of a built dataset."""

from __future__ import annotations

import dataclasses

from tagger.evaluation.metrics import TagMetrics, tag_metrics
from tagger.evaluation.predict import ClipPredictions, ClipPredictor
from tagger.evaluation.reference import reference_lines
from tagger.records.info import load_info, require_labelled


@dataclasses.dataclass(frozen=True)
class Evaluation:
    model_path: str
    split: str
    metrics: TagMetrics
    predictions: ClipPredictions

    def as_dict(self) -> dict:
        return {"model": self.model_path, "split": self.split,
                "clips": int(len(self.predictions.clip_ids)),
                "windows": self.predictions.windows,
                "loss": self.predictions.window_loss, **self.metrics.as_dict()}


def evaluate(model_path: str, data_dir: str, split: str = "test", batch_size: int = 32,
             progress: bool = False) -> Evaluation:
    from tagger.models.saved import load_tagger, window_segments_for

    info = load_info(data_dir)
    require_labelled(info, split)
    model, model_info = load_tagger(model_path)
    window = window_segments_for(model, model_info, info)
    predictions = ClipPredictor(model)(data_dir, split, window, batch_size, info,
                                       progress=progress)
    metrics = tag_metrics(predictions.labels, predictions.scores, info["tag_names"])
    return Evaluation(model_path, split, metrics, predictions)


def report_lines(result: Evaluation) -> list:
    m = result.metrics
    lines = [f"{result.split}: {len(result.predictions.clip_ids)} clips, "
             f"{result.predictions.windows} windows",
             f"macro ROC-AUC {m.roc_auc:.4f}   macro PR-AUC {m.pr_auc:.4f}   "
             f"over {len(m.per_tag)} tags"]
    if m.excluded:
        lines.append(f"excluded (no positive or no negative clip): {', '.join(m.excluded)}")
    lines.append("per tag (sorted by ROC-AUC):")
    lines += [f"  {row.tag:20s} ROC {row.roc_auc:.4f}  PR {row.pr_auc:.4f}  "
              f"({row.positives} positives)" for row in m.per_tag.itertuples()]
    lines.append("published MagnaTagATune results, for context (ROC-AUC, PR-AUC):")
    lines += reference_lines()
    return lines
