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


# -- a generator's run, unfinished until its last file is written -------------

UNFINISHED_FILE = "synthetic.unfinished.json"


def start_synthetic(out_dir: str, present, overwrite: bool, remove, generator: str,
                    **settings) -> None:
    """Before a generator writes into `out_dir`: a run of it with the same
    `settings` that stopped before its end is continued (its files, written
    whole, are kept; `finish_synthetic` marks the end); `present` (names of
    the generator's files there) of anything else is refused without
    `overwrite`, or removed with it (`remove(paths)`). A ValueError says why."""
    import os

    run = {"generator": generator, **settings}
    path = os.path.join(out_dir, UNFINISHED_FILE)
    unfinished = _read_json(path) if os.path.isfile(path) else None
    if unfinished is not None and not overwrite:
        if unfinished != run:
            other = ", ".join(f"{k} {unfinished.get(k)!r}" for k in sorted(settings)
                              if unfinished.get(k) != settings[k])
            raise ValueError(f"{out_dir!r} holds an unfinished synthetic dataset of other "
                             f"settings ({other or unfinished}); run with those to finish it, "
                             "or pass --overwrite to start again")
    elif present:
        if not overwrite:
            raise ValueError(f"{out_dir!r} already holds a dataset ({', '.join(present)}); "
                             "choose another folder or pass --overwrite")
        remove([os.path.join(out_dir, name) for name in (*present, UNFINISHED_FILE)])
    os.makedirs(out_dir, exist_ok=True)
    fileio.write_atomic(path, json.dumps(run, indent=2, sort_keys=True) + "\n")


def finish_synthetic(out_dir: str) -> None:
    """The generator's run in `out_dir` is complete (`start_synthetic`)."""
    import os

    os.remove(os.path.join(out_dir, UNFINISHED_FILE))


def _read_json(path: str) -> dict | None:
    try:
        value = json.loads(fileio.read_text(path))
    except (ValueError, UnicodeDecodeError):  # damaged: not a run to continue
        return None
    return value if isinstance(value, dict) else None
