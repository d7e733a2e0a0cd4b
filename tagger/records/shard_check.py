"""The shards of a split checked against their dataset_info.json as they are
read, by every reader: each shard's records found by walking its framing
(`tfrecord.read_records` without the data: every length's CRC32C checked),
and the SHA-256 of that framing compared with the digest the build
recorded (`shard_framing_sha256`), so that a shard replaced by another
build's valid shard of the same name is refused in one line rather than
read. The framing holds each record's data CRC32C, which the readers
check against the data they read: a shard whose framing is the build's
holds the build's data.

The walk is made once a process for a shard while the file keeps its size
and modification time (`shard_state.file_stat`); an epoch's reading
takes its result again. Records built before the builder recorded the
digest are walked for their records alone.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import threading

from tagger import fileio
from tagger.errors import UserError
from tagger.records.info import DatasetInfo, clip_count_error, shard_paths, unreadable_shard
from tagger.records.shard_state import file_stat
from tagger.records.tfrecord import DamagedRecords, read_records

WALKERS = 8  # shards walked side by side (reads of a few bytes each: latency bound)

_WALKED = {}  # path -> ((size, mtime_ns), its records' ((offset, length), ...), digest)
_LOCK = threading.Lock()


def split_records(data_dir: str, info: DatasetInfo, split: str) -> list:
    """Per shard of `split`, in order: ((offset of its data, length), ...)
    of its records, each shard checked against the digest dataset_info.json
    records for it; a split holding another number of clips than
    dataset_info.json lists is a UserError, and so is a shard that is
    missing, damaged or another one than the build wrote (`ShardErrors`)."""
    paths = shard_paths(data_dir, info, split)
    digests = info.splits[split].get("shard_framing_sha256") or [None] * len(paths)
    with concurrent.futures.ThreadPoolExecutor(min(WALKERS, max(len(paths), 1))) as pool:
        walked = list(pool.map(lambda job: shard_records(*job, split),
                               zip(paths, digests)))
    found, expected = sum(map(len, walked)), info.splits[split]["clips"]
    if found != expected:
        raise clip_count_error(data_dir, split, found, expected)
    return walked


def shard_records(path: str, expected: str | None, split: str) -> tuple:
    """((offset of its data, length), ...) of the records of the shard of
    `split` at `path` (`split_records`), its framing's SHA-256 checked
    against `expected` (None: not checked)."""
    with ShardErrors(path, split):
        stat = file_stat(path)
        with _LOCK:
            known = _WALKED.get(path)
        if known is None or known[0] != stat:
            records, digest = walk(path)
            known = (stat, records, digest)
            with _LOCK:
                _WALKED[path] = known
    if expected is not None and known[2] != expected:
        raise unreadable_shard(path, split, "does not hold the records its "
                               "dataset_info.json lists (their lengths and CRC32Cs differ: the "
                               "shard was replaced, by another build's say, or cut short)")
    return known[1]


def walk(path: str) -> tuple:
    """(((offset, length), ...) of the records of the TFRecord file at
    `path`, the SHA-256 of their framing): only the framing is read."""
    digest, records = hashlib.sha256(), []
    with fileio.open_file(path, "rb") as file:
        for record in read_records(file, data=False):
            digest.update(record.framing)
            records.append((record.offset, record.length))
    return tuple(records), digest.hexdigest()


class ShardErrors:
    """Inside it, a failed read of the shard of `split` at `path` is its
    UserError (missing, damaged, unreadable; on a gs:// path without
    TensorFlow, what to do)."""

    def __init__(self, path: str, split: str):
        self.path, self.split = path, split

    def __enter__(self):
        return self

    def __exit__(self, kind, error, trace):
        if error is None or isinstance(error, UserError):
            return False
        if isinstance(error, FileNotFoundError):
            raise unreadable_shard(self.path, self.split, "is missing") from None
        if isinstance(error, DamagedRecords):
            raise unreadable_shard(self.path, self.split, f"is damaged ({error})") from None
        if isinstance(error, OSError):
            raise unreadable_shard(self.path, self.split, "could not be read "
                                   f"({fileio.describe_os_error(error)})") from None
        if isinstance(error, ImportError) and not fileio.is_local(self.path):
            raise UserError(f"shard {self.path!r} is read through tf.io.gfile, which needs "
                            "TensorFlow; copy the records to a local folder or install "
                            "TensorFlow") from None
        return False
