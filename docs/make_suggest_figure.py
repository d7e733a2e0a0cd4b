"""Draws docs/images/suggest.png: held-out ROC-AUC against labelled files a
tag, files drawn at random against files train.py --suggest picks, from
the figures bench/bench_suggest.py --json wrote (each seed's).

    python bench/bench_suggest.py RECORDS --json docs/images/suggest.json
    python docs/make_suggest_figure.py docs/images/suggest.json [--out docs/images/suggest.png]
"""

import argparse
import json
import os

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PANELS = ("held-out files (never offered to label)", "every file not labelled")
STYLE = {"random": ("tab:gray", "o", "drawn at random"),
         "suggested": ("tab:blue", "s", "train.py --suggest's")}


def draw(results: dict, path: str, note: str = "") -> None:
    """Each panel: the mean over the seeds of each choice, its lowest to
    highest seed shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budgets = results["budgets"]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    for panel, (axis, title) in enumerate(zip(axes, PANELS)):
        for choice, (colour, marker, label) in STYLE.items():
            values = np.array(results[choice])[:, :, panel]  # (seeds, budgets)
            axis.plot(budgets, values.mean(axis=0), color=colour, marker=marker,
                      label=f"{label} (mean of {len(values)} seeds)")
            axis.fill_between(budgets, values.min(axis=0), values.max(axis=0), color=colour,
                              alpha=0.2, linewidth=0)
        axis.set_xscale("log", base=2)
        axis.set_xticks(budgets, [f"{b}\n({t}{'' if t == b * len(results['tags']) else ', all'})"
                                  for b, t in zip(budgets, results["totals"])])
        axis.set_xlabel("labelled files a tag on average (in all)")
        axis.set_title(title, fontsize=10)
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("macro ROC-AUC")
    axes[0].legend(loc="lower right", fontsize=9)
    figure.suptitle(f"Which files to label: {results['files']} files, {len(results['tags'])} "
                    f"tags, {results['held_out']} held out; shaded: lowest to highest seed"
                    + (f"\n{note}" if note else ""), fontsize=10)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", help="bench/bench_suggest.py --json's file")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs", "images", "suggest.png"))
    parser.add_argument("--note", default="", help="a second line of the title (the run)")
    args = parser.parse_args(argv)
    with open(args.results) as f:
        draw(json.load(f), args.out, args.note)
    print(args.out)


if __name__ == "__main__":
    main()
