"""dataset_info.json: the one description of a built dataset every reader trusts."""

from __future__ import annotations

import dataclasses
import json

from tagger import fileio
from tagger.config import join_path
from tagger.errors import UserError
from tagger.strict_json import read_dataclass

INFO_FILE = "dataset_info.json"
SKIPPED_SHOWN = 20  # skipped clips listed by `describe`; all are in the file
SCHEMA_VERSION = 1  # files without a schema_version key are version 1


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """A built dataset, as its dataset_info.json describes it.

    `tag_names` (`num_tags` of them) in label order; segments of
    `segment_length` samples at `sample_rate` Hz stored as `features`
    (`kind` raw or logmel, `dtype`, `logmel` settings or None) of shape
    `segment_shape`; `splits`: per split its clips, segments, shard file
    names, each shard's SHA-256 of its records' lengths and CRC32Cs
    (`shard_framing_sha256`; records built before hold the SHA-256 of each
    shard's bytes, `shard_sha256`, or neither) and whether it is labelled; `skipped` and
    `cut` clips with their reasons; `origin` (real or synthetic data),
    `notes` and `build` (the source's settings) as the plan recorded them;
    `fingerprint` hashes what decides the bytes of the shards (the plan and
    the build's settings; `records.fingerprint` identifies the records).
    """

    name: str
    origin: dict
    builder_version: str
    tag_names: tuple
    num_tags: int
    sample_rate: int
    segment_length: int
    features: dict
    segment_shape: tuple
    splits: dict
    skipped: list
    cut: list
    max_seconds: float | None
    notes: dict
    build: dict
    fingerprint: str
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self):
        object.__setattr__(self, "tag_names", tuple(str(t) for t in self.tag_names))
        object.__setattr__(self, "segment_shape", tuple(self.segment_shape))

    def to_json(self) -> dict:
        """The JSON-ready dict written as dataset_info.json."""
        data = dataclasses.asdict(self)
        data.update(tag_names=list(self.tag_names), segment_shape=list(self.segment_shape))
        return data

    @classmethod
    def from_json(cls, data, path: str) -> DatasetInfo:
        """The info of a dict read from the file `path`; a missing field or a
        newer schema is a UserError."""
        return read_dataclass(cls, data, repr(path), "rebuild the dataset with this "
                              "version of build_mtt.py", SCHEMA_VERSION)


def load_info(data_dir: str) -> DatasetInfo:
    """Reads `<data_dir>/dataset_info.json`; a missing file is a UserError."""
    path = join_path(data_dir, INFO_FILE)
    if not fileio.exists(path):
        below = join_path(data_dir, "tfrecord")  # build_mtt.py's --out-dir in it
        if fileio.exists(join_path(below, INFO_FILE)):  # the folder above (resemul's)
            raise UserError(f"{path!r} not found; --data-dir must be a folder written by "
                            f"build_mtt.py: its records are in {below!r}, pass --data-dir "
                            "with that folder")
        raise UserError(f"{path!r} not found; --data-dir must be a folder written by "
                        "build_mtt.py (python build_mtt.py --out-dir DIR)")
    try:
        data = json.loads(fileio.read_text(path))
    except json.JSONDecodeError as error:
        raise UserError(f"{path!r} is not valid JSON ({error}); rebuild the dataset") from None
    return DatasetInfo.from_json(data, path)


def shard_paths(data_dir: str, info: DatasetInfo, split: str) -> list:
    if split not in info.splits:
        raise UserError(f"split {split!r} is not in the dataset; "
                        f"available: {', '.join(info.splits)}")
    return [join_path(data_dir, name) for name in info.splits[split]["shards"]]


def unreadable_shard(path: str, split: str, problem: str) -> UserError:
    """The one error of every reader for a shard of `split` it cannot read
    to its end; `problem` says how ("is missing", "is damaged (...)")."""
    return UserError(f"shard {path!r} of the {split} split {problem}; rebuild the dataset "
                     "(delete that shard and rerun build_mtt.py with the same settings, "
                     "or build anew with --overwrite)")


