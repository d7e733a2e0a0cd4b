"""Streamed reads of the MSD's SQLite files: track_metadata.db and lastfm_tags.db.

Rows are fetched in blocks into numpy columns, so a million tracks never
become a million Python objects at once. Files are opened read-only.

track_metadata.db, table `songs`: track_id (TEXT, primary key), artist_id,
track_7digitalid, ... (tbertinmahieux/MSongsDB, create_track_metadata_db.py).
lastfm_tags.db: tids(tid), tags(tag), tid_tag(tid, tag, val) with tid and
tag the ROWIDs of the other two tables and val in 0..100.

SQLite reads local files only: a file under a gs:// (or other tf.io.gfile)
--data-dir is copied to a local temporary file first (in $TMPDIR; about
0.7 GB for track_metadata.db, 0.6 GB for lastfm_tags.db), with a progress
bar, and removed when its connection closes.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import tempfile

import numpy as np
from tqdm import tqdm

from tagger import fileio
from tagger.config import join_path
from tagger.errors import UserError

METADATA_DB = "track_metadata.db"
TAGS_DB = "lastfm_tags.db"
BLOCK = 65536  # rows fetched at a time
COPY_BLOCK = 16 << 20  # bytes copied at a time from a remote file
ID_DTYPE = "S18"  # MSD ids are 18 ASCII characters

_SCHEMAS = {
    METADATA_DB: {"songs": ("track_id", "artist_id", "track_7digitalid")},
    TAGS_DB: {"tids": ("tid",), "tags": ("tag",), "tid_tag": ("tid", "tag", "val")},
}
# The SQLite storage classes (typeof) each column may hold: SQLite keeps
# what was inserted whatever the declared type, and compares text with
# numbers as text ('7' > 50), so a column of the wrong type gives wrong
# results, not errors. '' stands for the empty text (no 7digital id).
_TYPES = {
    METADATA_DB: {"songs": {"track_id": ("text",), "artist_id": ("text",),
                            "track_7digitalid": ("integer", "null", "")}},
    TAGS_DB: {"tid_tag": {"tid": ("integer",), "tag": ("integer",),
                          "val": ("integer", "real", "null")}},
}
_EXPECTED_TYPE = {("songs", "track_id"): "text (MSD track ids)",
                  ("songs", "artist_id"): "text (MSD artist ids)",
                  ("songs", "track_7digitalid"): "integers (7digital ids) or nothing",
                  ("tid_tag", "tid"): "integers (ROWIDs of tids)",
                  ("tid_tag", "tag"): "integers (ROWIDs of tags)",
                  ("tid_tag", "val"): "numbers from 0 to 100"}
_WHERE_FROM = {
    METADATA_DB: "the MSD's AdditionalFiles/track_metadata.db",
    TAGS_DB: "the Last.fm dataset's lastfm_tags.db (millionsongdataset.com/lastfm)",
}


class _LocalCopy(sqlite3.Connection):
    """A connection to a temporary local copy, removed when it closes."""

    copy_path = None

    def close(self):
        super().close()
        if self.copy_path is not None:
            try:
                os.remove(self.copy_path)
            except FileNotFoundError:
                pass
            self.copy_path = None


def local_copy(path: str, progress: bool = True) -> str:
    """Copies the tf.io.gfile file `path` to a new local temporary file;
    returns its name. A failure (no space in $TMPDIR, say) is a UserError."""
    import tensorflow as tf

    fd, local = tempfile.mkstemp(suffix="-" + path.rstrip("/").rsplit("/", 1)[-1])
    try:
        size = tf.io.gfile.stat(path).length
        with fileio.open_file(path, "rb") as src, os.fdopen(fd, "wb") as dst, \
                tqdm(total=size, unit="B", unit_scale=True, desc=f"copying {path}",
                     disable=not progress) as bar:
            for block in iter(lambda: src.read(COPY_BLOCK), b""):
                dst.write(block)
                bar.update(len(block))
    except BaseException as error:
        os.remove(local)
        if isinstance(error, OSError):
            raise UserError(f"cannot copy {path!r} to the local file {local!r} (SQLite reads "
                            f"local files only): {fileio.describe_os_error(error)}; set TMPDIR "
                            "to a folder with room, or pass a local --data-dir") from None
        raise
    return local


def connect(data_dir: str, name: str, progress: bool = False) -> sqlite3.Connection:
    """A read-only connection to `data_dir/name`, its tables and columns
    checked; a missing or foreign file is a one-line UserError. A file that
    is not local is copied to a local temporary file first."""
    path = join_path(data_dir, name)
    if not fileio.exists(path) or fileio.isdir(path):
        raise UserError(f"{path!r} not found; put {_WHERE_FROM[name]} in --data-dir")
    local = path if fileio.is_local(path) else local_copy(path, progress)
    try:
        con = sqlite3.connect(f"file:{os.path.abspath(local)}?mode=ro", uri=True,
                              factory=_LocalCopy)
    except sqlite3.DatabaseError as error:
        if local != path:
            os.remove(local)
        raise UserError(f"{path!r} is not a readable SQLite file ({error}); "
                        f"expected {_WHERE_FROM[name]}") from None
    if local != path:
        con.copy_path = local
    try:
        for table, columns in _SCHEMAS[name].items():
            found = [row[1] for row in con.execute(f"PRAGMA table_info({table})")]
            missing = [c for c in columns if c not in found]
            if not found or missing:
                what = f"no table {table!r}" if not found else \
                    f"table {table!r} lacks column(s) {', '.join(missing)}"
                raise UserError(f"{path!r} has {what}; expected {_WHERE_FROM[name]}")
        _check_types(con, path, name)
    except sqlite3.DatabaseError as error:
        con.close()
        raise UserError(f"{path!r} is not a readable SQLite file ({error}); "
                        f"expected {_WHERE_FROM[name]}") from None
    except UserError:
        con.close()
        raise
    return con


def _check_types(con, path: str, name: str) -> None:
    """A UserError naming the database, table, column and the type found
    when a column holds values of another type (one scan of each table)."""
    for table, columns in _TYPES[name].items():
        tests = []
        for column, allowed in columns.items():
            types = ", ".join(f"'{t}'" for t in allowed if t)
            test = f"typeof({column}) NOT IN ({types})"
            if "" in allowed:  # the empty text is allowed too
                test = f"({test} AND NOT (typeof({column}) = 'text' AND {column} = ''))"
            tests.append(test)
        cases = " ".join(f"WHEN {t} THEN {i}" for i, t in enumerate(tests))
        row = con.execute(f"SELECT CASE {cases} END AS bad, {', '.join(columns)} FROM {table} "
                          f"WHERE {' OR '.join(tests)} LIMIT 1").fetchone()
        if row is None:
            continue
        column = list(columns)[row[0]]
        value = row[1 + row[0]]
        found = {str: "text", bytes: "a blob", float: "a real number", int: "an integer",
                 type(None): "nothing (NULL)"}[type(value)]
        example = "" if value is None else f" (e.g. {repr(value)[:40]})"
        raise UserError(f"{path!r}: column {column!r} of table {table!r} holds {found}"
                        f"{example}; expected {_EXPECTED_TYPE[(table, column)]}, as in "
                        f"{_WHERE_FROM[name]}")


def _blocks(cursor):
    """The rows of `cursor`, BLOCK at a time."""
    return iter(lambda: cursor.fetchmany(BLOCK), [])


@dataclasses.dataclass(frozen=True)
class Songs:
    """Every track of track_metadata.db as columns, sorted by track id.

    rowid: the track's ROWID in `songs` (the clip id in the records);
    track_ids: S18; artist: index into artist_ids; digital: track_7digitalid
    (-1 when there is none).
    """

    rowid: np.ndarray
    track_ids: np.ndarray
    artist: np.ndarray
    artist_ids: np.ndarray
    digital: np.ndarray

    def __len__(self):
        return len(self.track_ids)

    def find(self, ids) -> np.ndarray:
        """Positions of `ids` (str or bytes, any array-like) in this table;
        -1 for an id that is not there."""
        ids = np.asarray(ids).astype(ID_DTYPE)
        pos = np.searchsorted(self.track_ids, ids)
        pos = np.minimum(pos, len(self.track_ids) - 1)
        return np.where(self.track_ids[pos] == ids, pos, -1)


def read_songs(data_dir: str, progress=None) -> Songs:
    """Streams the `songs` table into columns. `progress` (a tqdm bar) gets
    its total, then an update per block."""
    con = connect(data_dir, METADATA_DB,
                  progress=progress is not None and not getattr(progress, "disable", False))
    try:
        total = con.execute("SELECT COUNT(*) FROM songs").fetchone()[0]
        if progress is not None:
            progress.total = total
            progress.refresh()
        rowid = np.empty(total, np.int64)
        track_ids = np.empty(total, ID_DTYPE)
        artists = np.empty(total, ID_DTYPE)
        digital = np.empty(total, np.int64)
        n = 0
        cursor = con.execute("SELECT ROWID, track_id, artist_id, track_7digitalid FROM songs")
        for rows in _blocks(cursor):
            r, t, a, d = zip(*rows)
            k = len(rows)
            rowid[n:n + k] = r
            track_ids[n:n + k] = [str(v or "").encode() for v in t]
            artists[n:n + k] = [str(v or "").encode() for v in a]
            digital[n:n + k] = [-1 if v is None or v == "" else int(v) for v in d]
            n += k
            if progress is not None:
                progress.update(k)
    finally:
        con.close()
    if n == 0:
        raise UserError(f"the songs table of {join_path(data_dir, METADATA_DB)!r} is "
                        "empty; expected one row per MSD track")
    order = np.argsort(track_ids[:n], kind="stable")
    track_ids = track_ids[order]
    if np.any(track_ids[1:] == track_ids[:-1]):
        raise UserError(f"{join_path(data_dir, METADATA_DB)!r} lists a track id twice; "
                        "expected the MSD's track_metadata.db")
    artist_ids, artist = np.unique(artists[order], return_inverse=True)
    return Songs(rowid[order], track_ids, artist.astype(np.int32), artist_ids, digital[order])


def read_lastfm(data_dir: str, songs: Songs, top_k: int, min_value: float,
                exclude=(), progress: bool = False) -> tuple:
    """(tag_names, labels): the `top_k` tags applied to most tracks with
    val > min_value (ties by tag name; `exclude` names skipped, case
    ignored; fewer if fewer tags pass) and a (len(songs), tags) uint8
    matrix, 1 where the track has the tag with val > min_value. With
    `progress`, the tag count shows its elapsed time and the label stream a
    bar with an ETA (its length is the sum of the chosen tags' counts)."""
    con = connect(data_dir, TAGS_DB, progress=progress)
    excluded = {e.lower() for e in exclude}
    try:
        with tqdm(desc="counting tags in lastfm_tags.db", bar_format="{desc}: {elapsed}",
                  disable=not progress) as bar:
            def tick():  # one GROUP BY over tid_tag: no fraction to show, but a clock
                bar.update(1)
                return 0

            con.set_progress_handler(tick, 1 << 16)
            counts = con.execute(
                "SELECT tags.tag, tid_tag.tag, COUNT(*) AS n FROM tid_tag "
                "JOIN tags ON tags.ROWID = tid_tag.tag WHERE tid_tag.val > ? "
                "GROUP BY tid_tag.tag ORDER BY n DESC, tags.tag ASC", (min_value,))
            chosen, rows_to_read = [], 0
            for name, rowid, n in counts:
                if name is not None and str(name).lower() not in excluded:
                    chosen.append((str(name), int(rowid)))
                    rows_to_read += n
                    if len(chosen) == top_k:
                        break
            counts.close()
            con.set_progress_handler(None, 0)
        if not chosen:
            raise UserError(f"{join_path(data_dir, TAGS_DB)!r} has no tag with a value "
                            f"above {min_value:g}; lower --min-tag-value")
        column = {rowid: i for i, (_, rowid) in enumerate(chosen)}
        labels = np.zeros((len(songs), len(chosen)), np.uint8)
        marks = ",".join("?" * len(chosen))
        cursor = con.execute(
            f"SELECT tids.tid, tid_tag.tag FROM tid_tag JOIN tids ON tids.ROWID = tid_tag.tid "
            f"WHERE tid_tag.val > ? AND tid_tag.tag IN ({marks})",
            (min_value, *column))
        with tqdm(total=rows_to_read, desc="reading the top-k tags of lastfm_tags.db",
                  unit="tag", disable=not progress) as bar:
            for rows in _blocks(cursor):
                tids, tags = zip(*rows)
                pos = songs.find([str(t).encode() for t in tids])
                cols = np.array([column[t] for t in tags], np.int64)
                known = pos >= 0
                labels[pos[known], cols[known]] = 1
                bar.update(len(rows))
    except sqlite3.DatabaseError as error:
        raise UserError(f"cannot read {join_path(data_dir, TAGS_DB)!r} ({error}); "
                        f"expected {_WHERE_FROM[TAGS_DB]}") from None
    finally:
        con.close()
    return tuple(name for name, _ in chosen), labels
