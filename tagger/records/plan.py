"""What a dataset builder writes: the clips of each split and their labels.

Dataset readers (tagger.datasets: MagnaTagATune, MSD, ...) produce a
`DatasetPlan`; the record writer (local or Beam) turns it into shards
without knowing which dataset it came from. The record format owns this
contract, so it sits here, below the datasets.
"""

from __future__ import annotations

import collections.abc
import dataclasses

import numpy as np

SPLITS = ("train", "val", "test")  # the labelled splits every dataset has
STUDENT_SPLIT = "student"  # the usual name of an unlabelled split


@dataclasses.dataclass(frozen=True)
class Clip:
    """One clip to decode: `path` is relative to the audio root; `labels` is
    None for a clip of an unlabelled split."""

    clip_id: int
    path: str
    labels: tuple | None  # multi-hot over the plan's tag names


class ClipColumns(collections.abc.Sequence):
    """A split's clips stored as columns, for datasets of a million clips:
    `clip_ids` (int64), `paths` (bytes, relative to the audio root) and
    `labels` ((clips, tags) uint8, or None for an unlabelled split). Items
    are `Clip`s made on access; a slice is a view, not a copy."""

    def __init__(self, clip_ids, paths, labels=None):
        self.clip_ids = np.asarray(clip_ids, np.int64)
        self.paths = np.asarray(paths, dtype=np.bytes_)
        self.labels = None if labels is None else np.asarray(labels, np.uint8)
        if len(self.paths) != len(self.clip_ids) or (
                self.labels is not None and len(self.labels) != len(self.clip_ids)):
            raise ValueError("clip_ids, paths and labels must have one row per clip")

    def __len__(self):
        return len(self.clip_ids)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ClipColumns(self.clip_ids[index], self.paths[index],
                               None if self.labels is None else self.labels[index])
        labels = None if self.labels is None else tuple(int(v) for v in self.labels[index])
        return Clip(int(self.clip_ids[index]), self.paths[index].decode(), labels)


@dataclasses.dataclass(frozen=True)
class DatasetPlan:
    """The clips of every split, in the order they are written.

    `splits` maps split names to clips, in write order: train, val and test
    always, and any further split (an unlabelled `student` split for
    noisy-student training, say). `unlabelled` names the splits whose clips
    carry no labels. `known_broken` maps relative paths to the reason they
    are skipped without decoding; `notes` holds counts reported in
    dataset_info.json (clips dropped for having no tag, clips outside the
    split lists, ...); `origin` says where the data came from
    ({"kind": "real", "dataset": "magnatagatune"} or {"kind": "synthetic",
    "generator": ..., "seed": ...}); `settings`: the source's settings that
    made the plan, recorded in dataset_info.json.
    """

    name: str
    audio_root: str
    tag_names: tuple
    splits: dict  # split name -> tuple of Clip
    known_broken: dict = dataclasses.field(default_factory=dict)
    notes: dict = dataclasses.field(default_factory=dict)
    unlabelled: tuple = ()
    origin: dict = dataclasses.field(default_factory=dict)
    settings: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        missing = [s for s in SPLITS if s not in self.splits]
        if missing:
            raise ValueError(f"a dataset plan needs the splits {SPLITS}, missing {missing}")
        unknown = [s for s in self.unlabelled if s not in self.splits]
        if unknown:
            raise ValueError(f"unlabelled splits {unknown} are not in the plan")
        if any(s in SPLITS for s in self.unlabelled):
            raise ValueError(f"the splits {SPLITS} are labelled; name an unlabelled "
                             f"split otherwise (e.g. {STUDENT_SPLIT!r})")

    def is_labelled(self, split: str) -> bool:
        return split not in self.unlabelled

    def label_matrix(self, split: str) -> np.ndarray:
        """(clips, tags) uint8 labels of `split`, in write order (zeros for
        an unlabelled split)."""
        clips = self.splits[split]
        if isinstance(clips, ClipColumns) and clips.labels is not None:
            return clips.labels
        if not self.is_labelled(split):
            return np.zeros((len(clips), len(self.tag_names)), np.uint8)
        return np.array([c.labels for c in clips], dtype=np.uint8).reshape(
            len(clips), len(self.tag_names))