def clip_count_error(data_dir: str, split: str, found: int, expected: int) -> UserError:
    """The error of a split whose shards read cleanly but hold another
    number of clips than dataset_info.json lists (a shard cut at a record
    boundary reads as a clean file)."""
    return UserError(f"the {split} split of {data_dir!r} holds {found} clips but its "
                     f"dataset_info.json lists {expected}: a shard is incomplete or was "
                     "replaced; rebuild the dataset (rerun build_mtt.py with --overwrite)")


def is_labelled(info: DatasetInfo, split: str) -> bool:
    """False for a split stored without labels (e.g. an MSD `student` split)."""
    return bool(info.splits[split]["labelled"])


def labelled_splits(info: DatasetInfo) -> list:
    return [s for s in info.splits if is_labelled(info, s)]


def require_labelled(info: DatasetInfo, split: str) -> None:
    """A UserError unless `split` exists and has labels to evaluate against."""
    if split not in info.splits:
        raise UserError(f"split {split!r} is not in the dataset; "
                        f"available: {', '.join(labelled_splits(info))}")
    if not is_labelled(info, split):
        raise UserError(f"split {split!r} holds no labels (unlabelled audio for "
                        "noisy-student training); evaluate on a labelled split: "
                        f"{', '.join(labelled_splits(info))}")


def require_raw(info: DatasetInfo, data_dir: str, purpose: str) -> None:
    """A UserError unless the records hold raw audio, which `purpose` (a
    flag or what it does, as the message names it) reads."""
    kind = info.features["kind"]
    if kind != "raw":
        raise UserError(f"{purpose} reads the records' audio but {data_dir!r} holds {kind} "
                        "records; build the dataset with --features raw")


def describe(info: DatasetInfo, out_dir: str) -> str:
    """A few human-readable lines: split sizes, shards, skipped clips."""
    features = info.features
    kind = features["kind"]
    if kind == "raw":
        kind = f"raw {features['dtype']}"
    lines = [f"dataset {info.name!r} in {fileio.path_text(out_dir)}: {info.num_tags} tags, "
             f"{kind} segments of shape {info.segment_shape} "
             f"at {info.sample_rate} Hz",
             f"  from {describe_origin(info.origin)}"]
    for split, s in info.splits.items():
        unlabelled = "" if is_labelled(info, split) else "  (unlabelled)"
        lines.append(f"  {split:7s} {s['clips']:6d} clips {s['segments']:7d} segments "
                     f"in {len(s['shards'])} shard(s){unlabelled}")
    notes = info.notes
    if notes.get("dropped_without_top_tags"):
        lines.append(f"  dropped {notes['dropped_without_top_tags']} clip(s) with none "
                     f"of the top {info.num_tags} tags")
    cut = info.cut
    if cut:
        lines.append(f"  cut {len(cut)} clip(s) longer than {info.max_seconds:g} s "
                     "(listed in dataset_info.json)")
    missing = notes.get("tracks_without_audio") or {}
    if sum(missing.values()):
        per_split = ", ".join(f"{n} {s}" for s, n in missing.items() if n)
        lines.append(f"  left out {sum(missing.values())} track(s) without audio ({per_split}; "
                     "see notes in dataset_info.json)")
    skipped = info.skipped
    if skipped:
        lines.append(f"  skipped {len(skipped)} clip(s):")
    lines += [f"    {s['path']}: {s['reason']}" for s in skipped[:SKIPPED_SHOWN]]
    if len(skipped) > SKIPPED_SHOWN:
        lines.append(f"    ... and {len(skipped) - SKIPPED_SHOWN} more, listed in {INFO_FILE}")
    return "\n".join(lines)


def describe_origin(origin: dict) -> str:
    """Where a dataset_info's `origin` says the data came from, in words."""
    if origin.get("kind") == "synthetic":
        seed = f", seed {origin['seed']}" if "seed" in origin else ""
        return f"synthetic data from {origin.get('generator', '?')}{seed}"
    if origin.get("kind") == "real":
        return f"real {origin.get('dataset', '?')} data"
    return "data of unrecorded origin"
