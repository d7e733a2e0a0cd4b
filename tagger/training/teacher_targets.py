"""Soft targets of trained taggers (teachers) for every segment of a
dataset's records, computed once and stored beside them.

A teacher scores each clip at its own sample rate and window, as tag.py
scores a file: the clip's audio (its segments joined, at the records'
rate) is resampled to the teacher's rate (`audio.resample`, the builders'
soxr) and cut into the teacher's windows (`audio.audio_windows`, with the
hop and edge padding of `models.saved.window_grid`), which the keras
engine's predictor scores (`inference.engine.registry.make_predictor`). A
segment's target is the mean of the scores of the teacher windows that
overlap it, each weighted by the overlap's duration; a segment that no
window reaches (past the last whole window) takes the nearest window's
scores.

Stored in `<records>/teacher_targets/<fingerprint>/`, the fingerprint the
first 16 hex digits of the teacher file's SHA-256
(`inference.common.model_fingerprint`): `teacher.json` (the teacher,
its tags, rate and window, and the fingerprint of the records it scored,
`records.fingerprint.records_fingerprint`) and one
`<shard>.npz` per shard of records (clip_id, num_segments and targets:
the segments of all the shard's clips in order x tags, float32), each
written atomically once its shard is scored: an interrupted run goes on
from the first missing shard, and a rerun reads them back. A stored shard
that cannot be read (cut short by a full disk or an interrupted copy,
empty, or holding other arrays) is scored again, with one line naming it
and why. Records of another fingerprint (rebuilt with other settings,
clips, audio or order) get their targets anew.

Several teachers: the student learns the tags they share, in the first
teacher's order, their targets averaged; the tags that others lack are
dropped and named in one line.
"""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile

import numpy as np

from tagger import destination, fileio
from tagger.config import join_path
from tagger.errors import UserError
from tagger.records.fingerprint import records_fingerprint
from tagger.records.info import DatasetInfo

TARGETS_DIR = "teacher_targets"
TEACHER_FILE = "teacher.json"
FINGERPRINT_DIGITS = 16


@dataclasses.dataclass(frozen=True)
class SplitTargets:
    """One split's targets, clips in split order."""

    clip_ids: np.ndarray  # (clips,) int64
    num_segments: np.ndarray  # (clips,) int64
    values: np.ndarray  # (segments of all clips, tags) float32, clip after clip

    @property
    def offsets(self) -> np.ndarray:
        """(clips + 1,) where each clip's rows start in `values`, and the end."""
        return np.concatenate([[0], np.cumsum(self.num_segments)]).astype(np.int64)

    def per_clip(self) -> list:
        """One (segments, tags) array per clip."""
        return np.split(self.values, self.offsets[1:-1])

    def clip_means(self) -> np.ndarray:
        """(clips, tags) each clip's targets averaged over its segments."""
        if not len(self.clip_ids):
            return np.zeros((0, self.values.shape[1]), np.float32)
        sums = np.add.reduceat(self.values.astype(np.float64), self.offsets[:-1], axis=0)
        return (sums / self.num_segments[:, None]).astype(np.float32)

    def columns(self, index) -> SplitTargets:
        return dataclasses.replace(self, values=self.values[:, index])


def concatenate(parts, tags: int) -> SplitTargets:
    if not parts:
        return SplitTargets(np.zeros(0, np.int64), np.zeros(0, np.int64),
                            np.zeros((0, tags), np.float32))
    return SplitTargets(*(np.concatenate([getattr(p, f.name) for p in parts])
                          for f in dataclasses.fields(SplitTargets)))


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


