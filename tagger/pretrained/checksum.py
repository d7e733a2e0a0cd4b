"""One original file against the size and sha256 it must have, and the
cache's record of the files that converted.

A reference is either pinned (the registry's `Checksum` of a release file,
as TFDS's checksums files pin every download's size and sha256) or
recorded: for a file with no pin, the `Checksum` of the first one that
converted, kept beside it as `<file>.json` (`tagger.cache.write_record`).
Only a conversion writes a record (`write_record`), so a truncated download
or a wrong file given by hand never becomes the reference.
`tagger.cache.mismatch` compares the size first (no hashing) and then the
sha256.

Importing this module imports no TensorFlow.
"""

from __future__ import annotations

from tagger import cache, fileio
from tagger.cache import Checksum


def record_path(original: str) -> str:
    return original + ".json"


def read_record(original: str) -> dict | None:
    """The record of `original` written after it converted ({url, bytes,
    sha256, converter_version, ...}), else None: no record, an unreadable
    one, or one written before a conversion (older caches wrote it at the
    first download; it vouches for nothing)."""
    record = cache.read_record(record_path(original))
    return record if record is not None and "converter_version" in record else None


def recorded(original: str) -> Checksum | None:
    record = read_record(original)
    return None if record is None else Checksum(record["bytes"], record["sha256"])


def write_record(original: str, found: Checksum, url: str, converter_version: int,
                 **fields) -> None:
    """Records that `original` (`found`, fetched from `url`) converted."""
    cache.write_record(record_path(original), found, **fields, url=url,
                       converter_version=converter_version)


def remove(original: str, keep_record: bool) -> None:
    """Removes `original` (and its partial download), and its record unless
    `keep_record`: what failed leaves nothing behind in the cache."""
    for path in (original, original + ".part") + (() if keep_record else
                                                  (record_path(original),)):
        fileio.remove_quietly(path)
