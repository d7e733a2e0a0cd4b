"""TFRecord files written without TensorFlow, byte for byte as
tf.io.TFRecordWriter writes them (no compression).

Each record is framed as

    length        uint64, little-endian
    length CRC    uint32, little-endian: masked CRC32C of the 8 length bytes
    data          `length` bytes
    data CRC      uint32, little-endian: masked CRC32C of the data

where a CRC32C `crc` is masked as ((crc >> 15 | crc << 17) + 0xa282ead8)
mod 2**32. The build's worker processes frame their clips' records here
(they never import TensorFlow), so the building process only appends them.
"""

from __future__ import annotations

import hashlib
import struct

import google_crc32c
import numpy as np

from tagger import fileio

MASK_DELTA = 0xA282EAD8
SMALL = 1 << 16  # parts of at most this many bytes are joined with the framing


def masked_crc32c(parts) -> int:
    """The masked CRC32C of the concatenation of `parts` (bytes-like)."""
    crc = 0
    for part in parts:
        crc = google_crc32c.extend(crc, _readable(part))
    return (((crc >> 15) | (crc << 17)) + MASK_DELTA) & 0xFFFFFFFF


def frame(parts) -> tuple:
    """One record whose data is the concatenation of `parts` (bytes-like),
    framed, as a tuple of parts to write in order: the length and its CRC,
    `parts` as they are, the data's CRC. A small first or last part is
    joined with its neighbour; a large one is never copied."""
    parts = [part if isinstance(part, bytes) else memoryview(part).cast("B")
             for part in parts]
    length = struct.pack("<Q", sum(len(part) for part in parts))
    header = length + struct.pack("<I", masked_crc32c([length]))
    footer = struct.pack("<I", masked_crc32c(parts))
    if parts and len(parts[0]) <= SMALL:
        header += parts.pop(0)
    if parts and len(parts[-1]) <= SMALL:
        footer = bytes(parts.pop()) + footer
    return (header, *parts, footer)


def framing(parts) -> bytes:
    """A framed record's 16 framing bytes (`frame`'s parts): its length, the
    length's CRC and the data's CRC, which stands for the data."""
    return bytes(parts[0][:12]) + bytes(parts[-1][-4:])


def framing_sha256(path: str) -> str:
    """The SHA-256 of the framing bytes of every record of the TFRecord file
    at `path`, in order (what the builder records as it writes a shard);
    only the framing is read."""
    digest = hashlib.sha256()
    with fileio.open_file(path, "rb") as file:
        while len(header := file.read(12)) == 12:
            (length,) = struct.unpack("<Q", header[:8])
            file.seek(length, 1)
            digest.update(header + file.read(4))
    return digest.hexdigest()


def frame_bytes(data) -> bytes:
    """`data` framed as one record, in one bytes object."""
    return b"".join(frame([data]))


def open_record_file(path: str):
    """A new file at `path` (local, or any tf.io.gfile path) to append
    framed records to: a context manager with .write(bytes-like)."""
    if fileio.is_local(path):
        return open(path, "wb")
    return _BytesWriter(fileio.open_file(path, "wb"))


class _BytesWriter:
    """A GFile that takes memoryviews too (GFile takes bytes only)."""

    def __init__(self, file):
        self.file = file

    def write(self, data) -> None:
        self.file.write(data if isinstance(data, bytes) else bytes(data))

    def close(self) -> None:
        self.file.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _readable(part):
    """`part` as google_crc32c reads it without a copy: bytes, or an array
    over the buffer (it refuses memoryviews and bytearrays)."""
    if isinstance(part, bytes):
        return part
    return np.frombuffer(part, np.uint8)
