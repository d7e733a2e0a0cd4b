"""TFRecord files written and read without TensorFlow, byte for byte as
tf.io.TFRecordWriter writes them (no compression).

Each record is framed as

    length        uint64, little-endian
    length CRC    uint32, little-endian: masked CRC32C of the 8 length bytes
    data          `length` bytes
    data CRC      uint32, little-endian: masked CRC32C of the data

where a CRC32C `crc` is masked as ((crc >> 15 | crc << 17) + 0xa282ead8)
mod 2**32. The build's worker processes frame their clips' records here
(they never import TensorFlow), so the building process only appends them.
One reader walks the framing (`read_records`, the data read or skipped;
`read_span` reads one record again, `read_record` one with its framing
checked against a framing index's): every length and every data read
is checked against its CRC32C, and a damaged or cut file is a
DamagedRecords naming the record by its byte and what is wrong.
"""

from __future__ import annotations

import hashlib
import struct
from typing import NamedTuple

import google_crc32c
import numpy as np

from tagger import fileio

MASK_DELTA = 0xA282EAD8
HEADER = 12  # a record's length and the length's CRC
FOOTER = 4  # the data's CRC
SMALL = 1 << 16  # parts of at most this many bytes are joined with the framing


def masked_crc32c(parts) -> int:
    """The masked CRC32C of the concatenation of `parts` (bytes-like)."""
    crc = 0
    for part in parts:
        crc = google_crc32c.extend(crc, _readable(part))
    return _masked(crc)


def _masked(crc: int) -> int:
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
    return read_framing(path)[0]


def read_framing(path: str, check_data: bool = False) -> tuple[str, str | None]:
    """(`framing_sha256` of the TFRecord file at `path`, of its whole
    records; what is wrong with the file, or None): `read_records`'s
    DamagedRecords message. Only the framing is read; with `check_data`
    every record's data too, checked against its CRC32C."""
    digest = hashlib.sha256()
    with fileio.open_file(path, "rb") as file:
        try:
            for record in read_records(file, data=check_data):
                digest.update(record.framing)
                del record  # its data freed before the next is read, as in read_records
        except DamagedRecords as error:
            return digest.hexdigest(), str(error)
    return digest.hexdigest(), None


def frame_bytes(data) -> bytes:
    """`data` framed as one record, in one bytes object."""
    return b"".join(frame([data]))


class DamagedRecords(ValueError):
    """A TFRecord file that does not read back: the message names the
    record by the byte it starts at and says what is wrong with it."""


class OtherRecords(ValueError):
    """A TFRecord file whose records are not the ones its framing index
    lists (valid records of another file, their lengths or CRCs differ)."""


class Record(NamedTuple):
    """A record of a TFRecord file: where its data starts (byte), its
    length, its 16 framing bytes (`framing`), its data (a read-only view of
    bytes of its own) or None where the data was not read."""

    offset: int
    length: int
    framing: bytes
    data: memoryview | None


def read_records(file, data: bool = True):
    """Yields the Record of every record of the open TFRecord `file` (local,
    or a tf.io.gfile file) from its start, in order, its length checked
    against its CRC32C; with `data`, its data read and checked against its
    CRC32C, else skipped unread (never past the file's end: tf.io.gfile
    refuses it). A cut or damaged record is a DamagedRecords, raised
    before it would be yielded."""
    file.seek(0, 2)
    size, at = file.tell(), 0
    file.seek(0)
    while at < size:
        header = file.read(HEADER)
        if len(header) < HEADER:
            raise DamagedRecords(_cut(at, at + len(header)))
        length, crc = struct.unpack("<QI", header)
        if crc != masked_crc32c([header[:8]]):
            raise DamagedRecords(f"the length of its record at byte {at} does not match "
                                 "its CRC32C")
        if at + HEADER + length + FOOTER > size:
            raise DamagedRecords(_cut(at, size))
        if data:
            view, footer = _data(file, at, length)
        else:
            file.seek(length, 1)
            view, footer = None, file.read(FOOTER)
        yield Record(at + HEADER, length, header + footer, view)
        del view  # not held while the next record is read (its memory is reused)
        at += HEADER + length + FOOTER


def read_span(file, offset: int, length: int) -> memoryview:
    """The data of the record of `file` whose data is at (`offset`,
    `length`) (a `read_records` Record's), its CRC32C checked, as
    `read_records` gives it."""
    file.seek(offset)
    return _data(file, offset - HEADER, length)[0]


def read_record(file, offset: int, length: int, framing: bytes) -> memoryview:
    """The data of the record of `file` whose data is at (`offset`,
    `length`), read with its framing in one read: its length and data
    checked against their CRC32Cs (DamagedRecords), and its framing
    against `framing`, the 16 bytes a framing index holds for it
    (OtherRecords)."""
    at = offset - HEADER
    file.seek(at)
    buffer = file.read(HEADER + length + FOOTER)
    view = memoryview(buffer)
    if len(view) >= HEADER and view[8:HEADER] != struct.pack("<I", masked_crc32c([view[:8]])):
        raise DamagedRecords(f"the length of its record at byte {at} does not match its CRC32C")
    if len(view) >= HEADER and view[:HEADER] != framing[:HEADER]:
        raise OtherRecords(f"its record at byte {at} is not the one its index lists")
    if len(view) < HEADER + length + FOOTER:
        file.seek(0, 2)
        raise DamagedRecords(_cut(at, file.tell()))
    data, footer = view[HEADER:HEADER + length], view[HEADER + length:]
    if footer != struct.pack("<I", masked_crc32c([data])):
        raise DamagedRecords(f"the data of its record at byte {at} does not match its CRC32C")
    if footer != framing[HEADER:]:
        raise OtherRecords(f"its record at byte {at} is not the one its index lists")
    return data


def _data(file, at: int, length: int) -> tuple:
    """(data, data CRC bytes) of the record at byte `at` of `file`, read
    from the file's position, the CRC checked."""
    buffer = file.read(length + FOOTER)
    if len(buffer) < length + FOOTER:
        file.seek(0, 2)
        raise DamagedRecords(_cut(at, file.tell()))
    data, footer = memoryview(buffer)[:length], buffer[length:]
    if footer != struct.pack("<I", masked_crc32c([data])):
        raise DamagedRecords(f"the data of its record at byte {at} does not match its CRC32C")
    return data, footer


def _cut(at: int, end: int) -> str:
    return f"its record at byte {at} is cut short: the file ends at byte {end}"


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
