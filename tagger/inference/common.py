"""Helpers every part of `inference` shares: the cores this process may
use, a model file's fingerprint, the tag names of a saved model."""

from __future__ import annotations

import hashlib
import os

from tagger import fileio
from tagger.config import join_path
from tagger.cpu_features import available_cores  # noqa: F401 (the engines' import)

_FINGERPRINTS: dict = {}  # (path, its files' stat) -> fingerprint, this process's


def model_fingerprint(path) -> str:
    """SHA-256 (hex) of the model file's bytes; of a folder's files (their
    relative names and bytes, in sorted order). Local paths are read with
    the standard library, so names may hold any bytes; others (gs://,
    ram://, ...) through tf.io.gfile. A local file read once is not read
    again while its size, times and inode stay the same (one run asks for
    it from several places: the int8 cache, the engine's timing, --db)."""
    path = os.fspath(path)
    if not fileio.is_local(path):
        return _fingerprint(path, local=False)
    state = (path, tuple(_stat_of(full) for _, full in _local_files(path)))
    if state not in _FINGERPRINTS:
        _FINGERPRINTS[state] = _fingerprint(path, local=True)
    return _FINGERPRINTS[state]


def _stat_of(path: bytes) -> tuple:
    found = os.stat(path)
    return path, found.st_size, found.st_mtime_ns, found.st_ctime_ns, found.st_ino


def _fingerprint(path: str, local: bool) -> str:
    digest = hashlib.sha256()
    for relative, full in (_local_files(path) if local else _gfile_files(path)):
        if relative is not None:
            digest.update(relative + b"\0")
        with open(full, "rb") if local else fileio.open_file(full, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _local_files(path: str):
    """(relative name, full path), both bytes, of each file under the local
    folder `path`: each folder's files, then its subfolders, sorted (as
    os.walk goes); (None, path) for a file."""
    top = os.fsencode(path)  # the names' own bytes, valid UTF-8 or not
    if not os.path.isdir(top):
        yield None, top
        return
    for root, dirs, names in os.walk(top):
        dirs.sort()
        for name in sorted(names):
            full = os.path.join(root, name)
            yield os.path.relpath(full, top), full


def _gfile_files(path: str, relative: str = ""):
    """`_local_files` of a path in any tf.io.gfile file system: the relative
    names UTF-8 encoded, the full paths text."""
    if not relative and not fileio.isdir(path):
        yield None, path
        return
    names = fileio.listdir(path)  # sorted, folders without a trailing "/"
    folders = [name for name in names if fileio.isdir(join_path(path, name))]
    for name in names:
        if name not in folders:
            yield (relative + name).encode(), join_path(path, name)
    for name in folders:
        yield from _gfile_files(join_path(path, name), f"{relative}{name}/")


