"""The results database of `tag.py --db`: one SQLite file for a music library.

Tables (SQLite through the standard library's sqlite3, WAL journal):

    models(fingerprint TEXT PRIMARY KEY, path TEXT, tag_names TEXT (JSON),
           sample_rate INTEGER, window_samples INTEGER, embedding_dim INTEGER,
           added REAL)
    files(path TEXT, model TEXT -> models.fingerprint, size INTEGER,
          mtime_ns INTEGER, duration REAL, sample_rate INTEGER (the file's own),
          windows INTEGER, padded INTEGER, scores BLOB, embedding BLOB,
          tagged REAL, window_choice INTEGER, window_rule INTEGER,
          engine TEXT, hop INTEGER, PRIMARY KEY (path, model))
    failures(path TEXT, model TEXT -> models.fingerprint, size INTEGER,
             mtime_ns INTEGER, ctime_ns INTEGER, error TEXT, tried REAL,
             PRIMARY KEY (path, model))

`path` is the file's absolute path: TEXT, or, for a name that is not
valid UTF-8, a BLOB of its bytes (`os.fsencode`), so every name is kept
exactly (`path_key`, `path_of_key`); `scores` are the clip scores as
little-endian float32 bytes in the model's tag order (`models.tag_names`);
`embedding` the mean penultimate-layer vector (float32 bytes) or NULL when
`--embeddings` was not asked; `windows` the windows scored,
`window_choice` the N of `--windows N` that chose them (NULL: every
window) and `window_rule` the rule that did (`window_choice.RULE`; NULL
with an N: `window_choice.EARLIER_RULE`, the rule of every row written
before the column came); `engine` the tagging engine that scored the file
(`--engine`, or the one auto took; NULL in a row written before the column
came); `hop` the step in samples (at the model's rate) of the windows' grid
(`--hop`; NULL: the model's own step, its window or the grid its front end
steps on, as in a row written before the column came). A model's fingerprint is the SHA-256 of its
file's bytes (of every file's relative name and bytes for a folder), so
one database can hold the results of several models, and a retrained model
under the same name is a new model.

A file that could not be tagged (not decodable, damaged, NaN audio or
scores, ...) has a row in `failures` instead, with the reason (`error`,
one line as tag.py printed it); the `files` table holds scored files only,
so no reader of scores meets a failure. A file has a row in one table or
neither. (`failures` came after the first release: a database written
before it gets it when tag.py next writes there, and a reader treats its
absence as no failures.)

A file is up to date when a row for (its path, the model) has its size and
modification time (a failure: its size, modification and change times, so
a file whose permissions were fixed is tried again) and, for scores, the
run's `window_choice`, `window_rule` and `hop`: a rerun skips it; a rerun
with another --windows or --hop tags it again, as another model would, and
so does a rerun over rows an earlier rule chose N windows for (once).
(`window_choice` came with schema version 2, `window_rule` and `engine`
with version 3, `hop` with version 4:
tag.py adds the columns a database lacks when it next writes a row of
scores there (`upgrade`), so reading one, or a run that stores no scores,
leaves it as older versions read it; until then its rows read as every
window (version 1: NULL) or as N windows of the earlier rule (version 2),
of an engine not recorded, on the model's own grid.)
A row holds the key of the file as it was read (`FileResult.read_stat`,
taken before decoding); a file whose key changed while it was decoded (one
still being copied in, say) gets no row, only a line saying so, and the
next run tags it again. Rows are written as results come in
and committed in small transactions (every `COMMIT_SECONDS` or
`COMMIT_ROWS` rows), so a run that is killed loses at most the files tagged
since the last commit. The file is recognised as ours by its
`application_id` (`APPLICATION_ID`) and `user_version` (`SCHEMA_VERSION`).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time

import numpy as np

from tagger import fileio
from tagger.inference.common import model_fingerprint

APPLICATION_ID = 0x54414752  # "TAGR"
SCHEMA_VERSION = 4
READABLE_VERSIONS = (1, 2, 3, 4)  # version 1 has no window_choice (every window), 1 and 2
# no window_rule (window_choice.EARLIER_RULE) and no engine, 1 to 3 no hop (the model's)
ADDED_COLUMNS = {2: ("window_choice INTEGER",),  # the columns of `files` each version added
                 3: ("window_rule INTEGER", "engine TEXT"), 4: ("hop INTEGER",)}
COMMIT_SECONDS = 0.5
COMMIT_ROWS = 64
SQLITE_HEADER = b"SQLite format 3\x00"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    fingerprint TEXT PRIMARY KEY, path TEXT NOT NULL, tag_names TEXT NOT NULL,
    sample_rate INTEGER, window_samples INTEGER, embedding_dim INTEGER, added REAL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT NOT NULL, model TEXT NOT NULL REFERENCES models(fingerprint),
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, duration REAL, sample_rate INTEGER,
    windows INTEGER, padded INTEGER, scores BLOB NOT NULL, embedding BLOB, tagged REAL,
    window_choice INTEGER, window_rule INTEGER, engine TEXT, hop INTEGER,
    PRIMARY KEY (path, model));
"""
_FAILURES = """
CREATE TABLE IF NOT EXISTS failures (
    path TEXT NOT NULL, model TEXT NOT NULL REFERENCES models(fingerprint),
    size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,
    error TEXT NOT NULL, tried REAL, PRIMARY KEY (path, model));
"""


