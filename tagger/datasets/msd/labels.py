"""The three MSD label sources, each giving the tracks and labels of every split.

  lastfm:  lastfm_tags.db: the top-k tags by track count with val > a
           threshold (50); our own artist-level stratified train/val/test
           split; the untagged tracks of artists with no tagged track form
           the unlabelled `student` split.
  cals:    a folder of CALS files ({train,valid,test}_ids.npy + _binaries.npy,
           student_ids.npy), tags in the CALS order.
  classic: a folder of the classic pickles (filtered_list_train.cP,
           filtered_list_test.cP, msd_id_to_tag_vector.cP, 50tagList.txt).

Every source returns `Labels`: per split, positions into the `Songs` table
and a (tracks, tags) uint8 label matrix (None for the student split).
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np

from tagger import fileio
from tagger.config import join_path
from tagger.datasets.msd.pickles import read_id_list, read_tag_vectors
from tagger.datasets.msd.split import artist_split
from tagger.datasets.msd.sqlite import Songs, read_lastfm
from tagger.datasets.msd.tags import CALS_TAGS, CLASSIC_TAGS, CLASSIC_TRAIN_COUNT
from tagger.errors import UserError
from tagger.records.plan import STUDENT_SPLIT

LABEL_SOURCES = ("lastfm", "cals", "classic")
CALS_SPLITS = {"train": "train", "val": "valid", "test": "test"}
CLASSIC_TRAIN_VALID = 213454  # ids in the real filtered_list_train.cP
# Last.fm tags that say nothing about the audio; the classic top-50 leaves
# such tags out (keunwoochoi/MSD_split_for_tagging).
DEFAULT_EXCLUDED_TAGS = ("favorites", "favourites", "favorite", "Love", "seen live",
                         "awesome", "favorite songs", "my radio")


@dataclasses.dataclass(frozen=True)
class Labels:
    source: str
    tag_names: tuple
    positions: dict  # split -> int64 positions into Songs, in write order
    labels: dict  # split -> (tracks, tags) uint8, or None for an unlabelled split
    notes: dict


def from_lastfm(data_dir: str, songs: Songs, top_k: int = 50, min_value: float = 50.0,
                seed: int = 0, exclude=DEFAULT_EXCLUDED_TAGS, progress: bool = False) -> Labels:
    tag_names, labels = read_lastfm(data_dir, songs, top_k, min_value, exclude, progress)
    tagged = labels.any(axis=1)
    positions = np.flatnonzero(tagged)
    if len(positions) < 3:
        raise UserError(f"only {len(positions)} track(s) carry one of the top {top_k} tags "
                        "above the threshold; an artist-level split needs more")
    where = artist_split(songs.artist[positions], labels[positions], seed)
    rng = np.random.default_rng(seed)
    splits = {}
    for index, name in enumerate(("train", "val", "test")):
        chosen = positions[where == index]
        splits[name] = rng.permutation(chosen) if name == "train" else chosen
    labelled_artists = np.zeros(len(songs.artist_ids), bool)
    labelled_artists[songs.artist[positions]] = True
    untagged = ~tagged
    student = np.flatnonzero(untagged & ~labelled_artists[songs.artist])
    splits[STUDENT_SPLIT] = student
    notes = {"untagged_tracks_of_labelled_artists":
             int((untagged & labelled_artists[songs.artist]).sum()),
             "min_tag_value": min_value, "excluded_tags": list(exclude)}
    return Labels("lastfm", tag_names, splits,
                  {s: (None if s == STUDENT_SPLIT else labels[p]) for s, p in splits.items()},
                  notes)


def _load_npy(path: str, what: str):
    if not fileio.exists(path) or fileio.isdir(path):
        raise UserError(f"{path!r} not found; a CALS folder holds {{train,valid,test}}_ids.npy "
                        "and _binaries.npy (minzwon/semi-supervised-music-tagging-transformer, "
                        "data/splits)")
    try:
        return np.load(io.BytesIO(fileio.read_bytes(path)), allow_pickle=False)
    except (ValueError, OSError) as error:
        raise UserError(f"{path!r} is not a readable .npy file ({error}); expected {what}") \
            from None


_NUMBERS = "biuf"  # numpy kinds a label may have: bool, int, uint, float


def _kind(array: np.ndarray) -> str:
    """What an array of non-numbers holds, for a message: "text (e.g. '1')"."""
    what = {"U": "text", "S": "byte strings", "O": "Python objects"}.get(
        array.dtype.kind, f"{array.dtype} values")
    if not array.size:
        return what
    first = array.flat[0]
    first = first.item() if isinstance(first, np.generic) else first
    return f"{what} (e.g. {repr(first)[:40]})"


def _ids(array, path: str) -> np.ndarray:
    if array.ndim != 1 or array.dtype.kind not in "US":
        raise UserError(f"{path!r} holds a {array.dtype} array of shape {array.shape}; "
                        "expected a 1-D array of MSD track ids (<U18)")
    return array


def _locate(songs: Songs, ids, split: str, notes: dict) -> tuple:
    """Positions of `ids` in songs, and a mask of the ids found; ids not in
    track_metadata.db are counted in notes."""
    pos = songs.find(ids)
    found = pos >= 0
    if not found.all():
        notes.setdefault("ids_not_in_track_metadata", {})[split] = int((~found).sum())
    return pos[found], found


def from_cals(folder: str, songs: Songs) -> Labels:
    positions, labels, notes = {}, {}, {}
    for name, stem in CALS_SPLITS.items():
        ids_path = join_path(folder, f"{stem}_ids.npy")
        bin_path = join_path(folder, f"{stem}_binaries.npy")
        ids = _ids(_load_npy(ids_path, "MSD track ids"), ids_path)
        binaries = _load_npy(bin_path, f"a ({len(ids)}, {len(CALS_TAGS)}) label matrix")
        if binaries.dtype.kind not in _NUMBERS:
            raise UserError(f"{bin_path!r} holds {_kind(binaries)}, a {binaries.dtype} array; "
                            f"expected a ({len(ids)}, {len(CALS_TAGS)}) matrix of 0/1 numbers "
                            "(uint8)")
        if binaries.shape != (len(ids), len(CALS_TAGS)):
            raise UserError(f"{bin_path!r} has shape {binaries.shape}; expected "
                            f"({len(ids)}, {len(CALS_TAGS)}): one row per id of "
                            f"{stem}_ids.npy, one column per CALS tag")
        pos, found = _locate(songs, ids, name, notes)
        positions[name] = pos
        labels[name] = (np.asarray(binaries)[found] > 0).astype(np.uint8)
    student_path = join_path(folder, "student_ids.npy")
    if fileio.exists(student_path):
        ids = _ids(_load_npy(student_path, "MSD track ids"), student_path)
        positions[STUDENT_SPLIT], _ = _locate(songs, ids, STUDENT_SPLIT, notes)
        labels[STUDENT_SPLIT] = None
    return Labels("cals", CALS_TAGS, positions, labels, notes)


def read_tag_list(path: str) -> tuple:
    """The tag names of a classic `50tagList.txt` (UTF-8, one a line; blank
    lines left out); each name once."""
    kind = fileio.not_a_file(path)
    if kind:
        raise UserError(f"{path!r} is {kind}; expected the classic split's tag list, one "
                        "tag a line")
    try:
        text = fileio.names_text(fileio.read_bytes(path), errors="strict")
    except OSError as error:
        raise UserError(f"cannot read {path!r}: {fileio.os_error_reason(error)}") from None
    except UnicodeDecodeError as error:
        raise UserError(f"{path!r} is not UTF-8 text (byte {error.start}); expected the "
                        "classic split's tag list, one tag a line") from None
    lines = {}  # tag name -> its line
    for line, name in enumerate((row.strip() for row in text.splitlines()), 1):
        if name in lines:
            raise UserError(f"{path!r}: tag {name!r} is listed twice (lines {lines[name]} and "
                            f"{line}); each tag must appear once, in the order of the tag "
                            "vectors")
        if name:
            lines[name] = line
    if not lines:
        raise UserError(f"{path!r} names no tag; expected the classic split's tag list, one "
                        "tag a line")
    return tuple(lines)


def from_classic(folder: str, songs: Songs) -> Labels:
    tag_list = join_path(folder, "50tagList.txt")
    tag_names = read_tag_list(tag_list) if fileio.exists(tag_list) else CLASSIC_TAGS
    train_valid = read_id_list(join_path(folder, "filtered_list_train.cP"))
    test = read_id_list(join_path(folder, "filtered_list_test.cP"))
    vectors = read_tag_vectors(join_path(folder, "msd_id_to_tag_vector.cP"))
    # The first 201,680 of the 213,454 ids are train, the rest valid; a
    # list of another length is cut in the same proportion.
    cut = round(len(train_valid) * CLASSIC_TRAIN_COUNT / CLASSIC_TRAIN_VALID)
    lists = {"train": train_valid[:cut], "val": train_valid[cut:], "test": test}
    positions, labels, notes = {}, {}, {}
    for name, ids in lists.items():
        missing = [i for i in ids if i not in vectors]
        if missing:
            raise UserError(f"{len(missing)} {name} id(s) have no entry in "
                            f"msd_id_to_tag_vector.cP, e.g. {missing[0]}; use the pickles "
                            "of one release together")
        matrix = np.zeros((len(ids), len(tag_names)), np.uint8)
        for row, track in enumerate(ids):
            vector = np.asarray(vectors[track]).reshape(-1)
            if vector.dtype.kind not in _NUMBERS:
                raise UserError(f"the tag vector of {track} in msd_id_to_tag_vector.cP holds "
                                f"{_kind(vector)}; expected "
                                f"{len(tag_names)} numbers (0 or 1)")
            if vector.shape != (len(tag_names),):
                raise UserError(f"the tag vector of {track} has {vector.size} values; "
                                f"expected {len(tag_names)}, one per line of 50tagList.txt")
            matrix[row] = vector > 0
        pos, found = _locate(songs, np.array(ids), name, notes)
        positions[name], labels[name] = pos, matrix[found]
    return Labels("classic", tag_names, positions, labels, notes)
