"""The per-file tag report as a table, JSON or CSV.

- json: a JSON array, one object per file in input order:
  `{"path", "duration" (s), "sample_rate" (the file's own), "windows",
  "padded", "tags" (sorted by score, descending), "scores" (same order)}`,
  and `"note"` when the model gives one (`models.saved.synthetic_note`: a
  model trained on the synthetic dataset).
- csv: a header `path,duration,windows,padded,<every tag in the model's
  order>`, then one row per file with every tag's clip score.
- table: per file a header line and the selected tags with scores; a file
  shorter than one window is marked `*` and explained under the table; the
  model's note, if any, is the last line (`note: ...`).
- csv holds data only: no note.

Clip scores are the mean of the window scores. Scores are written with 6
decimals. A path is written as its `fileio.path_text` (a backslash doubled,
each byte that is not valid UTF-8 as `\\xNN`), one text per file, which
`fileio.path_from_text` maps back. A CSV cell that a spreadsheet would
run as a formula (a path or tag starting with `=`, `+`, `-`, `@`, a quote
or a space) has a quote before it (`csv_cells.text_cell`), which
`csv_cells.from_text_cell` drops.
"""

from __future__ import annotations

import json
import re

import numpy as np

from tagger.csv_cells import csv_text
from tagger.fileio import path_text

FORMATS = ("table", "json", "csv")
DEFAULT_TOP_K = 5
PADDED_MARK = "*"


def selected_indices(scores: np.ndarray, top_k: int | None = None,
                     threshold: float | None = None) -> list[int]:
    """The indices of the tags a report lists, by score, highest first
    (ties: model order).

    With `threshold`: every tag scoring at least `threshold`, at most
    `top_k` of them when `top_k` is given. Without: the `top_k` best
    (default 5).
    """
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    if threshold is not None:
        order = [i for i in order if scores[i] >= threshold]
        if top_k is not None:
            order = order[:top_k]
    else:
        order = order[:DEFAULT_TOP_K if top_k is None else top_k]
    return [int(i) for i in order]


def select_tags(scores: np.ndarray, tag_names, top_k: int | None = None,
                threshold: float | None = None) -> list[tuple[str, float]]:
    """(tag, score) pairs of the `selected_indices`, highest score first."""
    return [(tag_names[i], float(scores[i])) for i in selected_indices(scores, top_k, threshold)]


def _round(value: float) -> float:
    return round(float(value), 6)


def to_json(results, tag_names, top_k=None, threshold=None, note=None) -> str:
    rows = []
    for result in results:
        selected = select_tags(result.clip_scores, tag_names, top_k, threshold)
        rows.append({
            "path": path_text(result.path),
            "duration": round(result.duration, 3),
            "sample_rate": result.file_sample_rate,
            "windows": result.windows,
            "padded": result.padded,
            "tags": [tag for tag, _ in selected],
            "scores": [_round(score) for _, score in selected],
            **({"note": note} if note else {}),
        })
    # allow_nan=False: a bare NaN is not JSON; the pipeline never passes one on
    return json.dumps(rows, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


def to_csv(results, tag_names) -> str:
    rows = ([path_text(result.path), f"{result.duration:.3f}", result.windows,
             int(result.padded), *(f"{score:.6f}" for score in result.clip_scores)]
            for result in results)
    return csv_text([["path", "duration", "windows", "padded", *tag_names], *rows])


def to_table(results, tag_names, top_k=None, threshold=None, note=None) -> str:
    lines, padded = [], False
    width = max([len(name) for name in tag_names] + [3])
    for result in results:
        mark = f" {PADDED_MARK}" if result.padded else ""
        padded |= result.padded
        windows = f"{result.windows} window{'s' if result.windows != 1 else ''}"
        lines.append(f"{path_text(result.path)}  ({result.duration:.1f} s, {windows}){mark}")
        selected = select_tags(result.clip_scores, tag_names, top_k, threshold)
        if not selected:
            lines.append(f"  (no tag scores {threshold:g} or more)")
        for tag, score in selected:
            lines.append(f"  {tag:<{width}}  {score:.3f}")
        lines.append("")
    if padded:
        lines.append(f"{PADDED_MARK} shorter than one model window: zero-padded to one "
                     "window; scores are less reliable")
    if note and lines:
        lines.append(f"note: {note}")
    return "\n".join(lines).rstrip("\n") + "\n" if lines else ""


_TABLE_HEADER = re.compile(r"^.+  \(\d+\.\d s, \d+ windows?\)( \*)?$")
_JSON_START = re.compile(r'^\[\s*(\]|\{\s*"path":)')
CSV_HEADER = "path,duration,windows,padded"


def is_report(path: str) -> bool:
    """Whether the file at `path` is a report tag.py wrote, in any format
    (its first bytes: a JSON array of objects starting with "path", the CSV
    header, or a table's first file line), so `--out` may replace it."""
    from tagger import fileio

    head = fileio.head_bytes(path).decode("utf-8", "replace")
    line = head.split("\n", 1)[0]
    return bool(_JSON_START.match(head) or line.startswith(CSV_HEADER + ",")
                or _TABLE_HEADER.match(line))


def render(results, tag_names, fmt: str, top_k=None, threshold=None, note=None) -> str:
    """The report in `fmt`; `note`: a line about the model for the table
    and JSON (`models.saved.synthetic_note`), or None."""
    if fmt == "json":
        return to_json(results, tag_names, top_k, threshold, note)
    if fmt == "csv":
        return to_csv(results, tag_names)
    if fmt == "table":
        return to_table(results, tag_names, top_k, threshold, note)
    raise ValueError(f"unknown format {fmt!r}; expected one of {FORMATS}")
