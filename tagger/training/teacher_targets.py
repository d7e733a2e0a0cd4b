"""Soft targets of trained taggers (teachers) for every segment of a
dataset's records, computed once and stored beside them.

A teacher scores each clip at its own sample rate and window, as tag.py
scores a file: the clip's audio (its segments joined, at the records'
rate) is resampled to the teacher's rate (`audio.resample`, the builders'
soxr) and cut into the teacher's windows (`audio.audio_windows`, with the
hop and edge padding of `models.saved.window_grid`), which the keras
engine's predictor scores (`inference.engine.registry.make_predictor`;
`model_outputs.ModelFile.clips_outputs`, many clips' windows in shared
batches, as with the body's embeddings of train.py --from). A segment's
target is the mean of the scores of the teacher windows that overlap it,
each weighted by the overlap's duration; a segment that no window
reaches (past the last whole window) takes the nearest window's scores.

Stored in `<records>/teacher_targets/<fingerprint>/`, the fingerprint the
first 16 hex digits of the teacher file's SHA-256
(`inference.common.model_fingerprint`): `teacher.json` (the teacher, the
stores' format version, its tags, rate, window, hop and edge padding, and
the fingerprint of the records it scored,
`records.fingerprint.records_fingerprint`: another of any of them scores
the records anew) and one `<shard>.npz` per
shard of records (clip_id, num_segments and targets: the segments of all
the shard's clips in order x tags, float32), each written atomically once
its shard is scored: an interrupted run goes on from the first missing
shard, and a rerun reads them back (`model_outputs.stored_rows`, the
store the body's embeddings use too). A stored shard that cannot be read
(cut short by a full disk or an interrupted copy, empty, or holding other
arrays) is scored again, with one line naming it and why, and so is one
whose shard of records is another file now than the one it was scored
from. Records rebuilt with other settings or clips get their targets
anew, and stored targets of other clips than the records' are scored
again.

Several teachers: the student learns the tags they share, in the first
teacher's order, their targets averaged; the tags that others lack are
dropped and named in one line.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tagger.config import join_path
from tagger.errors import UserError
from tagger.evaluation.against import TARGETS_DIR
from tagger.records.info import DatasetInfo, require_raw
from tagger.training.model_outputs import ClipRows, ModelFile, Store, store_key, stored_rows

TEACHER_FILE = "teacher.json"


class SplitTargets(ClipRows):
    """One split's targets, clips in split order: ClipRows whose rows are
    the clips' segments and whose width is the teachers' tags."""

    STORED_FIELDS = ("clip_ids", "num_segments", "values")  # the arrays of a stored shard

    @property
    def num_segments(self) -> np.ndarray:
        """(clips,) segments of each clip."""
        return self.num_rows

    def per_clip(self) -> list:
        """One (segments, tags) array per clip."""
        return np.split(self.values, self.offsets[1:-1])

    def columns(self, index) -> SplitTargets:
        return dataclasses.replace(self, values=self.values[:, index])


def overlap_weights(segments: int, segment_seconds: float, window_starts: np.ndarray,
                    window_seconds: float) -> np.ndarray:
    """(segments, windows) weights, each row summing to 1: the duration of
    each window's overlap with the segment, normalised; the nearest window
    (by centres) for a segment that none overlaps. Times in seconds from
    the clip's start; a window may start before it (edge padding)."""
    seg_start = np.arange(segments)[:, None] * segment_seconds
    win_start = np.asarray(window_starts, np.float64)[None, :]
    overlap = np.clip(np.minimum(seg_start + segment_seconds, win_start + window_seconds)
                      - np.maximum(seg_start, win_start), 0, None)
    for row in np.flatnonzero(overlap.sum(axis=1) <= 0):
        centres = win_start[0] + window_seconds / 2
        overlap[row, np.argmin(np.abs(centres - (seg_start[row, 0] + segment_seconds / 2)))] = 1
    return overlap / overlap.sum(axis=1, keepdims=True)


class Teacher(ModelFile):
    """A saved tagger (a registry name or a path) as a source of targets;
    the model itself is loaded only when something is to be scored
    (`model_outputs.ModelFile`); `flag` names it in messages (train.py's
    --distil, eval.py's --against, the demo's --teacher)."""

    def __init__(self, name: str, progress: bool = True, log=print, flag: str = "--distil"):
        super().__init__(name, "teacher", flag, progress, log)
        self.tag_names = list(self.info.tag_names) if self.info else []
        if not self.tag_names:
            raise UserError(f"teacher {self.name!r} names no tags (not saved by train.py or "
                            "convert_weights.py), so its tags cannot be mapped to a "
                            "student's; use a model that carries its tag names")

    def predictor(self, embeddings: bool = False):
        p = super().predictor(embeddings)
        if p.tag_names != self.tag_names:
            raise UserError(f"teacher {self.name!r} names {len(self.tag_names)} tags "
                            f"but predicts {len(p.tag_names)}; its tags cannot be mapped")
        return p

    def describe(self) -> dict:
        """What decides its targets (`model_outputs.store_key`: the file, the
        windows, the stores' format) and its tags; read without loading it."""
        return store_key(self, tag_names=self.tag_names)

    def targets_of_clips(self, clips, sample_rate: int, batch_size: int = 32):
        """Yields (clip, (segments, tags) targets) of every clip of the
        iterable `clips` (clips of `reader.clip_dataset`: float32 segments
        (segments, segment_length) at `sample_rate`), in order (module
        docstring)."""
        for clip, outputs in self.clips_outputs(clips, sample_rate, batch_size=batch_size):
            segments = clip["segments"]
            weights = overlap_weights(len(segments), segments.shape[1] / sample_rate,
                                      outputs.starts, outputs.window_seconds)
            yield clip, (weights @ np.asarray(outputs.scores, np.float64)).astype(np.float32)


