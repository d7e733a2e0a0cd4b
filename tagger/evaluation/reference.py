"""Published results, in one place: the MagnaTagATune figures eval.py
prints beside ours for context (`PUBLISHED`, `reference_lines`), and the
figures the pretrained registry (`tagger.pretrained.registry`) shows with
each published tagger, read from here.

Sources: Kim, Lee, Nam (ICASSP 2018) for the sample-level CNN variants;
Won et al. (2020, "Evaluation of CNN-based automatic music tagging models")
for the peer table; Dabral et al. (2018) for the multi-scale CNN; the
musicnn package 0.1.0's `experiment.result` files (Pons and Serra 2019)
for its four models.
"""

PUBLISHED = {
    # name: (ROC-AUC, PR-AUC or None, source)
    "Sample-level CNN (Won 2020)": (0.9058, 0.4422, "Won 2020"),
    "Sample-level CNN + SE (Won 2020)": (0.9103, 0.4520, "Won 2020"),
    "Sample-level CNN, SE + multi-level": (0.9111, None, "Kim 2018"),
    "Sample-level CNN, ReSE + multi-level": (0.9113, None, "Kim 2018"),
    "Self-attention tagger (Won 2020)": (0.9077, 0.4445, "Won 2020"),
    "Short-chunk ResNet (best supervised, Won 2020)": (0.9129, 0.4614, "Won 2020"),
    "Multi-scale CNN (random split)": (0.905, None, "Dabral 2018"),
}
# the musicnn package's models: (ROC-AUC, PR-AUC) of their experiment.result
# (MTT_*: MagnaTagATune's test set; MSD_*: the MSD test set)
MUSICNN_PACKAGE = {"MTT_musicnn": (0.9067, 0.3831), "MSD_musicnn": (0.8802, 0.2891),
                   "MTT_vgg": (0.9030, 0.3823), "MSD_vgg": (0.8768, 0.2819)}


def auc_text(roc: float, pr: float | None = None, *_) -> str:
    """'ROC-AUC 0.9111', or 'ROC-AUC 0.9077, PR-AUC 0.4445' (the figures of
    a `PUBLISHED` or `MUSICNN_PACKAGE` value)."""
    return f"ROC-AUC {roc:.4f}" + (f", PR-AUC {pr:.4f}" if pr is not None else "")


def reference_lines() -> list:
    lines = []
    for name, (roc, pr, _) in PUBLISHED.items():
        pr_text = f"{pr:.4f}" if pr is not None else "   -  "
        lines.append(f"  {roc:.4f}  {pr_text}  {name}")
    return lines
