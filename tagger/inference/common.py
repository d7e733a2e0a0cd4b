"""Helpers every part of `inference` shares: the cores this process may
use, a model file's fingerprint, the tag names of a saved model."""

from __future__ import annotations

import hashlib
import os


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def model_fingerprint(path: str) -> str:
    """SHA-256 (hex) of the model file's bytes; of a folder's files (their
    relative names, as the names' bytes, and their bytes, in sorted order)."""
    digest = hashlib.sha256()
    path = str(path)
    if os.path.isdir(path):
        for root, dirs, names in os.walk(path):
            dirs.sort()
            for name in sorted(names):
                full = os.path.join(root, name)
                digest.update(os.fsencode(os.path.relpath(full, path)) + b"\0")
                _hash_file(digest, full)
    else:
        _hash_file(digest, path)
    return digest.hexdigest()


def _hash_file(digest, path: str) -> None:
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)


def tag_names_of(model, info) -> tuple[list[str], str | None]:
    """(tag names, warning or None): the names of `info` (the model's
    TaggerMetadata, or None), or tag_0..tag_{n-1}."""
    count = int(model.outputs[0].shape[-1])
    names = list(info.tag_names) if info else []
    if len(names) == count:
        return [str(name) for name in names], None
    fallback = [f"tag_{i}" for i in range(count)]
    if not names:
        return fallback, (f"the model carries no tag names (not saved by train.py); "
                          f"using tag_0..tag_{count - 1}")
    return fallback, (f"the model names {len(names)} tags but predicts {count}; "
                      f"using tag_0..tag_{count - 1}")
