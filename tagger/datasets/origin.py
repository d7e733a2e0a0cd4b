"""Where a dataset came from: real data, or one of the project's synthetic sets.

A synthetic generator writes `synthetic.json` into its output folder; a
builder reads it with `read_origin` and records the result in
dataset_info.json, so results on synthetic data are never mistaken for
results on the real dataset whose layout they copy.
"""

from __future__ import annotations

import json

from tagger import fileio
from tagger.config import join_path
from tagger.errors import UserError

ORIGIN_FILE = "synthetic.json"


def write_synthetic_marker(out_dir: str, generator: str, **settings) -> None:
    """Marks `out_dir` as written by `generator` (a module name) with `settings`."""
    marker = {"kind": "synthetic", "generator": generator, **settings}
    fileio.write_atomic(join_path(out_dir, ORIGIN_FILE),
                        json.dumps(marker, indent=2, sort_keys=True) + "\n")


def read_origin(data_dir: str, dataset: str) -> dict:
    """{"kind": "synthetic", "generator": ..., ...} for a folder marked by a
    generator, else {"kind": "real", "dataset": dataset}."""
    path = join_path(data_dir, ORIGIN_FILE)
    if not fileio.exists(path):
        return {"kind": "real", "dataset": dataset}
    try:
        marker = json.loads(fileio.read_text(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path!r} is not valid JSON ({error}); it marks a synthetic "
                        "dataset: regenerate the dataset or remove the file") from None
    if not isinstance(marker, dict) or marker.get("kind") != "synthetic":
        raise UserError(f"{path!r} does not describe a synthetic dataset; regenerate "
                        "the dataset or remove the file")
    return {**marker, "layout": dataset}
