"""A folder of audio files as a dataset source (`SOURCE`): every file under
the folder whose extension is a format the decoder reads
(`tagger.audio.is_audio_name`; hidden files and folders left out), in
sorted order, split into train/val/test with a seed, by file or by the
folder a file sits in (an album stays in one split).

Without labels the records carry no tags (`tag_names` is empty) and every
file is split: audio for a teacher to label. With `labels`, a CSV

    path,tags
    rock/album1/01.mp3,rock;guitar
    jazz/02.flac,jazz

(paths relative to the folder, tags separated by ';', a file with none
allowed: `labels_csv`, the format's reader and writer), the listed files
are split with their tags, ordered by descending count (ties by name),
and the files it does not list form the unlabelled `student` split.
With `labels_from`, the tags come from the files themselves
(`file_labels`): 'folders', each file's top folder, or 'tags:NAME', each
value of a text tag the files carry (genre, mood); they are ordered and
split as the CSV's, and the files given no tag form the `student` split.
Clip ids are the files' positions in the sorted listing. The folder may be any tf.io.gfile path.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter

import numpy as np

from tagger import fileio
from tagger.audio import is_audio_name
from tagger.datasets.file_labels import file_tags, folder_tags, labels_source
from tagger.datasets.labels_csv import read_labels
from tagger.datasets.origin import read_origin
from tagger.datasets.source import DatasetSource, setting
from tagger.errors import UserError
from tagger.records.plan import SPLITS, STUDENT_SPLIT, Clip, DatasetPlan


@dataclasses.dataclass(frozen=True)
class FolderSettings:
    """How a folder of audio is split (beyond the folder): `val_fraction`
    and `test_fraction` of the files (train gets the rest), `split_by`
    file or folder, the `seed` of the split and of the train order, and an
    optional `labels` CSV or `labels_from` source (one of them)."""

    val_fraction: float = setting(0.1, "share of the files in the val split, in [0, 1)",
                                  low=0, high=1, metavar="F")
    test_fraction: float = setting(0.1, "share of the files in the test split, in [0, 1)",
                                   low=0, high=1, metavar="F")
    split_by: str = setting("file", "'file': each file drawn on its own; 'folder': all "
                                    "files of a folder in one split (an album stays "
                                    "together)", choices=["file", "folder"])
    seed: int = setting(0, "seeds the split and the order of the train clips", low=0)
    labels: str | None = setting(None, "CSV with a header path,tags and one row per "
                                       "labelled file (tags separated by ';'; cells by "
                                       "commas, semicolons or tabs); files it "
                                       "does not list form the unlabelled student split "
                                       "(default: none, no tags)", metavar="CSV")
    labels_from: str | None = setting(None, "tags from the files themselves: 'folders' (each "
                                            "file's top folder under FOLDER) or 'tags:NAME' "
                                            "(each value of a text tag the files carry, "
                                            "e.g. tags:genre); files without one form the "
                                            "unlabelled student split (default: none)",
                                      metavar="SOURCE")

    def __post_init__(self):
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} (--{name.replace('_', '-')}) must lie in [0, 1), "
                                 f"got {value}")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError("--val-fraction and --test-fraction must leave a share for "
                             f"train (sum below 1), got {self.val_fraction} + "
                             f"{self.test_fraction}")
        if self.split_by not in ("file", "folder"):
            raise ValueError(f"split_by (--split-by) must be file or folder, got "
                             f"{self.split_by!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed (--seed) must be an integer >= 0, got {self.seed!r}")
        if self.labels_from is not None:
            labels_source(self.labels_from)
            if self.labels is not None:
                raise ValueError(f"--labels {self.labels!r} and --labels-from "
                                 f"{self.labels_from} both name the tags; give one of them")


def audio_files(folder: str) -> list:
    """The audio files under `folder`, relative to it ('/'-separated), sorted."""
    if not fileio.isdir(folder):
        what = "is not a folder" if fileio.exists(folder) else "does not exist"
        raise UserError(f"{folder!r} {what}; name a folder of audio files")
    if fileio.is_local(folder):
        walk = os.walk(folder)
    else:
        import tensorflow as tf

        walk = tf.io.gfile.walk(folder)
    found = []
    for parent, folders, files in walk:
        folders[:] = [name for name in folders if not name.startswith(".")]
        below = parent[len(folder):].strip("/").replace(os.sep, "/")
        found += [f"{below}/{name}" if below else name for name in files
                  if not name.startswith(".") and is_audio_name(name)]
    if not found:
        raise UserError(f"folder {folder!r} holds no audio file (no file with an audio "
                        "extension such as .mp3, .flac, .wav, .ogg or .m4a); name a folder "
                        "of music")
    return sorted(found)


def labels_from(root: str, files: list, source: str, progress: bool = True) -> tuple:
    """(tag names, {relative path: multi-hot tuple}) of the files the
    --labels-from `source` gives a tag (`file_labels`)."""
    kind, key = labels_source(source)
    if kind == "folders":
        tags = folder_tags(files)
        missing = f"no audio file of {root!r} lies in a subfolder"
    else:
        tags = file_tags(root, files, key, progress)
        missing = f"no audio file of {root!r} carries a {key!r} tag"
    if not tags:
        raise UserError(f"--labels-from {source}: {missing}; expected at least one file "
                        "with a tag (or build without labels)")
    return multi_hot(tags)


def multi_hot(tags: dict) -> tuple:
    """(tag names by descending count, ties by name; {path: multi-hot
    tuple}) of {path: set of tags}."""
    counts = Counter(t for names in tags.values() for t in names)
    names = tuple(sorted(counts, key=lambda t: (-counts[t], t)))
    return names, {p: tuple(int(t in given) for t in names) for p, given in tags.items()}


def split_rows(paths: list, settings: FolderSettings, what: str | None = "files") -> dict:
    """Split name -> indices into `paths`: groups (each file, or each
    folder's files) are shuffled with the seed and given to train, val and
    test by where their middle falls among the files; train is shuffled,
    val and test keep path order. A split left empty is refused unless its
    fraction is 0 (no such split asked for); `what` names the paths in
    that message (None: empty splits are taken, as a simulation of a few
    labels may leave them)."""
    rng = np.random.default_rng(settings.seed)
    groups = {}
    for i, path in enumerate(paths):
        key = path.rpartition("/")[0] if settings.split_by == "folder" else path
        groups.setdefault(key, []).append(i)
    groups = list(groups.values())
    total = len(paths)
    test = round(settings.test_fraction * total)
    bounds = (total - round(settings.val_fraction * total) - test, total - test)
    rows, done = {name: [] for name in SPLITS}, 0
    for g in rng.permutation(len(groups)):
        middle = done + len(groups[g]) / 2
        name = "train" if middle < bounds[0] else "val" if middle < bounds[1] else "test"
        rows[name] += groups[g]
        done += len(groups[g])
    if what is not None:
        _refuse_empty_splits(rows, settings, len(groups), what)
    return {name: list(rng.permutation(sorted(rows[name]))) if name == "train"
            else sorted(rows[name]) for name in SPLITS}


def _refuse_empty_splits(rows: dict, settings: FolderSettings, groups: int,
                         what: str) -> None:
    """A UserError saying why and what to do when train, or val with a
    fraction above 0, got no file: train.py needs both (an empty test
    split is left out of a run's last evaluation)."""
    fractions = {"train": 1.0, "val": settings.val_fraction}
    empty = [name for name in fractions if fractions[name] > 0 and not rows[name]]
    if not empty:
        return
    total = sum(len(r) for r in rows.values())
    counts = ", ".join(f"{name} {len(rows[name])}" for name in SPLITS)
    flags = [f"--{name}-fraction" for name in empty if name != "train"]
    if settings.split_by == "folder":
        why = f"--split-by folder gives each of the {groups} folder(s) whole to one split"
        advice = "use --split-by file or more folders"
    else:
        shares = " and ".join(f"{flag} {fractions[flag[2:-9]]}" for flag in flags)
        noun = what[:-1] if total == 1 else what  # "1 file"
        rounds = "round" if len(flags) > 1 else "rounds"
        why = (f"{shares} of {total} {noun} {rounds} to none" if flags else
               f"--val-fraction and --test-fraction leave train none of the {total} {what}")
        advice = "add files"
    if "train" in empty:
        advice += ", or lower --val-fraction and --test-fraction"
    else:
        advice += (f", raise {' and '.join(flags)}, or give {' and '.join(flags)} 0 for no "
                   f"{' and no '.join(empty)} split")
    raise UserError(f"the split leaves {' and '.join(empty)} empty ({what}: {counts}; {why}); "
                    f"{advice}")


def plan_folder(data_dir: str, settings: FolderSettings = FolderSettings(),
                progress: bool = True) -> DatasetPlan:
    """Lists the folder's audio, reads its labels and splits it (`progress`:
    a bar while reading the files' tags)."""
    paths = audio_files(data_dir)
    tag_names, labels = (), {}
    if settings.labels is not None:
        tag_names, labels = multi_hot(read_labels(settings.labels, paths))
    elif settings.labels_from is not None:
        tag_names, labels = labels_from(data_dir, paths, settings.labels_from, progress)
    labelled = [p for p in paths if not labels or p in labels]
    position = {p: i for i, p in enumerate(paths)}
    rows = split_rows(labelled, settings, "labelled files" if labels else "files")
    splits = {name: tuple(Clip(position[labelled[i]], labelled[i],
                               labels.get(labelled[i], ())) for i in index)
              for name, index in rows.items()}
    unlisted = [p for p in paths if labels and p not in labels]
    if unlisted:
        splits[STUDENT_SPLIT] = tuple(Clip(position[p], p, None) for p in unlisted)
    folders = len({p.rpartition("/")[0] for p in labelled})
    return DatasetPlan(
        name="folder", audio_root=data_dir, tag_names=tag_names, splits=splits,
        notes={"audio_files": len(paths), "folders": folders, "split_by": settings.split_by,
               "unlabelled_files": len(unlisted)},
        unlabelled=(STUDENT_SPLIT,) if unlisted else (),
        origin=read_origin(data_dir, "audio folder"),
        settings=SOURCE.describe_settings(settings))


SOURCE = DatasetSource(
    name="folder", version="1.0", settings_type=FolderSettings, plan=plan_folder,
    located=("labels",), title="a folder of audio files", data_dir_default=None,
    data_dir_help="the folder of audio files (searched with its subfolders)",
    max_seconds=600.0,
    manual_download=(
        "Any folder of music: every file with an audio extension under it is a clip "
        "(MP3, FLAC, WAV, Ogg, M4A and the other formats libsndfile or FFmpeg decode); "
        "see docs/commands/build_folder.md for the labels CSV"))
