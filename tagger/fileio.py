"""File access that works for local paths and for any tf.io.gfile scheme.

Local paths use the standard library (cheap, no TensorFlow import, fine in
worker processes); paths with a scheme (gs://, ram://, ...) go through
tf.io.gfile, imported on first use.
"""

from __future__ import annotations

import os
import re

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_local(path: str) -> bool:
    return not _SCHEME.match(str(path))


def _gfile():
    import tensorflow as tf
    return tf.io.gfile


def exists(path: str) -> bool:
    path = str(path)
    return os.path.exists(path) if is_local(path) else _gfile().exists(path)


def isdir(path: str) -> bool:
    path = str(path)
    return os.path.isdir(path) if is_local(path) else _gfile().isdir(path)


def makedirs(path: str) -> None:
    path = str(path)
    if is_local(path):
        os.makedirs(path, exist_ok=True)
    else:
        _gfile().makedirs(path)


def listdir(path: str) -> list[str]:
    path = str(path)
    names = os.listdir(path) if is_local(path) else _gfile().listdir(path)
    return sorted(name.rstrip("/") for name in names)


def remove(path: str) -> None:
    path = str(path)
    if is_local(path):
        os.remove(path)
    else:
        _gfile().remove(path)


def rmdir(path: str) -> None:
    """Removes an empty folder."""
    path = str(path)
    if is_local(path):
        os.rmdir(path)
    else:
        _gfile().remove(path)


def rename(src: str, dst: str) -> None:
    """Atomic on local file systems; overwrites `dst`."""
    src, dst = str(src), str(dst)
    if is_local(src):
        os.replace(src, dst)
    else:
        _gfile().rename(src, dst, overwrite=True)


def open_file(path: str, mode: str = "r"):
    path = str(path)
    return open(path, mode) if is_local(path) else _gfile().GFile(path, mode)


def read_bytes(path: str) -> bytes:
    with open_file(path, "rb") as f:
        return f.read()


def read_text(path: str) -> str:
    with open_file(path, "r") as f:
        return f.read()


def write_atomic(path: str, data: bytes | str) -> None:
    """Writes to a temporary name beside `path`, then renames it into place."""
    tmp = f"{path}.tmp"
    with open_file(tmp, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    rename(tmp, path)