class Teacher:
    """A saved tagger (a registry name or a path) as a source of targets;
    the model itself is loaded only when something is to be scored."""

    def __init__(self, name: str, progress: bool = True, log=print):
        from tagger.inference.common import model_fingerprint
        from tagger.models.saved import read_saved_info
        from tagger.pretrained import resolve_model

        self.name = str(name)
        self.path = resolve_model(self.name, progress=progress, log=log)
        if not fileio.exists(self.path):
            raise UserError(f"teacher {self.name!r} not found; --teacher takes a pretrained "
                            "name (tagger-pretrained list) or a .keras/.hdf5 model file")
        self.fingerprint = model_fingerprint(self.path)
        try:
            self.info = read_saved_info(self.path)
        except Exception as error:  # noqa: BLE001  a damaged or foreign file
            raise UserError(f"cannot read teacher {self.name!r} ({self.path}) as a saved "
                            f"tagger: {str(error).splitlines()[0] if str(error) else error!r}"
                            ) from None
        self.tag_names = list(self.info.tag_names) if self.info else []
        if not self.tag_names:
            raise UserError(f"teacher {self.name!r} names no tags (not saved by train.py or "
                            "convert_weights.py), so its tags cannot be mapped to a "
                            "student's; use a model that carries its tag names")
        self._predictor = None

    @property
    def key(self) -> str:
        return self.fingerprint[:FINGERPRINT_DIGITS]

    @property
    def predictor(self):
        if self._predictor is None:
            from tagger.inference.engine.registry import make_predictor
            from tagger.models.saved import load_tagger

            model, info = load_tagger(self.path)
            self._predictor = make_predictor("keras", model, info)
            if self._predictor.tag_names != self.tag_names:
                raise UserError(f"teacher {self.name!r} names {len(self.tag_names)} tags "
                                f"but predicts {len(self._predictor.tag_names)}; its tags "
                                "cannot be mapped")
        return self._predictor

    def describe(self) -> dict:
        p = self.predictor
        return {"teacher": self.name, "path": self.path, "sha256": self.fingerprint,
                "tag_names": self.tag_names, "sample_rate": p.sample_rate,
                "window_samples": p.window_samples, "hop_samples": p.hop_samples,
                "edge_padding": p.edge_padding}

    def segment_targets(self, segments: np.ndarray, sample_rate: int,
                        batch_size: int = 32) -> np.ndarray:
        """(segments, tags) targets of one clip's float32 segments
        (segments, segment_length) at `sample_rate` (module docstring)."""
        from tagger.audio import audio_windows, resample

        p = self.predictor
        audio = resample(segments.reshape(-1), sample_rate, p.sample_rate)
        starts, windows = zip(*audio_windows(audio, p.sample_rate, p.window_samples,
                                             p.hop_samples, edge_padding=p.edge_padding))
        windows = np.stack(windows)  # (windows, window_samples)
        scores = np.concatenate([p(windows[i:i + batch_size])[0]
                                 for i in range(0, len(windows), batch_size)])
        weights = overlap_weights(
            len(segments), segments.shape[1] / sample_rate,
            (np.asarray(starts) - p.edge_padding) / p.sample_rate,
            p.window_samples / p.sample_rate)
        return (weights @ np.asarray(scores, np.float64)).astype(np.float32)


def require_raw(info: DatasetInfo, data_dir: str) -> None:
    kind = info.features["kind"]
    if kind != "raw":
        raise UserError(f"a teacher scores the records' audio but {data_dir!r} holds {kind} "
                        "records; build the dataset with --features raw")


def split_targets(teacher: Teacher, data_dir: str, info: DatasetInfo, split: str,
                  progress: bool = False, log=print) -> SplitTargets:
    """The teacher's targets for every clip of `split`, read from its entry
    beside the records, the missing shards scored and stored first."""
    from tqdm import tqdm

    require_raw(info, data_dir)
    folder = join_path(data_dir, TARGETS_DIR, teacher.key)
    shards = info.splits[split]["shards"]
    paths = [join_path(folder, f"{name}.npz") for name in shards]
    tags = len(teacher.tag_names)
    records = records_fingerprint(data_dir, info)
    parts = _stored(paths, tags, log) if _current(folder, records) else {}
    missing = [i for i in range(len(shards)) if i not in parts]
    if missing:
        _start_entry(folder, teacher, records)
    for i in tqdm(missing, desc=f"teacher {teacher.name}: {split}", unit="shard",
                  disable=not progress):
        parts[i] = _score_shard(teacher, data_dir, info, split, i)
        buffer = io.BytesIO()
        np.savez(buffer, **dataclasses.asdict(parts[i]))
        try:
            fileio.write_atomic(paths[i], buffer.getvalue())
        except OSError as error:
            raise destination.output_error("the teacher's targets", paths[i], error) from None
    log(f"teacher {teacher.name} ({teacher.key}): {split} targets of {len(shards)} "
        f"shard(s), {len(missing)} computed, {len(shards) - len(missing)} reused, in {folder}")
    targets = concatenate([parts[i] for i in range(len(shards))], tags)
    if len(targets.clip_ids) != info.splits[split]["clips"]:
        raise UserError(f"the teacher's targets in {folder!r} hold {len(targets.clip_ids)} "
                        f"clips of {split} but the records {info.splits[split]['clips']}; "
                        "delete that folder to score the records again")
    return targets


