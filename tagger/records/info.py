"""dataset_info.json: the one description of a built dataset every reader trusts."""

from __future__ import annotations

import json

from tagger import fileio
from tagger.config import join_path
from tagger.errors import UserError

INFO_FILE = "dataset_info.json"
SKIPPED_SHOWN = 20  # skipped clips listed by `describe`; all are in the file


def load_info(data_dir: str) -> dict:
    """Reads `<data_dir>/dataset_info.json`; a missing file is a UserError."""
    path = join_path(data_dir, INFO_FILE)
    if not fileio.exists(path):
        raise UserError(f"{path!r} not found; --data-dir must be a folder written by "
                        "build_mtt.py (python build_mtt.py --out-dir DIR)")
    try:
        info = json.loads(fileio.read_text(path))
    except json.JSONDecodeError as error:
        raise UserError(f"{path!r} is not valid JSON ({error}); rebuild the dataset") from None
    missing = [k for k in ("tag_names", "splits", "segment_shape", "features",
                           "sample_rate", "segment_length") if k not in info]
    if missing:
        raise UserError(f"{path!r} lacks {', '.join(missing)}; rebuild the dataset "
                        "with this version of build_mtt.py")
    return info


def shard_paths(data_dir: str, info: dict, split: str) -> list:
    if split not in info["splits"]:
        raise UserError(f"split {split!r} is not in the dataset; "
                        f"available: {', '.join(info['splits'])}")
    return [join_path(data_dir, name) for name in info["splits"][split]["shards"]]


def is_labelled(info: dict, split: str) -> bool:
    """False for a split stored without labels (e.g. an MSD `student` split);
    datasets built before unlabelled splits existed are labelled throughout."""
    return bool(info["splits"][split].get("labelled", True))


def labelled_splits(info: dict) -> list:
    return [s for s in info["splits"] if is_labelled(info, s)]


def require_labelled(info: dict, split: str) -> None:
    """A UserError unless `split` exists and has labels to evaluate against."""
    if split not in info["splits"]:
        raise UserError(f"split {split!r} is not in the dataset; "
                        f"available: {', '.join(labelled_splits(info))}")
    if not is_labelled(info, split):
        raise UserError(f"split {split!r} holds no labels (unlabelled audio for "
                        "noisy-student training); evaluate on a labelled split: "
                        f"{', '.join(labelled_splits(info))}")


def describe(info: dict, out_dir: str) -> str:
    """A few human-readable lines: split sizes, shards, skipped clips."""
    features = info["features"]
    kind = features["kind"]
    if kind == "raw":
        kind = f"raw {features['dtype']}"
    lines = [f"dataset {info['name']!r} in {out_dir}: {info['num_tags']} tags, "
             f"{kind} segments of shape {tuple(info['segment_shape'])} "
             f"at {info['sample_rate']} Hz",
             f"  from {describe_origin(info.get('origin', {}))}"]
    for split, s in info["splits"].items():
        unlabelled = "" if is_labelled(info, split) else "  (unlabelled)"
        lines.append(f"  {split:7s} {s['clips']:6d} clips {s['segments']:7d} segments "
                     f"in {len(s['shards'])} shard(s){unlabelled}")
    notes = info.get("notes", {})
    if notes.get("dropped_without_top_tags"):
        lines.append(f"  dropped {notes['dropped_without_top_tags']} clip(s) with none "
                     f"of the top {info['num_tags']} tags")
    cut = info.get("cut", [])
    if cut:
        lines.append(f"  cut {len(cut)} clip(s) longer than {info['max_seconds']:g} s "
                     "(listed in dataset_info.json)")
    missing = notes.get("tracks_without_audio") or {}
    if sum(missing.values()):
        per_split = ", ".join(f"{n} {s}" for s, n in missing.items() if n)
        lines.append(f"  left out {sum(missing.values())} track(s) without audio ({per_split}; "
                     "see notes in dataset_info.json)")
    skipped = info["skipped"]
    lines.append(f"  skipped {len(skipped)} clip(s):")
    lines += [f"    {s['path']}: {s['reason']}" for s in skipped[:SKIPPED_SHOWN]]
    if len(skipped) > SKIPPED_SHOWN:
        lines.append(f"    ... and {len(skipped) - SKIPPED_SHOWN} more, listed in {INFO_FILE}")
    return "\n".join(lines)


def is_synthetic(info: dict) -> bool:
    """True for a dataset_info dict built from synthetic data."""
    return info.get("origin", {}).get("kind") == "synthetic"


def describe_origin(origin: dict) -> str:
    """Where a dataset_info's `origin` says the data came from, in words."""
    if origin.get("kind") == "synthetic":
        seed = f", seed {origin['seed']}" if "seed" in origin else ""
        return f"synthetic data from {origin.get('generator', '?')}{seed}"
    if origin.get("kind") == "real":
        return f"real {origin.get('dataset', '?')} data"
    return "data of unrecorded origin"
