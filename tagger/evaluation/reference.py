"""Published MagnaTagATune results, printed beside ours for context.

Sources: Kim, Lee, Nam (ICASSP 2018) for the sample-level CNN variants;
Won et al. (2020, "Evaluation of CNN-based automatic music tagging models")
for the peer table; Dabral et al. (2018) for the multi-scale CNN.
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


def reference_lines() -> list:
    lines = []
    for name, (roc, pr, _) in PUBLISHED.items():
        pr_text = f"{pr:.4f}" if pr is not None else "   -  "
        lines.append(f"  {roc:.4f}  {pr_text}  {name}")
    return lines
