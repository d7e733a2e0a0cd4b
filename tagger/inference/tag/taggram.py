"""Taggrams: a file's window x tag score matrix, as .npy and as a picture.

Like musicnn's taggram: tags on the y axis (the model's order), time on the
x axis (one column per window, at its start), colour = score in [0, 1];
the tags the report lists for the file (its top tags by clip score, as
`--top-k` and `--threshold` select them: `outputs.selected_indices`) are
drawn in bold red with a marker.
A model trained on the synthetic dataset says so under the title
(`models.saved.synthetic_note`).
A file shorter than one window is one zero-padded window: the padding
(from the file's end to the window's) is shaded grey, as in the attention
maps.

Files are named after the input's path relative to the folder common to
all inputs, with separators replaced by `__` and the extension kept:
`rock/song.mp3` -> `rock__song.mp3.npy` and `rock__song.mp3.png`, so two
`song.mp3` in different folders (or `song.mp3` beside `song.wav`) never
collide; a name that still collides gets `-2`, `-3`, ... `index.csv` in
the folder maps each name to its input path. Names, the index and the
picture's title are text: a path is written as its `fileio.path_text` (a
backslash doubled, each byte that is not valid UTF-8 as `\\xNN`); an index
cell a spreadsheet would run as a formula has a quote before it
(`csv_cells.text_cell`).
"""

from __future__ import annotations

import io
import os
import textwrap

import numpy as np

from tagger import fileio
from tagger.csv_cells import csv_text
from tagger.inference.outputs import selected_indices


def taggram_names(paths) -> dict[str, str]:
    """Maps every path to a unique file stem (without .npy/.png)."""
    paths = list(paths)
    if not paths:
        return {}
    folders = [os.path.dirname(os.path.abspath(p)) for p in paths]
    root = os.path.commonpath(folders)
    names, used = {}, set()
    for path in paths:
        relative = fileio.path_text(os.path.relpath(os.path.abspath(path), root))
        stem = relative.replace(os.sep, "__").replace("/", "__")
        name, n = stem, 1
        while name.lower() in used:  # case-insensitive file systems too
            n += 1
            name = f"{stem}-{n}"
        used.add(name.lower())
        names[path] = name
    return names


def is_index(path: str) -> bool:
    """Whether `path` is an index.csv `write_index` wrote (its header)."""
    return fileio.first_line(path) == "name,path"


def write_index(folder: str, names: dict[str, str]) -> None:
    text = csv_text([["name", "path"], *([name, fileio.path_text(path)]
                                         for path, name in names.items())])
    fileio.write_atomic(os.path.join(folder, "index.csv"), text.encode())


def write_taggram(folder: str, name: str, result, tag_names, top_k: int | None = None, *,
                  threshold: float | None = None, note: str | None = None
                  ) -> tuple[str, str]:
    """Writes `<name>.npy` ((windows, tags) float32) and `<name>.png`; returns
    both paths. `top_k`, `threshold`: which tags to highlight, as the report
    selects them; `note`: a line about the model for the picture, or None."""
    npy = os.path.join(folder, name + ".npy")
    png = os.path.join(folder, name + ".png")
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(result.scores, np.float32))
    fileio.write_atomic(npy, buffer.getvalue())
    fileio.write_atomic(png, taggram_png(result, tag_names, top_k, threshold=threshold,
                                         note=note))
    return npy, png


def taggram_png(result, tag_names, top_k: int | None = None, *,
                threshold: float | None = None, note: str | None = None) -> bytes:
    """The taggram picture as PNG bytes."""
    out = io.BytesIO()
    figure = taggram_figure(result, tag_names, top_k, threshold=threshold, note=note)
    figure.savefig(out, format="png", dpi=100)
    return out.getvalue()


def taggram_figure(result, tag_names, top_k: int | None = None, *,
                   threshold: float | None = None, note: str | None = None):
    """The taggram as a matplotlib Figure (Agg canvas, no pyplot); the tags
    `top_k` and `threshold` select (as in the report) are highlighted;
    `note`, a line about the model, goes under the title."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    scores = np.asarray(result.scores, np.float32)  # (windows, tags)
    windows, tags = scores.shape
    hop = result.hop_samples / result.sample_rate
    top = selected_indices(result.clip_scores, top_k, threshold)

    width = min(20.0, max(7.0, 3.0 + 0.25 * windows))  # inches
    figure = Figure(figsize=(width, max(3.0, 1.4 + 0.17 * tags)))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    end = windows * hop
    if result.padded:  # one window, longer than the file: its zero padding is shaded
        end = result.window_samples / result.sample_rate
    image = axes.imshow(scores.T, aspect="auto", origin="upper", cmap="viridis",
                        vmin=0.0, vmax=1.0, interpolation="nearest",
                        extent=(0.0, end, tags - 0.5, -0.5))  # (tags, windows)
    if result.padded:
        axes.axvspan(result.duration, end, color="0.5", alpha=0.35, lw=0)  # as attention maps
        axes.axvline(result.duration, color="white", lw=1.0, ls="--")
    axes.set_yticks(range(tags))
    axes.set_yticklabels(tag_names, fontsize=7)
    for index in top:
        label = axes.get_yticklabels()[index]
        label.set_color("tab:red")
        label.set_fontweight("bold")
        axes.plot([0.0], [index], marker=">", color="tab:red", markersize=6,
                  clip_on=False, transform=axes.get_yaxis_transform())
    axes.set_xlabel("time (s)")
    title = fileio.path_text(os.path.basename(result.path))
    if result.padded:
        title += (f" ({result.duration:.1f} s, shorter than one window: "
                  "the grey part is zero padding)")
    if note:  # wrapped to the picture's width (about 13 characters an inch at 9 pt)
        title += "\n" + textwrap.fill(f"note: {note}", width=int(13 * width))
    axes.set_title(title, fontsize=9)
    figure.colorbar(image, ax=axes, label="score", fraction=0.03, pad=0.01)
    figure.tight_layout()
    return figure
