"""Streamed reads of the MSD's SQLite files: track_metadata.db and lastfm_tags.db.

Rows are fetched in blocks into numpy columns, so a million tracks never
become a million Python objects at once. Files are opened read-only.

track_metadata.db, table `songs`: track_id (TEXT, primary key), artist_id,
track_7digitalid, ... (tbertinmahieux/MSongsDB, create_track_metadata_db.py).
lastfm_tags.db: tids(tid), tags(tag), tid_tag(tid, tag, val) with tid and
tag the ROWIDs of the other two tables and val in 0..100.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3

import numpy as np

from tagger.errors import UserError

METADATA_DB = "track_metadata.db"
TAGS_DB = "lastfm_tags.db"
BLOCK = 65536  # rows fetched at a time
ID_DTYPE = "S18"  # MSD ids are 18 ASCII characters

_SCHEMAS = {
    METADATA_DB: {"songs": ("track_id", "artist_id", "track_7digitalid")},
    TAGS_DB: {"tids": ("tid",), "tags": ("tag",), "tid_tag": ("tid", "tag", "val")},
}
_SOURCES = {
    METADATA_DB: "the MSD's AdditionalFiles/track_metadata.db",
    TAGS_DB: "the Last.fm dataset's lastfm_tags.db (millionsongdataset.com/lastfm)",
}


def connect(data_dir: str, name: str) -> sqlite3.Connection:
    """A read-only connection to `data_dir/name`, its tables and columns
    checked; a missing or foreign file is a one-line UserError."""
    path = os.path.join(data_dir, name)
    if not os.path.isfile(path):
        raise UserError(f"{path!r} not found; put {_SOURCES[name]} in --data-dir")
    try:
        con = sqlite3.connect(f"file:{os.path.abspath(path)}?mode=ro", uri=True)
        for table, columns in _SCHEMAS[name].items():
            found = [row[1] for row in con.execute(f"PRAGMA table_info({table})")]
            missing = [c for c in columns if c not in found]
            if not found or missing:
                what = f"no table {table!r}" if not found else \
                    f"table {table!r} lacks column(s) {', '.join(missing)}"
                con.close()
                raise UserError(f"{path!r} has {what}; expected {_SOURCES[name]}")
    except sqlite3.DatabaseError as error:
        raise UserError(f"{path!r} is not a readable SQLite file ({error}); "
                        f"expected {_SOURCES[name]}") from None
    return con


def _blocks(cursor):
    while True:
        rows = cursor.fetchmany(BLOCK)
        if not rows:
            return
        yield rows


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
    con = connect(data_dir, METADATA_DB)
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
        raise UserError(f"the songs table of {os.path.join(data_dir, METADATA_DB)!r} is "
                        "empty; expected one row per MSD track")
    order = np.argsort(track_ids[:n], kind="stable")
    track_ids = track_ids[order]
    if np.any(track_ids[1:] == track_ids[:-1]):
        raise UserError(f"{os.path.join(data_dir, METADATA_DB)!r} lists a track id twice; "
                        "expected the MSD's track_metadata.db")
    artist_ids, artist = np.unique(artists[order], return_inverse=True)
    return Songs(rowid[order], track_ids, artist.astype(np.int32), artist_ids, digital[order])


def read_lastfm(data_dir: str, songs: Songs, top_k: int, min_value: float,
                exclude=()) -> tuple:
    """(tag_names, labels): the `top_k` tags applied to most tracks with
    val > min_value (ties by tag name; `exclude` names skipped, case
    ignored; fewer if fewer tags pass) and a (len(songs), tags) uint8 matrix, 1 where the track has
    the tag with val > min_value."""
    con = connect(data_dir, TAGS_DB)
    excluded = {e.lower() for e in exclude}
    try:
        counts = con.execute(
            "SELECT tags.tag, tid_tag.tag, COUNT(*) AS n FROM tid_tag "
            "JOIN tags ON tags.ROWID = tid_tag.tag WHERE tid_tag.val > ? "
            "GROUP BY tid_tag.tag ORDER BY n DESC, tags.tag ASC", (min_value,))
        chosen = []
        for name, rowid, _ in counts:
            if name is not None and str(name).lower() not in excluded:
                chosen.append((str(name), int(rowid)))
                if len(chosen) == top_k:
                    break
        counts.close()
        if not chosen:
            raise UserError(f"{os.path.join(data_dir, TAGS_DB)!r} has no tag with a value "
                            f"above {min_value:g}; lower --min-tag-value")
        column = {rowid: i for i, (_, rowid) in enumerate(chosen)}
        labels = np.zeros((len(songs), len(chosen)), np.uint8)
        marks = ",".join("?" * len(chosen))
        cursor = con.execute(
            f"SELECT tids.tid, tid_tag.tag FROM tid_tag JOIN tids ON tids.ROWID = tid_tag.tid "
            f"WHERE tid_tag.val > ? AND tid_tag.tag IN ({marks})",
            (min_value, *column))
        for rows in _blocks(cursor):
            tids, tags = zip(*rows)
            pos = songs.find([str(t).encode() for t in tids])
            cols = np.array([column[t] for t in tags], np.int64)
            known = pos >= 0
            labels[pos[known], cols[known]] = 1
    except sqlite3.DatabaseError as error:
        raise UserError(f"cannot read {os.path.join(data_dir, TAGS_DB)!r} ({error}); "
                        f"expected {_SOURCES[TAGS_DB]}") from None
    finally:
        con.close()
    return tuple(name for name, _ in chosen), labels