def split_targets(teacher: Teacher, data_dir: str, info: DatasetInfo, split: str,
                  progress: bool = False, log=print) -> SplitTargets:
    """The teacher's targets for every clip of `split`, read from its entry
    beside the records, the missing shards scored and stored first
    (`model_outputs.stored_rows`)."""
    from tagger.records.batches import clip_labels

    require_raw(info, data_dir, "a teacher")
    store = Store(folder=join_path(data_dir, TARGETS_DIR, teacher.key),
                  entry_file=TEACHER_FILE,
                  made_by=teacher.describe(),
                  about={"teacher": teacher.name, "path": teacher.path},
                  what="the teacher's targets",
                  width=len(teacher.tag_names),
                  fields=SplitTargets.STORED_FIELDS,
                  redo="scoring", rows="the segments of its clips x the teacher's tags")
    ids, _ = clip_labels(data_dir, split, info)
    rows, computed = stored_rows(
        store, data_dir, info, split,
        lambda clips: teacher.targets_of_clips(clips, info.sample_rate),
        progress, log, label=f"teacher {teacher.name}: {split}", clip_ids=ids)
    shards = len(info.splits[split]["shards"])
    log(f"teacher {teacher.name} ({teacher.key}): {split} targets of {shards} shard(s), "
        f"{computed} computed, {shards - computed} reused, in {store.folder}")
    return SplitTargets(rows.clip_ids, rows.num_rows, rows.values)


def shared_tags(names: list, tag_lists: list) -> tuple[list, list, str | None]:
    """(the tags all of `tag_lists` share, in the first one's order; for each
    list, the index of each shared tag in it; one line naming what each
    one dropped, or None). No shared tag is a UserError."""
    shared = [t for t in tag_lists[0] if all(t in tags for tags in tag_lists[1:])]
    if not shared:
        raise UserError(f"{' and '.join(names)} share no tag, so their tags cannot be "
                        "mapped onto one another; use taggers of the same tag set")
    dropped = [(name, [t for t in tags if t not in shared])
               for name, tags in zip(names, tag_lists)]
    line = None
    if any(tags for _, tags in dropped):
        line = (f"{len(shared)} shared tag(s) kept; dropped: "
                + "; ".join(f"{name}: {', '.join(tags)}" for name, tags in dropped if tags))
    return shared, [[tags.index(t) for t in shared] for tags in tag_lists], line


class TeacherTargets:
    """The targets of one or more teachers on a records folder, on the tags
    they share (with `tags`, a student's tags too), averaged."""

    def __init__(self, teachers, data_dir: str, info: DatasetInfo, progress: bool = True,
                 log=print, tags: tuple | None = None, flag: str = "--distil"):
        if not teachers:
            raise UserError("name at least one teacher")
        self.teachers = [Teacher(name, progress, log, flag) for name in teachers]
        self.data_dir, self.info, self.progress, self.log = data_dir, info, progress, log
        names = [f"teacher {t.name}" for t in self.teachers]
        lists = [t.tag_names for t in self.teachers]
        if tags is not None:
            names, lists = [*names, "the student"], [*lists, list(tags)]
        self.tag_names, self.indexes, self.dropped = shared_tags(names, lists)
        if self.dropped:
            log(self.dropped)
        self._splits = {}

    def forget(self, split: str) -> None:
        """Lets go of the targets of `split` held in memory (read again if asked for)."""
        self._splits.pop(split, None)

    def split(self, split: str) -> SplitTargets:
        """The averaged targets of `split` (computed once per split)."""
        if split not in self._splits:
            parts = [split_targets(t, self.data_dir, self.info, split, self.progress,
                                   self.log).columns(index)
                     for t, index in zip(self.teachers, self.indexes)]
            for part in parts[1:]:
                if not (np.array_equal(part.clip_ids, parts[0].clip_ids)
                        and np.array_equal(part.num_segments, parts[0].num_segments)):
                    raise UserError(f"the teachers' stored targets of {split} cover other "
                                    f"clips; delete {join_path(self.data_dir, TARGETS_DIR)} "
                                    "to score the records again")
            values = np.mean([p.values for p in parts], axis=0).astype(np.float32)
            self._splits[split] = dataclasses.replace(parts[0], values=values)
        return self._splits[split]


def targets_for(teachers, data_dir: str, progress: bool = True, log=print,
                flag: str = "--against"):
    """`targets(student_tags) -> TeacherTargets` of `teachers` on the
    records in `data_dir`, for `evaluation.against.evaluate_against`."""
    from tagger.records.info import load_info

    def targets(tags):
        return TeacherTargets(teachers, data_dir, load_info(data_dir), progress, log,
                              tags=tags, flag=flag)

    return targets
