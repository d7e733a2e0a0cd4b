"""A shard's framing index: `{split}-NNNN-of-NNNN.framing` beside the
shard `{split}-NNNN-of-NNNN.tfrecord` (not the shard's name and a suffix:
a file system keyed by names, as tf.io.gfile's ram:// is, takes a name
that begins another for a folder), the 16 framing bytes of each of the
shard's records in order (`tfrecord.framing`: its length, the length's
CRC32C, the data's CRC32C), as the build wrote them. Its SHA-256 is the
shard's `shard_framing_sha256` in dataset_info.json, so one read of it,
checked against that digest, gives a reader every record's place and
CRC32Cs without walking the shard's framing (two small reads a record:
on gs://, a request each). Shards built before the build wrote indexes
are walked (`walked`).
"""

from __future__ import annotations

import hashlib

import numpy as np

from tagger import fileio
from tagger.records.tfrecord import FOOTER, HEADER, read_records

SHARD_SUFFIX, INDEX_SUFFIX = ".tfrecord", ".framing"
FRAMING = HEADER + FOOTER  # a record's framing bytes
_FIELDS = np.dtype([("length", "<u8"), ("length_crc", "<u4"), ("data_crc", "<u4")])


def index_path(shard_path: str) -> str:
    """Where the index of the shard at `shard_path` is."""
    return f"{str(shard_path).removesuffix(SHARD_SUFFIX)}{INDEX_SUFFIX}"


def indexed_shard(name: str) -> str:
    """The name of the shard whose index is named `name`; `name` itself
    where it names no index."""
    if name.endswith(INDEX_SUFFIX):
        return f"{name.removesuffix(INDEX_SUFFIX)}{SHARD_SUFFIX}"
    return name


def write_index(shard_path: str, framing: bytes) -> None:
    """Writes the index of the shard at `shard_path` (its records' framing
    bytes, in order), whole or not at all."""
    fileio.write_atomic(index_path(shard_path), framing)


def read_index(shard_path: str) -> bytes | None:
    """The bytes of the index of the shard at `shard_path` (one read), or
    None where there is none."""
    path = index_path(shard_path)
    if not fileio.exists(path):
        return None
    return fileio.read_bytes(path)


class ShardIndex:
    """The records of a shard from their framing bytes (`framing`, 16 a
    record, in order): `len()` of them, each one's `offsets` (where its
    data starts) and `lengths`, `framing_of(i)`, the file's `size` and the
    framing's SHA-256 (`digest`)."""

    def __init__(self, framing: bytes, digest: str | None = None):
        if len(framing) % FRAMING:
            raise ValueError(f"a framing index holds 16 bytes a record, got {len(framing)}")
        self.framing = bytes(framing)
        self.digest = digest or hashlib.sha256(self.framing).hexdigest()
        self.lengths = np.frombuffer(self.framing, _FIELDS)["length"].astype(np.int64)
        starts = np.cumsum(self.lengths + FRAMING) - self.lengths - FOOTER
        self.offsets = starts.astype(np.int64)  # (records,): where each one's data starts
        self.size = int(self.lengths.sum()) + FRAMING * len(self.lengths)

    def __len__(self) -> int:
        return len(self.lengths)

    def spans(self) -> list:
        """((offset of its data, length), ...) of the records, in order."""
        return list(zip(self.offsets.tolist(), self.lengths.tolist()))

    def framing_of(self, record: int) -> bytes:
        return self.framing[record * FRAMING:(record + 1) * FRAMING]

    def holds_its_ends(self, file) -> bool:
        """Whether the open shard `file` frames its first and last records
        as the index does (their lengths and CRC32Cs; four small reads):
        with the file's size, what tells another build's shard of the same
        name, or a cut one, before a record is read."""
        for record in sorted({0, len(self) - 1} if len(self) else ()):
            at = int(self.offsets[record])
            file.seek(at - HEADER)
            header = file.read(HEADER)
            file.seek(at + int(self.lengths[record]))
            if header + file.read(FOOTER) != self.framing_of(record):
                return False
        return True


def walked(path: str) -> ShardIndex:
    """The index of the TFRecord file at `path` read from its framing (each
    length's CRC32C checked; a damaged or cut file is a DamagedRecords):
    two small reads a record."""
    framing = bytearray()
    with fileio.open_file(path, "rb") as file:
        for record in read_records(file, data=False):
            framing += record.framing
    return ShardIndex(bytes(framing))
