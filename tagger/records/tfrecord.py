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
Reading checks both CRCs of every record it returns (`record_spans` and
`read_span`, `read_records`): a damaged or cut file is a DamagedRecords
naming the byte where it goes wrong.
"""

from __future__ import annotations

import hashlib
import itertools
import struct

import google_crc32c
import numpy as np

from tagger import fileio

MASK_DELTA = 0xA282EAD8
HEADER = 12  # a record's length and the length's CRC
FOOTER = 4  # the data's CRC
SMALL = 1 << 16  # parts of at most this many bytes are joined with the framing
READ_BLOCK = 1 << 22  # bytes read at a time where the records' data is checked


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
    records; what is wrong with the file, or None): a record cut short, or
    a length whose CRC32C does not match. Only the framing is read; with
    `check_data` every record's data too, and a data CRC32C that does not
    match is named as well."""
    digest = hashlib.sha256()
    with fileio.open_file(path, "rb") as file:
        file.seek(0, 2)  # to the end: its size (tf.io.gfile does not seek past it)
        left = file.tell()
        file.seek(0)
        for index in itertools.count():
            header = file.read(min(12, left))
            if not header:
                return digest.hexdigest(), None
            if len(header) == 12 and struct.unpack("<I", header[8:])[0] != masked_crc32c(
                    [header[:8]]):
                return digest.hexdigest(), f"record {index}'s length does not match its CRC32C"
            (length,) = struct.unpack("<Q", header[:8].ljust(8, b"\0"))
            if len(header) < 12 or left < 16 + length:
                return digest.hexdigest(), f"record {index} is cut short"
            left -= 16 + length
            if check_data:
                crc = _read_crc32c(file, length)
            else:
                file.seek(length, 1)
            footer = file.read(4)
            if check_data and struct.unpack("<I", footer)[0] != _masked(crc):
                return digest.hexdigest(), f"record {index}'s data does not match its CRC32C"
            digest.update(header + footer)


def _read_crc32c(file, length: int) -> int:
    """The CRC32C of the next `length` bytes of `file` (which holds them), read in blocks."""
    crc = 0
    while length:
        block = file.read(min(length, READ_BLOCK))
        crc = google_crc32c.extend(crc, block)
        length -= len(block)
    return crc


def frame_bytes(data) -> bytes:
    """`data` framed as one record, in one bytes object."""
    return b"".join(frame([data]))


class DamagedRecords(ValueError):
    """A TFRecord file that does not read back: the message says what is
    wrong and at which byte."""


def record_spans(file) -> list:
    """(offset of the data, length) of every record of the open TFRecord
    `file`, in order, each length's CRC checked and the data skipped (not
    read): where a file's records lie, to read them later (`read_span`)."""
    size = file.seek(0, 2)
    spans, at = [], 0
    while at < size:
        file.seek(at)
        length = _length(file.read(HEADER), at)
        end = at + HEADER + length + FOOTER
        if end > size:
            raise DamagedRecords(f"cut: its record at byte {at} of {length} bytes ends at "
                                 f"byte {end}, past the file's end at {size}")
        spans.append((at + HEADER, length))
        at = end
    return spans


def read_span(file, offset: int, length: int) -> memoryview:
    """The data of the record of `file` at (`offset`, `length`) (one of
    `record_spans`), its CRC checked: a read-only view of bytes of its own."""
    file.seek(offset)
    return _checked_data(file, offset, length)


def read_records(file):
    """Yields (offset of the data, data) of every record of the open
    TFRecord `file` in order, the data as `read_span` gives it, both CRCs
    checked."""
    at = file.tell()
    while header := file.read(HEADER):
        length = _length(header, at)
        yield at + HEADER, _checked_data(file, at + HEADER, length)
        at += HEADER + length + FOOTER


def _length(header: bytes, at: int) -> int:
    """The data length a record's header at byte `at` holds, its CRC checked."""
    if len(header) < HEADER:
        raise DamagedRecords(f"cut: {len(header)} bytes of a record's {HEADER}-byte header "
                             f"at byte {at}")
    length, crc = struct.unpack("<QI", header)
    if crc != masked_crc32c([header[:8]]):
        raise DamagedRecords(f"the length of its record at byte {at} fails its checksum")
    return length


def _checked_data(file, offset: int, length: int) -> memoryview:
    buffer = file.read(length + FOOTER)
    if len(buffer) != length + FOOTER:
        raise DamagedRecords(f"cut: its record at byte {offset - HEADER} holds {len(buffer)} "
                             f"of its {length + FOOTER} bytes of data and checksum")
    data = memoryview(buffer)[:length]
    (crc,) = struct.unpack_from("<I", buffer, length)
    if crc != masked_crc32c([data]):
        raise DamagedRecords(f"the data of its record at byte {offset - HEADER} fails its "
                             "checksum")
    return data


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