def is_results_db(path: str) -> bool:
    """Whether `path` is a database this module wrote (its SQLite header and
    application_id), so `--db` may open it."""
    with open(path, "rb") as f:
        head = f.read(100)
    if not head.startswith(SQLITE_HEADER):
        return False
    if len(head) >= 72 and int.from_bytes(head[68:72], "big") == APPLICATION_ID:
        return True
    # the header may still be in the write-ahead log (a run killed before a
    # checkpoint): ask SQLite, which reads through it
    con = open_read_only(path)
    try:
        return con.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    except sqlite3.DatabaseError:  # damaged beyond reading its header
        return False
    finally:
        con.close()


def path_key(path: str) -> str | bytes:
    """How the database holds `path`: the text itself when it is valid
    UTF-8, else its bytes (`os.fsencode`), stored as a BLOB: SQLite's text
    is UTF-8, and a name is never changed to fit."""
    return path if fileio.is_utf8(path) else os.fsencode(path)


def path_of_key(value: str | bytes) -> str:
    """The path a `path` column holds, as the file system's functions take
    it (the inverse of `path_key`)."""
    return os.fsdecode(value) if isinstance(value, bytes) else value


def file_key(path: str) -> tuple[str | bytes, int, int]:
    """(`path_key` of the absolute path, size, mtime in ns) of the file at `path`."""
    info = os.stat(path)
    return path_key(os.path.abspath(path)), info.st_size, info.st_mtime_ns


def connect(path: str, check_same_thread: bool = True) -> sqlite3.Connection:
    """Opens (creating if absent) the database at `path` with our schema;
    one of an earlier version stays of it until `upgrade`."""
    con = sqlite3.connect(str(path), timeout=30, check_same_thread=check_same_thread)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    version = con.execute("PRAGMA user_version").fetchone()[0]
    if version == 0:
        with con:
            con.executescript(_SCHEMA + _FAILURES)
            con.execute(f"PRAGMA application_id={APPLICATION_ID}")
            con.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
    elif version not in READABLE_VERSIONS:
        from tagger.errors import UserError

        con.close()
        raise UserError(f"{path!r} is a results database of schema version {version}; this "
                        f"version of tagger reads versions {READABLE_VERSIONS[0]} to "
                        f"{SCHEMA_VERSION}")
    else:
        if con.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = "
                       "'failures'").fetchone() is None:  # written before the table came
            con.executescript(_FAILURES)
    return con


def upgrade(con: sqlite3.Connection) -> None:
    """Brings the database of `con` to SCHEMA_VERSION: the columns of
    `files` it lacks (`ADDED_COLUMNS`), NULL in its rows (every window; the
    earlier window rule; no engine recorded); done before the first row of
    scores is written, as older versions of tagger refuse it after."""
    con.commit()
    with con:  # one transaction: the columns come with the version, or none
        con.execute("BEGIN IMMEDIATE")
        version = con.execute("PRAGMA user_version").fetchone()[0]
        if version < SCHEMA_VERSION:
            held = files_columns(con)
            for added in range(version + 1, SCHEMA_VERSION + 1):
                for column in ADDED_COLUMNS[added]:
                    if column.split()[0] not in held:
                        con.execute(f"ALTER TABLE files ADD COLUMN {column}")
            con.execute(f"PRAGMA user_version={SCHEMA_VERSION}")


def files_columns(con: sqlite3.Connection) -> set:
    """The names of the columns of the `files` table of `con`."""
    return {row[1] for row in con.execute("PRAGMA table_info(files)")}


def open_read_only(path: str) -> sqlite3.Connection:
    """A connection that cannot write the database at `path` (`mode=ro`).
    In a folder this process cannot write (a read-only share, a read-only
    file system), where SQLite cannot create the WAL's index file beside
    the database, it is opened as immutable: nothing can be writing it
    there. Raises sqlite3.Error when SQLite cannot read it."""
    from urllib.parse import quote

    uri = "file:" + quote(os.fsencode(os.path.abspath(str(path)))) + "?mode=ro"
    con = sqlite3.connect(uri, uri=True, timeout=30)
    try:
        con.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()  # opens the WAL index
        return con
    except sqlite3.OperationalError:
        con.close()
        if os.access(os.path.dirname(os.path.abspath(str(path))), os.W_OK):
            raise
    return sqlite3.connect(uri + "&immutable=1", uri=True, timeout=30)


