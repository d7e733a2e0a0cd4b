"""The one reader of a results database (tag.py --db), behind
tagger-library and tagger-similar.

- The database is opened read-only (`results_db.open_read_only`: in a
  folder this process cannot write, as immutable), so reading it never
  needs to write beside it.
- A damaged file (SQLite's "database disk image is malformed", met on
  whichever page is damaged, perhaps halfway through an export) is one
  UserError naming the database; so is a damaged row (a scores or
  embedding blob whose length does not fit the model's tags or embedding
  size), naming the row's path as well.
- Paths come back as the file system's functions take them
  (`results_db.path_of_key`: a name stored as bytes is decoded losslessly).
- The files that could not be tagged (the `failures` table) are read only
  by `failures`; every reader of scores or embeddings reads `files`, which
  holds scored files only.

    with ResultsReader("library.sqlite") as reader:
        model = reader.choose_model()
        for row in reader.scored(model): ...
"""

from __future__ import annotations

import json
import os
import sqlite3

import numpy as np

from tagger.errors import UserError
from tagger.fileio import not_a_file, path_text
from tagger.inference.library import results_db


class ResultsReader:
    """Reads the results database at `path`; UserError when it is absent,
    not ours, unreadable or damaged (see the module docstring). Use it as a
    context manager, or call `close()`."""

    def __init__(self, path: str):
        self.path = str(path)
        kind = not_a_file(self.path)
        if kind:
            raise UserError(f"--db {self.path!r} is {kind}; give the database file tag.py "
                            "--db wrote")
        if not os.path.isfile(self.path):
            raise UserError(f"--db {self.path!r} not found; write one with tag.py MODEL FOLDER "
                            f"--db {self.path}")
        try:
            ours = results_db.is_results_db(self.path)
        except OSError as error:
            raise UserError(f"cannot read --db {self.path!r}: "
                            f"{error.strerror or error}") from None
        except sqlite3.Error as error:
            raise self._damaged(error) from None
        if not ours:
            raise UserError(f"--db {self.path!r} is not a results database written by "
                            "tag.py --db")
        try:
            self._con = results_db.open_read_only(self.path)
            version = self._con.execute("PRAGMA user_version").fetchone()[0]
        except sqlite3.Error as error:
            raise self._damaged(error) from None
        if version not in results_db.READABLE_VERSIONS:
            self.close()
            raise UserError(f"{self.path!r} is a results database of schema version {version}; "
                            f"this version of tagger reads versions "
                            f"{results_db.READABLE_VERSIONS[0]} to {results_db.SCHEMA_VERSION}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if getattr(self, "_con", None) is not None:
            self._con.close()
            self._con = None

    def _damaged(self, error: Exception) -> UserError:
        text = str(error).splitlines()[0] if str(error) else type(error).__name__
        damaged = (isinstance(error, sqlite3.DatabaseError)
                   and not isinstance(error, sqlite3.OperationalError))
        if damaged or "malformed" in text:
            return UserError(f"{self.path!r} is damaged ({text}); restore it from a backup, "
                             "or tag the library into a new database with tag.py --db")
        return UserError(f"cannot read --db {self.path!r}: {text}")

    def rows(self, sql: str, params=()):
        """Yields the rows of a query; an SQLite error on the way is one
        UserError naming the database."""
        try:
            cursor = self._con.execute(sql, params)
            yield from cursor
        except sqlite3.Error as error:
            raise self._damaged(error) from None

    def one(self, sql: str, params=()):
        """The first row of a query, or None."""
        return next(self.rows(sql, params), None)

    # -- models --------------------------------------------------------------

    def has_failures(self) -> bool:
        """Whether the database has the `failures` table (one written before
        it came has none)."""
        return self.one("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = "
                        "'failures'") is not None

    def models(self) -> list[dict]:
        """Every model in the database with its counts of tagged files
        (`files`) and of files that could not be tagged (`failures`), newest
        first."""
        failures = ("(SELECT COUNT(*) FROM failures x WHERE x.model = m.fingerprint)"
                    if self.has_failures() else "0")
        found = []
        for r in self.rows(
                "SELECT m.fingerprint, m.path, m.tag_names, m.embedding_dim, m.sample_rate, "
                "m.window_samples, (SELECT COUNT(*) FROM files f WHERE f.model = "
                f"m.fingerprint), {failures} FROM models m ORDER BY m.added DESC"):
            try:
                names = json.loads(r[2])
            except ValueError:
                raise UserError(f"{self.path!r} is damaged (the tag names of model "
                                f"{r[0][:12]} are not JSON); restore it from a backup, or tag "
                                "the library into a new database with tag.py --db") from None
            found.append(dict(fingerprint=r[0], path=r[1], tag_names=names,
                              embedding_dim=r[3], sample_rate=r[4], window_samples=r[5],
                              files=r[6], failures=r[7]))
        return found

    def choose_model(self, wanted: str | None = None, failures: bool = False) -> dict:
        """The model whose rows to read: `wanted` (a fingerprint prefix or
        the model's path), or the only model holding rows (tagged files;
        with `failures`, tagged or failed ones); UserError otherwise."""
        known = self.models()
        found = [m for m in known if m["files"] or (failures and m["failures"])]
        if wanted:
            matches = [m for m in found if m["fingerprint"].startswith(wanted)
                       or os.path.abspath(wanted) == m["path"]]
            if len(matches) != 1:
                listed = "; ".join(f"{m['fingerprint'][:12]} {m['path']}" for m in found)
                raise UserError(f"--model {wanted!r} matches {len(matches)} of the models in "
                                f"{self.path!r} ({listed or 'none'}); give a fingerprint prefix")
            return matches[0]
        if not found:
            failed = sum(m["failures"] for m in known)
            raise UserError(f"{self.path!r} holds no tagged files yet" + (
                f" ({failed} file{'s' if failed != 1 else ''} could not be tagged: "
                f"tagger-library failures --db {self.path} lists them)" if failed else ""))
        if len(found) > 1:
            listed = "; ".join(f"{m['fingerprint'][:12]} {m['path']} ({m['files']} files)"
                               for m in found)
            raise UserError(f"{self.path!r} holds the results of {len(found)} models: "
                            f"{listed}; choose one with --model FINGERPRINT")
        return found[0]

    # -- rows ----------------------------------------------------------------

    def vector(self, blob, size: int, path, what: str) -> np.ndarray:
        """(size,) float32 of a little-endian float32 `blob` (a row's
        `what`: "scores", "embedding"); UserError naming the row when its
        length does not fit."""
        if not isinstance(blob, bytes) or len(blob) != 4 * size:
            held = f"{len(blob)} bytes" if isinstance(blob, bytes) else f"a {type(blob).__name__}"
            raise UserError(
                f"{self.path!r}: the row of {path_text(results_db.path_of_key(path))} is "
                f"damaged (its {what} {'hold' if what == 'scores' else 'holds'} {held}, where "
                f"{size} float32 values take {4 * size}); tag.py --db {self.path} with the "
                "same model tags that file again")
        return np.frombuffer(blob, "<f4").astype(np.float32, copy=False)

    def scored(self, model: dict):
        """Yields a dict per file of `model`, in path order: `path`, `size`,
        `mtime_ns`, `duration`, `sample_rate`, `windows`, `padded`,
        `scores` ((tags,) float32)."""
        count = len(model["tag_names"])
        for path, size, mtime, duration, rate, windows, padded, blob in self.rows(
                "SELECT path, size, mtime_ns, duration, sample_rate, windows, padded, scores "
                "FROM files WHERE model = ? ORDER BY path", (model["fingerprint"],)):
            yield dict(path=results_db.path_of_key(path), size=size, mtime_ns=mtime,
                       duration=duration, sample_rate=rate, windows=windows, padded=padded,
                       scores=self.vector(blob, count, path, "scores"))

    def failures(self, model: dict):
        """Yields a dict per file of `model` that could not be tagged, in
        path order: `path`, `size`, `mtime_ns`, `error` (the reason, as
        tag.py gave it), `tried` (seconds since the epoch)."""
        if not self.has_failures():
            return
        for path, size, mtime, error, tried in self.rows(
                "SELECT path, size, mtime_ns, error, tried FROM failures WHERE model = ? "
                "ORDER BY path", (model["fingerprint"],)):
            yield dict(path=results_db.path_of_key(path), size=size, mtime_ns=mtime,
                       error=error, tried=tried)

    def matrices(self, model: dict, what: str, chunk: int = 4096, with_rowids: bool = False):
        """Yields (keys, (n, size) float32) chunks of up to `chunk` rows of
        `model`'s files, in path order: `what` is "scores" (size: the tags)
        or "embedding" (size: the embedding's; rows without one are left
        out). `keys`: the paths, or with `with_rowids` the rowids (in rowid
        order). Every blob's length is checked before the chunk is read as
        one array."""
        if what not in ("scores", "embedding"):
            raise ValueError(f"what must be scores or embedding, got {what!r}")
        size = len(model["tag_names"]) if what == "scores" else (model["embedding_dim"] or 0)
        key = "rowid" if with_rowids else "path"
        extra = ", path" if with_rowids else ""  # to name a damaged row
        try:
            cursor = self._con.execute(
                f"SELECT {key}, {what}{extra} FROM files WHERE model = ? AND {what} IS NOT "
                f"NULL ORDER BY {key}", (model["fingerprint"],))
            while block := cursor.fetchmany(chunk):
                columns = list(zip(*block))
                keys, blobs = list(columns[0]), columns[1]
                if set(map(type, blobs)) != {bytes} or set(map(len, blobs)) != {4 * size}:
                    for blob, path in zip(blobs, columns[2 if with_rowids else 0]):
                        self.vector(blob, size, path, what)  # raises, naming the row
                if not with_rowids and set(map(type, keys)) != {str}:
                    keys = [results_db.path_of_key(path) for path in keys]
                yield keys, np.frombuffer(b"".join(blobs), "<f4").reshape(len(blobs), size)
        except sqlite3.Error as error:
            raise self._damaged(error) from None

    def stored_embedding(self, model: dict, path: str) -> np.ndarray | None:
        """The embedding stored for the file at `path` when its row is up to
        date (same size and modification time), else None."""
        if not os.path.isfile(path):
            return None
        key, size, mtime = results_db.file_key(path)
        row = self.one("SELECT size, mtime_ns, embedding FROM files WHERE path = ? AND "
                       "model = ?", (key, model["fingerprint"]))
        if row is None or row[2] is None or (row[0], row[1]) != (size, mtime):
            return None
        return self.vector(row[2], model["embedding_dim"] or 0, key, "embedding")

    def window_choice(self, model: dict) -> int | None:
        """The N of `tag.py --windows N` that chose the windows of most of
        `model`'s stored embeddings; None: every window (also a database
        written before `window_choice` came)."""
        return self._most_embeddings(model, "window_choice")

    def engine(self, model: dict) -> str | None:
        """The tagging engine that gave most of `model`'s stored embeddings;
        None where that is not recorded (rows written before `engine` came)."""
        return self._most_embeddings(model, "engine")

    def hop(self, model: dict) -> int | None:
        """The step in samples of the windows' grid of most of `model`'s
        stored embeddings (`tag.py --hop`); None: the model's own step (also
        a database written before `hop` came)."""
        return self._most_embeddings(model, "hop")

    def _most_embeddings(self, model: dict, column: str):
        """The value of `column` in most of `model`'s rows with an
        embedding (the least of the most common), or None for a database
        without the column."""
        columns = {row[1] for row in self.rows("PRAGMA table_info(files)")}
        if column not in columns:
            return None
        row = self.one(f"SELECT {column} FROM files WHERE model = ? AND embedding IS NOT "
                       f"NULL GROUP BY {column} ORDER BY COUNT(*) DESC, {column} LIMIT 1",
                       (model["fingerprint"],))
        return None if row is None else row[0]

    def path_of_rowid(self, rowid: int) -> str | None:
        row = self.one("SELECT path FROM files WHERE rowid = ?", (int(rowid),))
        return None if row is None else results_db.path_of_key(row[0])

    def embedding_count(self, model: dict) -> int:
        return self.one("SELECT COUNT(*) FROM files WHERE model = ? AND embedding IS NOT "
                        "NULL", (model["fingerprint"],))[0]

    def embeddings_state(self, model: dict) -> str:
        """What an index of `model`'s embeddings was built from: changes
        whenever a row is added or replaced (a replaced row gets a new rowid)."""
        count, top, tagged = self.one(
            "SELECT COUNT(*), MAX(rowid), MAX(tagged) FROM files WHERE model = ? AND "
            "embedding IS NOT NULL", (model["fingerprint"],))
        return f"{count}:{top}:{tagged}"
