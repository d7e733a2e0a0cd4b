"""Evaluating a saved tagger on a split of a built dataset."""

from __future__ import annotations

import dataclasses

from tagger.evaluation.metrics import (
    DEFAULT_BOOTSTRAP,
    FEW_CLIPS,
    TagMetrics,
    bootstrap_intervals,
    interval_text,
    tag_metrics,
)
from tagger.evaluation.predict import ClipPredictions, ClipPredictor
from tagger.evaluation.reference import reference_lines
from tagger.records.info import load_info, require_labelled


@dataclasses.dataclass(frozen=True)
class Evaluation:
    model_path: str
    split: str
    metrics: TagMetrics
    predictions: ClipPredictions
    origin: dict = dataclasses.field(default_factory=dict)  # dataset_info's "origin"
    reordered: bool = False  # the model's tags are the dataset's in another order

    def as_dict(self) -> dict:
        from tagger.records.info import describe_origin

        return {"model": self.model_path, "split": self.split,
                "dataset_origin": describe_origin(self.origin),
                "clips": int(len(self.predictions.clip_ids)),
                "windows": self.predictions.windows,
                "loss": self.predictions.window_loss, **self.metrics.as_dict()}


def evaluate(model_path: str, data_dir: str, split: str = "test", batch_size: int = 32,
             progress: bool = False, bootstrap: int = DEFAULT_BOOTSTRAP,
             seed: int = 0, over_audio=None) -> Evaluation:
    """Clip-level metrics of the model at `model_path` on `split`, with
    `bootstrap` resamples (0: none) for 95% confidence intervals.
    `over_audio(model, model_info, data_dir, split, info, batch_size,
    progress, columns)` -> ClipPredictions runs a tagger made on another
    model's body (train.py --from) over raw records as its run did: each
    clip resampled to its rate and cut into its windows
    (`training.model_outputs.tagger_predictions`); without it, or for
    another model, the records must be at the model's rate and window."""
    from tagger.models.saved import load_tagger
    from tagger.records.model_fit import check_tags, tag_order, window_segments_for

    info = load_info(data_dir)
    require_labelled(info, split)
    model, model_info = load_tagger(model_path)
    if over_audio is not None and is_from_body(model_info) and info.features["kind"] == "raw":
        check_tags(model, model_info, info, reorder=True)
        columns = tag_order(model_info, info, reorder=True)
        predictions = over_audio(model, model_info, data_dir, split, info, batch_size,
                                 progress, columns)
    else:
        window = window_segments_for(model, model_info, info, reorder=True)
        columns = tag_order(model_info, info, reorder=True)
        predictions = ClipPredictor(model)(data_dir, split, window, batch_size, info,
                                           progress=progress, columns=columns)
    metrics = tag_metrics(predictions.labels, predictions.scores, info.tag_names)
    if bootstrap > 0 and len(metrics.per_tag):
        metrics = dataclasses.replace(metrics, intervals=bootstrap_intervals(
            predictions.labels, predictions.scores, bootstrap, seed))
    return Evaluation(model_path, split, metrics, predictions, info.origin,
                      reordered=columns is not None)


def is_from_body(model_info) -> bool:
    """Whether the tagger was made on another model's body (train.py --from)."""
    return bool(model_info is not None and model_info.base_model)


def report_lines(result: Evaluation) -> list:
    m = result.metrics
    ci = m.intervals
    lines = [f"{result.split}: {len(result.predictions.clip_ids)} clips, "
             f"{result.predictions.windows} windows"
             + ("; the model's tags are the dataset's in another order, matched by name"
                if result.reordered else ""),
             f"macro ROC-AUC {m.roc_auc:.4f}{interval_text(ci, 'roc_auc')}   "
             f"macro PR-AUC {m.pr_auc:.4f}{interval_text(ci, 'pr_auc')}   "
             f"over {len(m.per_tag)} tags"]
    if ci:
        lines.append(f"  [{ci['level']:.0%} bootstrap confidence intervals over clips: "
                     f"{ci['resamples']} resamples, seed {ci['seed']}] each over the same "
                     f"{len(m.per_tag)} tags as the estimate")
    if m.excluded:
        lines.append(f"excluded from the averages and intervals (no positive or no negative "
                     f"clip in {result.split}): {', '.join(m.excluded)}")
    lines.append("per tag (sorted by ROC-AUC):")
    lines += [f"  {row.tag:20s} ROC {row.roc_auc:.4f}  PR {row.pr_auc:.4f}  "
              f"({row.positives} positives, {row.negatives} negatives)"
              + ("  * few clips" if row.few_clips else "")
              for row in m.per_tag.itertuples()]
    few = int(m.per_tag.few_clips.sum())
    if few:
        lines.append(f"  * {few} tag(s) with fewer than {FEW_CLIPS} positive or negative "
                     "clips in this split: their AUCs say little")
    lines += published_lines(result.origin)
    return lines


def published_lines(origin: dict) -> list:
    """Published MagnaTagATune figures, only where they can be compared, and
    said so: never beside results on synthetic data."""
    from tagger.records.info import describe_origin

    kind = origin.get("kind")
    if kind == "synthetic":
        return [f"(the dataset is {describe_origin(origin)}: these figures are not "
                "comparable with published MagnaTagATune results, which are not shown)"]
    if kind == "real" and origin.get("dataset") != "magnatagatune":
        return []
    heading = ("published MagnaTagATune results (ROC-AUC, PR-AUC; comparable only on "
               "the same split and tags):" if kind == "real" else
               "published MagnaTagATune results (ROC-AUC, PR-AUC); this dataset does not "
               "record its origin: they compare only if it is real MagnaTagATune data:")
    return [heading, *reference_lines()]
