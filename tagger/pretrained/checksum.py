"""One original file against the size and sha256 it must have, and the
cache's record of the files that converted.

A reference is either pinned (the registry's `Checksum` of a release file,
as TFDS's checksums files pin every download's size and sha256) or
recorded: for a file with no pin, the `Checksum` of the first one that
converted, kept beside it as `<file>.json`. Only a conversion writes a
record (`write_record`), so a truncated download or a wrong file given by
hand never becomes the reference. `mismatch` compares the size first (no
hashing) and then the sha256.

Importing this module imports no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

from tagger import fileio


@dataclasses.dataclass(frozen=True)
class Checksum:
    """A file's size in bytes and the 64 hex digits of its sha256."""

    size: int
    sha256: str

    @classmethod
    def of(cls, path: str) -> Checksum:
        digest = hashlib.sha256()
        with open(path, "rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
        return cls(os.path.getsize(path), digest.hexdigest())

    def __str__(self) -> str:
        return f"{self.size:,} bytes, sha256 {self.sha256[:12]}..."


def mismatch(path: str, expected: Checksum) -> tuple[str, Checksum | None]:
    """('', the file's Checksum) when `path` is the file `expected`
    describes, else (what differs, in words, and None when the size
    already differed and the file was not hashed)."""
    size = os.path.getsize(path)
    if size != expected.size:
        return f"{size:,} bytes, not {expected.size:,}", None
    found = Checksum.of(path)
    if found.sha256 != expected.sha256:
        return f"sha256 {found.sha256[:12]}..., not {expected.sha256[:12]}...", found
    return "", found


def record_path(original: str) -> str:
    return original + ".json"


def read_record(original: str) -> dict | None:
    """The record of `original` written after it converted ({url, bytes,
    sha256, converter_version, ...}), else None: no record, an unreadable
    one, or one written before a conversion (older caches wrote it at the
    first download; it vouches for nothing)."""
    try:
        with open(record_path(original)) as file:
            record = json.load(file)
    except (OSError, ValueError):
        return None
    if not (isinstance(record, dict) and "converter_version" in record
            and isinstance(record.get("sha256"), str) and isinstance(record.get("bytes"), int)):
        return None
    return record


def recorded(original: str) -> Checksum | None:
    record = read_record(original)
    return None if record is None else Checksum(record["bytes"], record["sha256"])


def write_record(original: str, found: Checksum, url: str, converter_version: int,
                 **fields) -> None:
    """Records that `original` (`found`, fetched from `url`) converted."""
    fileio.write_atomic(record_path(original), json.dumps(
        {**fields, "url": url, "bytes": found.size, "sha256": found.sha256,
         "converter_version": converter_version}, indent=2) + "\n")


def remove(original: str, keep_record: bool) -> None:
    """Removes `original` (and its partial download), and its record unless
    `keep_record`: what failed leaves nothing behind in the cache."""
    for path in (original, original + ".part") + (() if keep_record else
                                                  (record_path(original),)):
        fileio.remove_quietly(path)
