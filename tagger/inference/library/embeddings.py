"""Embeddings written one file at a time into a .npz archive.

Keys, for every tagged input path P (as its text in the report,
`fileio.path_text`: a backslash doubled, a byte that is not valid UTF-8 as
`\\xNN`, so two files never share a key):

    P             -> (dim,) float32, the mean over P's windows
    P + "::windows" -> (windows, dim) float32, one vector per window

(A P that itself ends with "::windows" or "::mean" gets "::mean" added,
so no file's key is another's windows: `entry_key`.)

    data = np.load("embeddings.npz")
    data["music/song.mp3"], data["music/song.mp3::windows"]

`read_embeddings` maps the keys back to the paths (`fileio.path_from_text`).

The archive is an ordinary `np.savez` zip, written entry by entry so a
long run never holds all vectors in memory, under a temporary name that
is renamed into place when complete.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np

from tagger import fileio

WINDOWS_SUFFIX = "::windows"
MEAN_SUFFIX = "::mean"


def entry_key(path) -> str:
    """The key of `path`'s mean in the archive: its text (`fileio.path_text`),
    "::mean" added where that text ends with "::windows" or "::mean", so
    that only window entries end with "::windows" and the keys of two
    paths never meet."""
    text = fileio.path_text(path)
    return text + MEAN_SUFFIX if text.endswith((WINDOWS_SUFFIX, MEAN_SUFFIX)) else text


def path_of_key(key: str) -> str:
    """The path whose `entry_key` is `key` (in an archive of an earlier
    version, a path's key is its text: `x::mean` stays `x::mean`)."""
    text = key.removesuffix(MEAN_SUFFIX)
    added = text != key and text.endswith((WINDOWS_SUFFIX, MEAN_SUFFIX))
    return fileio.path_from_text(text if added else key)


def is_embeddings_file(path: str) -> bool:
    """Whether `path` is an archive `EmbeddingWriter` wrote (a zip of .npy
    entries in pairs KEY and KEY::windows), so `--embeddings` may replace it."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    if not all(name.endswith(".npy") for name in names):
        return False
    keys = {name[:-4] for name in names}
    return all(key.endswith(WINDOWS_SUFFIX) or key + WINDOWS_SUFFIX in keys for key in keys)


def read_embeddings(path: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{input path (as `os.fsdecode` holds it): (mean (dim,), per window
    (windows, dim))} of the archive at `path` (an earlier version's too: a
    key without a backslash is the same text in both)."""
    with np.load(path, allow_pickle=False) as data:
        return {path_of_key(key): (data[key], data[key + WINDOWS_SUFFIX])
                for key in data.files if not key.endswith(WINDOWS_SUFFIX)}


class EmbeddingWriter:
    """`add(path, per_window)` for each file, then `close()` (or use `with`)."""

    def __init__(self, path: str):
        self.path = str(path)
        refused = fileio.not_a_file_error(self.path)  # a FIFO or device stays what it is
        if refused:
            raise refused
        self._tmp = fileio.temporary_path(self.path)
        self._zip = zipfile.ZipFile(self._tmp, "w", zipfile.ZIP_STORED, allowZip64=True)
        self.count = 0

    def add(self, key: str, per_window: np.ndarray) -> None:
        key = entry_key(key)  # an entry's name is UTF-8 text
        per_window = np.asarray(per_window, np.float32)  # (windows, dim)
        self._write(key, per_window.mean(axis=0))
        self._write(key + WINDOWS_SUFFIX, per_window)
        self.count += 1

    def _write(self, key: str, array: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
        self._zip.writestr(key + ".npy", buffer.getvalue())

    def close(self) -> None:
        """Completes the archive and renames it into place."""
        if self._zip is not None:
            self._zip.close()
            self._zip = None
            fileio.rename(self._tmp, self.path)

    def abort(self) -> None:
        """Drops the partial archive; an existing file at `path` stays as it was."""
        if self._zip is not None:
            self._zip.close()
            self._zip = None
            fileio.remove_quietly(self._tmp)

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        if kind is None:
            self.close()
        else:
            self.abort()
