"""Draws docs/images/architecture.png: tagger's layers, bottom to top, and
which unit imports which, computed from the source with ast (the same
reading and the same layer order as tests/test_layering.py).

    python docs/make_architecture.py
"""

from __future__ import annotations

import collections
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests.test_layering import IMPORTS, LAYERS, unit_of  # noqa: E402

OUT = os.path.join(ROOT, "docs", "images", "architecture.png")


def unit_edges() -> dict[tuple[str, str], int]:
    """(importer unit, imported unit) -> number of module imports."""
    edges = collections.Counter()
    for module, targets in IMPORTS.items():
        for target, _ in targets:
            if unit_of(module) != unit_of(target):
                edges[unit_of(module), unit_of(target)] += 1
    return edges


def draw(path: str = OUT) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    edges = unit_edges()
    width, row = 13.2, 1.25
    figure, ax = plt.subplots(figsize=(13.7, 0.95 * len(LAYERS) + 1.2), dpi=130)
    where = {}
    for level, (name, units) in enumerate(LAYERS):
        y = level * row
        ax.add_patch(FancyBboxPatch((0, y - 0.42), width, 0.84, boxstyle="round,pad=0.02",
                                    facecolor="#f3f3f3" if level % 2 else "#e8eef6",
                                    edgecolor="none", zorder=0))
        ax.text(-0.15, y, name, ha="right", va="center", fontsize=10, fontweight="bold")
        step = width / len(units)
        for i, unit in enumerate(units):
            x = step * (i + 0.5)
            where[unit] = (x, y)
            label = {"tagger": "tagger/__init__\n(public API)"}.get(unit, unit)
            ax.text(x, y, label, ha="center", va="center", zorder=3,
                    fontsize=min(9.5, 112 / len(units)),  # a crowded row: smaller
                    bbox=dict(boxstyle="round,pad=0.3", facecolor="white",
                              edgecolor="#4a6fa5", linewidth=1.2))
    foundation = set(LAYERS[0][1])
    for (source, target), count in sorted(edges.items()):
        if target in foundation and source not in foundation:
            continue  # every layer uses the foundation: drawn once, as a note
        (x0, y0), (x1, y1) = where[source], where[target]
        same_row = abs(y0 - y1) < 1e-9
        ax.add_patch(FancyArrowPatch(
            (x0, y0 - (0 if same_row else 0.22)), (x1, y1 + (0 if same_row else 0.22)),
            arrowstyle="-|>", mutation_scale=9, linewidth=0.6 + 0.15 * min(count, 8),
            color="#c0504d" if same_row else "#555555", alpha=0.55, zorder=1,
            connectionstyle="arc3,rad=0.35" if same_row else "arc3,rad=0.05",
            shrinkA=12, shrinkB=12))
    ax.text(width / 2, -0.85, "arrows: A imports B (thicker: more modules). Every layer "
            "may import the foundation; those arrows are left out.", ha="center",
            fontsize=8.5, color="#444444")
    ax.set_xlim(-2.6, width + 0.2)
    ax.set_ylim(-1.1, (len(LAYERS) - 1) * row + 0.6)
    ax.axis("off")
    ax.set_title("tagger's layers, bottom to top (computed from the imports)", fontsize=12)
    figure.tight_layout()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path


if __name__ == "__main__":
    print(draw())