class ResultsWriter:
    """Writes one model's rows into the database at `path`.

    `is_current(path)`: whether the file is tagged already (same size and
    mtime, scored from the same `windows`: N by `window_choice.RULE`, or
    None for every window; with `embeddings`, with an embedding stored) or
    failed before and has not changed since, safe to call from the decoder
    threads (its own connection, under the caller's lock); `add(result)` writes a
    tagged file's row, `add_failure(result)` a failed one's; `close()`
    commits. Counts: `written`, `failed` (rows written), `skipped` (up to
    date), `failures_skipped` (failed before, unchanged), `changed`
    (changed while decoded: no row, and `log(line)` says so). `engine`: the
    tagging engine the rows record (None: not known)."""

    def __init__(self, path: str, model_path: str, tag_names, sample_rate: int,
                 window_samples: int, embeddings: bool, rescan: bool = False,
                 log=None, windows: int | None = None, engine: str | None = None,
                 engine_chosen: bool = False, hop: int | None = None):
        from tagger.inference.window_choice import RULE

        self.path = str(path)
        self.windows = windows or None
        self.window_rule = RULE if self.windows else None
        self.engine = engine
        self.hop = hop  # None: the model's own step
        # an engine chosen (not auto's): files up to date that another engine
        # scored are counted, by that engine, so a line can say so
        self.engine_chosen = engine_chosen
        self.other_engines = {}
        self._counted_engine = None  # the engine the last file up to date was counted under
        self.fingerprint = model_fingerprint(model_path)
        self.tag_count = len(tag_names)
        self.embeddings = embeddings
        self.rescan = rescan
        self.log = log
        self._con = connect(self.path)
        self._upgraded = self._con.execute("PRAGMA user_version").fetchone()[0] \
            == SCHEMA_VERSION
        self._columns = files_columns(self._con)
        with self._con:
            self._con.execute(
                "INSERT OR IGNORE INTO models VALUES (?, ?, ?, ?, ?, NULL, ?)",
                (self.fingerprint, os.path.abspath(str(model_path)),
                 json.dumps(list(tag_names)), int(sample_rate), int(window_samples),
                 time.time()))
        self._reader = None
        self._pending = 0
        self._last_commit = time.monotonic()
        self.written = 0
        self.failed = 0
        self.skipped = 0
        self.failures_skipped = 0
        self.changed = 0

    def is_current(self, path: str) -> bool:
        return self.current_scores(path) is not None or self.failed_before(path) is not None

    def _query(self, sql: str, params) -> tuple | None:
        if self._reader is None:
            self._reader = connect(self.path, check_same_thread=False)
        found = self._reader.execute(sql, params).fetchall()  # its read transaction ends
        return found[0] if found else None

    def failed_before(self, path: str) -> str | None:
        """The reason stored for the file at `path` when it could not be
        tagged and has not changed since (counted in `failures_skipped`),
        else None."""
        if self.rescan:
            return None
        try:
            key, size, mtime, ctime = _failure_key(path)
        except OSError:
            return None
        row = self._query("SELECT size, mtime_ns, ctime_ns, error FROM failures WHERE "
                          "path = ? AND model = ?", (key, self.fingerprint))
        if row is None or (row[0], row[1], row[2]) != (size, mtime, ctime):
            return None
        self.failures_skipped += 1
        return row[3]

    def current_scores(self, path: str) -> np.ndarray | None:
        """The stored clip scores of the file at `path` when it is up to date
        (counted in `skipped`), else None."""
        if self.rescan:
            return None
        try:
            key, size, mtime = file_key(path)
        except OSError:
            return None
        choice, rule, engine, hop = (
            name if name in self._columns else "NULL"  # before they came
            for name in ("window_choice", "window_rule", "engine", "hop"))
        row = self._query("SELECT size, mtime_ns, embedding IS NOT NULL, scores, "
                          f"{choice}, {rule}, {engine}, {hop} FROM files WHERE path = ? AND "
                          "model = ?", (key, self.fingerprint))
        current = (row is not None and row[0] == size and row[1] == mtime
                   and (row[4], stored_rule(row[4], row[5])) == (self.windows,
                                                                 self.window_rule)
                   and row[7] == self.hop
                   and (row[2] or not self.embeddings)
                   and isinstance(row[3], bytes)
                   and len(row[3]) == 4 * self.tag_count)  # a damaged row: tagged again
        if not current:
            return None
        self.skipped += 1
        self._counted_engine = None
        if self.engine_chosen and row[6] is not None and row[6] != self.engine:
            self.other_engines[row[6]] = self.other_engines.get(row[6], 0) + 1
            self._counted_engine = row[6]
        return scores_of(row[3])

    def tagged_again(self) -> None:
        """The file `current_scores` last found up to date is tagged after
        all (`tag.py --write-tags` has tags to write into it): it is no
        longer counted as skipped, nor under another engine."""
        self.skipped -= 1
        if self._counted_engine is not None:
            self.other_engines[self._counted_engine] -= 1
            if not self.other_engines[self._counted_engine]:
                del self.other_engines[self._counted_engine]
            self._counted_engine = None

    def add(self, result) -> None:
        """A FileResult of tagging.tag_files (with its embeddings when asked)."""
        key = self._key_as_read(result, "st_size", "st_mtime_ns")
        if key is None:
            return
        key, size, mtime = key
        if not self._upgraded:
            upgrade(self._con)
            self._upgraded = True
            self._columns = files_columns(self._con)
        embedding = None
        if result.embeddings is not None:
            vector = np.asarray(result.embeddings, np.float32).mean(axis=0)
            embedding = vector.astype("<f4").tobytes()
            if self.written == 0:
                self._con.execute("UPDATE models SET embedding_dim = ? WHERE fingerprint = ?",
                                  (int(vector.shape[0]), self.fingerprint))
        self._con.execute(
            "INSERT OR REPLACE INTO files (path, model, size, mtime_ns, duration, sample_rate, "
            "windows, padded, scores, embedding, tagged, window_choice, window_rule, engine, "
            "hop) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key, self.fingerprint, size, mtime, float(result.duration),
             result.file_sample_rate, int(result.windows), int(result.padded),
             np.asarray(result.clip_scores, "<f4").tobytes(), embedding, time.time(),
             self.windows, self.window_rule, self.engine, self.hop))
        self._con.execute("DELETE FROM failures WHERE path = ? AND model = ?",
                          (key, self.fingerprint))
        self.written += 1
        self._wrote()

    def add_failure(self, result) -> None:
        """A failed FileResult of tagging.tag_files: its row in `failures`,
        with the reason; a row of earlier scores of the file goes (they were
        of the file before it changed)."""
        key = self._key_as_read(result, "st_size", "st_mtime_ns", "st_ctime_ns")
        if key is None:
            return
        key, size, mtime, ctime = key
        self._con.execute("INSERT OR REPLACE INTO failures VALUES (?, ?, ?, ?, ?, ?, ?)",
                          (key, self.fingerprint, size, mtime, ctime, str(result.error),
                           time.time()))
        self._con.execute("DELETE FROM files WHERE path = ? AND model = ?",
                          (key, self.fingerprint))
        self.failed += 1
        self._wrote()

    def _key_as_read(self, result, *fields) -> tuple | None:
        """(`path_key`, *`fields` of the file's stat) as it was read
        (`result.read_stat`); None, to store nothing, for a file that is
        gone, was never there, or whose `fields` changed since it was read
        (counted in `changed`)."""
        try:
            now = os.stat(result.path)
        except OSError:  # gone: nothing to record
            return None
        read = result.read_stat
        if read is None:  # not there when it was to be read
            return None
        key = tuple(getattr(read, field) for field in fields)
        if key != tuple(getattr(now, field) for field in fields):
            self.changed += 1
            if self.log is not None:
                self.log(f"{fileio.path_text(result.path)} changed while it was tagged: not "
                         f"stored in {self.path}, the next run tags it again")
            return None
        return (path_key(os.path.abspath(result.path)), *key)

    def _wrote(self) -> None:
        self._pending += 1
        now = time.monotonic()
        if self._pending >= COMMIT_ROWS or now - self._last_commit >= COMMIT_SECONDS:
            self.commit()

    def commit(self) -> None:
        self._con.commit()
        self._pending = 0
        self._last_commit = time.monotonic()

    def close(self) -> None:
        if self._con is not None:
            self.commit()
            self._con.close()
            self._con = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def _failure_key(path: str) -> tuple[str | bytes, int, int, int]:
    """(`path_key` of the absolute path, size, mtime and ctime in ns)."""
    info = os.stat(path)
    return path_key(os.path.abspath(path)), info.st_size, info.st_mtime_ns, info.st_ctime_ns


def stored_rule(choice: int | None, rule: int | None) -> int | None:
    """The window rule of a row whose `window_choice` and `window_rule`
    columns hold `choice` and `rule`: None for every window; an N without a
    rule (a row written before the column came) is the earlier rule's."""
    from tagger.inference.window_choice import EARLIER_RULE

    if choice is None:
        return None
    return EARLIER_RULE if rule is None else rule


def scores_of(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, "<f4").astype(np.float32)