def _stored(paths: list, tags: int, log) -> dict:
    """{index: targets} of the shards stored at `paths`; one that cannot be
    read (cut short, empty, not a shard of `tags` tags) is left out, to be
    scored again, with one line saying so."""
    parts = {}
    for i, path in enumerate(paths):
        if not fileio.exists(path):
            continue
        try:
            parts[i] = _read(path, tags)
        except DamagedShard as error:
            log(f"the teacher's targets {path} cannot be read ({error}); "
                "scoring its shard again")
    return parts


def _current(folder: str, records: str) -> bool:
    """Whether the entry in `folder` was made for the records of fingerprint
    `records` (`records.fingerprint.records_fingerprint`)."""
    path = join_path(folder, TEACHER_FILE)
    if not fileio.exists(path):
        return False
    try:
        return json.loads(fileio.read_text(path)).get("records") == records
    except (ValueError, AttributeError):
        return False


def _start_entry(folder: str, teacher: Teacher, records: str) -> None:
    """Writes teacher.json; an entry made for other records is emptied first."""
    path = join_path(folder, TEACHER_FILE)
    try:
        if fileio.isdir(folder) and not _current(folder, records):
            for name in fileio.listdir(folder):
                if name.endswith(".npz"):
                    fileio.remove(join_path(folder, name))
        fileio.makedirs(folder)
        fileio.write_atomic(path, json.dumps({**teacher.describe(), "records": records},
                                             indent=1))
    except OSError as error:
        raise destination.output_error("the teacher's targets", path, error) from None


def _score_shard(teacher: Teacher, data_dir: str, info: DatasetInfo, split: str,
                 index: int) -> SplitTargets:
    from tagger.records import reader

    count = len(info.splits[split]["shards"])
    clips = reader.clip_dataset(data_dir, split, info, shard=(count, index), with_tags=False)
    ids, counts, values = [], [], []
    with reader.shard_errors(data_dir, split, info):
        for clip in clips.as_numpy_iterator():
            segments = clip["segments"]  # (segments, segment_length) float32
            ids.append(clip["clip_id"])
            counts.append(len(segments))
            values.append(teacher.segment_targets(segments, info.sample_rate))
    tags = len(teacher.tag_names)
    return SplitTargets(np.asarray(ids, np.int64), np.asarray(counts, np.int64),
                        np.concatenate(values) if values else np.zeros((0, tags), np.float32))


class DamagedShard(Exception):
    """A stored shard of targets that cannot be read; the message says why."""


LOAD_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile)


def _read(path: str, tags: int) -> SplitTargets:
    """The targets stored at `path`: a DamagedShard unless the file is a
    whole .npz of a shard's arrays for `tags` tags."""
    names = [f.name for f in dataclasses.fields(SplitTargets)]
    try:
        with np.load(io.BytesIO(fileio.read_bytes(path))) as data:
            absent = [name for name in names if name not in data.files]
            if absent:
                raise DamagedShard(f"it holds no {', '.join(absent)}")
            targets = SplitTargets(*(data[name] for name in names))
    except LOAD_ERRORS as error:
        why = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DamagedShard(f"cut short or damaged: {why}") from None
    problem = _shape_problem(targets, tags)
    if problem:
        raise DamagedShard(problem)
    return targets


def _shape_problem(targets: SplitTargets, tags: int) -> str | None:
    """What in `targets` is not a shard's arrays for `tags` tags, or None."""
    ids, counts, values = targets.clip_ids, targets.num_segments, targets.values
    if not (ids.ndim == counts.ndim == 1 and len(ids) == len(counts)
            and ids.dtype.kind in "iu" and counts.dtype.kind in "iu"
            and (counts >= 0).all()):
        return (f"clip_ids {ids.dtype}{list(ids.shape)} and num_segments "
                f"{counts.dtype}{list(counts.shape)} are not one count per clip")
    expected = (int(counts.sum()), tags)
    if values.dtype.kind != "f" or values.shape != expected:
        return (f"values are {values.dtype}{list(values.shape)}, expected float"
                f"{list(expected)}: the segments of its clips x the teacher's tags")
    return None


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
                 log=print, tags: tuple | None = None):
        if not teachers:
            raise UserError("name at least one teacher")
        self.teachers = [Teacher(name, progress, log) for name in teachers]
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
