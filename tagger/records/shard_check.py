"""The shards of a split checked against their dataset_info.json before
they are read, by every reader: each shard's records found from its
framing index (`shard_index`: one read, its SHA-256 the digest the build
recorded, `shard_framing_sha256`), the shard's size and its first and
last records' framing checked against it; and the split's first record
parsed as dataset_info.json describes its clips (`check_clips`). A shard
replaced by another build's valid shard of the same name, or cut short,
is refused in one line rather than read; so is a dataset_info.json
edited since the build (its `num_tags`, its features' dtype or shape).
The readers check each record's data against its CRC32C as they read it
(the TensorFlow-free reader its whole framing against the index's too).

A shard without an index (records built before the build wrote them, or
copied without them), or whose index, size or ends differ from what
dataset_info.json and the index hold, has its framing walked
(`shard_index.walked`: two small reads a record, each length's CRC32C
checked) and the SHA-256 of that framing compared with the digest: that
walk says what is wrong with the shard. A shard is checked once a process
while the file keeps its size and modification time
(`shard_state.file_stat`); an epoch's reading takes its result again.
Records built before the builder recorded the digest are walked for their
records alone.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import threading

from tagger import fileio
from tagger.errors import UserError
from tagger.records.info import DatasetInfo, clip_count_error, shard_paths, unreadable_shard
from tagger.records.schema import parse_clip
from tagger.records.shard_index import ShardIndex, read_index, walked
from tagger.records.shard_state import file_stat
from tagger.records.tfrecord import DamagedRecords, OtherRecords, read_span

WALKERS = 8  # shards checked side by side (reads of a few bytes each: latency bound)
OTHER_RECORDS = ("does not hold the records its dataset_info.json lists (their lengths and "
                 "CRC32Cs differ: the shard was replaced, by another build's say, or cut short)")

_CHECKED = {}  # path -> ((size, mtime_ns), its ShardIndex)
_CLIPS_CHECKED = set()  # (path, digest, segment shape, dtype, num_tags or None) parsed so
_LOCK = threading.Lock()


def split_records(data_dir: str, info: DatasetInfo, split: str,
                  with_tags: bool = True) -> list:
    """Per shard of `split`, in order: its ShardIndex (`len()` its records,
    `spans()` their (offset of the data, length)), each shard checked
    against the digest dataset_info.json records for it; a split holding
    another number of clips than dataset_info.json lists is a UserError,
    and so is a shard that is missing, damaged or another one than the
    build wrote (`ShardErrors`), or whose clips are not the ones
    dataset_info.json describes (`check_clips`; their tags only
    `with_tags`: a reader that reads them)."""
    paths = shard_paths(data_dir, info, split)
    digests = info.splits[split].get("shard_framing_sha256") or [None] * len(paths)
    with concurrent.futures.ThreadPoolExecutor(min(WALKERS, max(len(paths), 1))) as pool:
        indexes = list(pool.map(lambda job: shard_records(*job, split),
                                zip(paths, digests)))
    found, expected = sum(map(len, indexes)), info.splits[split]["clips"]
    if found != expected:
        raise clip_count_error(data_dir, split, found, expected)
    check_clips(paths, indexes, info, split, with_tags)
    return indexes


def shard_records(path: str, expected: str | None, split: str) -> ShardIndex:
    """The ShardIndex of the shard of `split` at `path` (`split_records`),
    its framing's SHA-256 checked against `expected` (None: not checked)."""
    with ShardErrors(path, split):
        stat = file_stat(path)
        if stat is None:
            raise FileNotFoundError(path)
        with _LOCK:
            known = _CHECKED.get(path)
        if known is None or known[0] != stat:
            known = (stat, indexed(path, stat[0], expected) or walked(path))
            with _LOCK:
                _CHECKED[path] = known
    if expected is not None and known[1].digest != expected:
        raise unreadable_shard(path, split, OTHER_RECORDS)
    return known[1]


def indexed(path: str, size: int, expected: str | None) -> ShardIndex | None:
    """The shard's ShardIndex from its index file where that holds the
    framing whose SHA-256 is `expected`, the shard is `size` bytes long as
    the index says and its first and last records are framed as the index
    says; else None (the shard's framing is walked)."""
    if expected is None:
        return None
    framing = read_index(path)
    if framing is None or hashlib.sha256(framing).hexdigest() != expected:
        return None
    index = ShardIndex(framing, expected)
    if index.size != size:
        return None
    with fileio.open_file(path, "rb") as file:
        return index if index.holds_its_ends(file) else None


def check_clips(paths: list, indexes: list, info: DatasetInfo, split: str,
                with_tags: bool = True) -> None:
    """The first record of `split` (of its first shard that holds one)
    parsed as dataset_info.json describes the clips (`schema.parse_clip`,
    what the TensorFlow-free reader parses every record with): one that
    holds another dtype, segment shape or (`with_tags`) number of tags is a
    UserError naming its shard, before a reader reads the split."""
    first = next(((path, index) for path, index in zip(paths, indexes) if len(index)), None)
    if first is None:
        return
    path, index = first
    shape, dtype = tuple(info.segment_shape), info.features["dtype"]
    key = (path, index.digest, shape, dtype)
    tags = info.num_tags if with_tags else None
    with _LOCK:
        if (*key, tags) in _CLIPS_CHECKED:
            return
    with ShardErrors(path, split), fileio.open_file(path, "rb") as file:
        data = read_span(file, int(index.offsets[0]), int(index.lengths[0]))
    try:
        parse_clip(data, info.num_tags, shape, dtype, with_tags)
    except ValueError as error:
        raise UserError(f"shard {path!r} of the {split} split does not hold the clips its "
                        f"dataset_info.json describes (its first record: {error}); put back "
                        "the dataset_info.json the build wrote, or rebuild the dataset") from None
    with _LOCK:  # its tags checked: so is the rest
        _CLIPS_CHECKED.update({(*key, tags), (*key, None)})


class ShardErrors:
    """Inside it, a failed read of the shard of `split` at `path` is its
    UserError (missing, damaged, another than its index lists, unreadable;
    on a gs:// path without TensorFlow, what to do)."""

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
        if isinstance(error, OtherRecords):
            raise unreadable_shard(self.path, self.split, OTHER_RECORDS) from None
        if isinstance(error, OSError):
            raise unreadable_shard(self.path, self.split, "could not be read "
                                   f"({fileio.describe_os_error(error)})") from None
        if isinstance(error, ImportError) and not fileio.is_local(self.path):
            raise UserError(f"shard {self.path!r} is read through tf.io.gfile, which needs "
                            "TensorFlow; copy the records to a local folder or install "
                            "TensorFlow") from None
        return False
