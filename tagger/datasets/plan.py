"""What a dataset builder writes: the clips of each split and their labels.

Dataset readers (MagnaTagATune, MSD, ...) produce a `DatasetPlan`; the record
writer turns it into shards without knowing which dataset it came from.
"""

from __future__ import annotations

import dataclasses

import numpy as np

SPLITS = ("train", "val", "test")


@dataclasses.dataclass(frozen=True)
class Clip:
    """One clip to decode: `path` is relative to the audio root."""

    clip_id: int
    path: str
    labels: tuple  # multi-hot over the plan's tag names


@dataclasses.dataclass(frozen=True)
class DatasetPlan:
    """The clips of every split, in the order they are written.

    `known_broken` maps relative paths to the reason they are skipped without
    decoding; `notes` holds counts reported in dataset_info.json (clips
    dropped for having no tag, clips outside the split lists, ...).
    """

    name: str
    audio_root: str
    tag_names: tuple
    splits: dict  # split name -> tuple of Clip
    known_broken: dict = dataclasses.field(default_factory=dict)
    notes: dict = dataclasses.field(default_factory=dict)

    def label_matrix(self, split: str) -> np.ndarray:
        """(clips, tags) uint8 labels of `split`, in write order."""
        clips = self.splits[split]
        return np.array([c.labels for c in clips], dtype=np.uint8).reshape(
            len(clips), len(self.tag_names))
