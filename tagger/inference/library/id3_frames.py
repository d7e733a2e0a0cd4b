"""Our frames in an ID3v2 tag (an MP3's, or a WAV's `id3 ` chunk), and
every other byte of the tag as it was (file_tags, tag.py --write-tags).

The tag is read and written here, as its bytes. mutagen rebuilds every
tag it saves from what it understood of it: it converts frames between
versions, drops frames of zero size and those whose ID is not four of
A-Z0-9, merges an ID3v1 tag in, guesses at v2.4 frame sizes and writes
the header without its unsynchronisation or footer. It only decodes our
own frames here, one at a time, with its public `ID3` reader. Here:

- the frames are walked by their sizes and each is kept as its bytes, in
  its place; ours (`TXXX` with our description, `TCON` when the genre is
  written) are replaced where the first of each stood, other copies of
  them removed, and new ones follow the last frame;
- a frame of zero size, or whose ID is not four of A-Z0-9, is kept like
  any other: its size says exactly where the next frame starts; but when
  what follows such an ID cannot be walked as frames (one would run past
  the tag's end), the walk stops there and the rest is padding, kept byte
  for byte (the text some programs leave after the last frame, or spaces,
  where mutagen stops too);
- v2.4 frame sizes are 7 bits a byte (syncsafe), or 8, as older iTunes
  wrote them: the reading that walks the frames to padding of zeros, then
  the one that meets more IDs of A-Z0-9, is taken (the syncsafe one on a
  tie), and our frames are written with it; a tag that neither reading
  walks (a frame of an ID of A-Z0-9 running past the tag's end) is
  refused, not guessed at;
- the header keeps its version and flags. With unsynchronisation (0x80)
  our frames are unsynchronised too (in v2.2 and v2.3 the whole tag after
  the header, in v2.4 each frame's data); a v2.4 footer (0x10) is written
  again for the tag's new size; an extended header is kept, with its CRC
  (and v2.3's padding size) made true again;
- the padding's zeros after its last other byte take up what our frames
  add or free, so the audio stays where it was when it can (1 KiB of new
  zeros when it cannot; a tag with a footer and no padding gets none);
- a file without a tag gets a v2.4 one; nothing outside the tag changes
  (an MP3's audio and end: ID3v1, `TAG+`, APEv2; a WAV's other chunks),
  but for a WAV's RIFF and chunk sizes, and the pad byte each odd-sized
  chunk before ours lacked, put in right after that chunk (a chunk found
  where the byte belongs is read too). Refused: a WAV that lacks such a
  byte before its `data` chunk (one put in would move its audio); one
  whose last chunk runs past the RIFF's end (written as a stream, or cut
  short: a chunk after it would be its audio); one whose sizes are
  unfinished (RIFF 8 and data 0, as libsndfile leaves them until it
  closes the file; any RIFF that ends before its `data` chunk; a `data`
  chunk of size 0 that bytes follow): readers guess where its audio ends,
  and its recording may be going on still, so the sizes are not made up.
"""

from __future__ import annotations

import io
import os
import re
import struct
import zlib
from typing import NamedTuple

from tagger.mp3_frames import id3v2_length, syncsafe_value

HEADER = 10  # "ID3", version, revision, flags, size (and so a v2.4 footer)
UNSYNCHRONISED, EXTENDED, FOOTER = 0x80, 0x40, 0x10
NEW_PADDING = 1024  # when our frames outgrow the padding
V22_IDS = {b"TXXX": b"TXX", b"TCON": b"TCO"}  # our frames' IDs in v2.2
OURS = {4: tuple(V22_IDS), 3: tuple(V22_IDS), 2: tuple(V22_IDS.values())}
WAVE_CHUNK = b"id3 "
STREAMED = 0xFFFFFFFF  # a RIFF or chunk size a stream writer leaves (its length unknown)


class UnreadableTag(ValueError):
    """An ID3v2 tag whose frames cannot be told apart; the file is left as it is."""


class Tag(NamedTuple):
    """An ID3v2 tag as it is stored. `frames`, `extended` (the extended
    header) and `padding` are their bytes in the file (in an unsynchronised
    v2.2 or v2.3 tag, unsynchronised); `plain_sizes`: v2.4 frame sizes of 8
    bits a byte."""

    version: int
    flags: int
    extended: bytes
    frames: list
    padding: bytes
    plain_sizes: bool = False

    @property
    def whole_unsynchronised(self) -> bool:  # v2.2, v2.3: all after the header
        return self.version < 4 and bool(self.flags & UNSYNCHRONISED)


NEW_TAG = Tag(4, 0, b"", [], b"")


class Place(NamedTuple):
    """Where a file's tag is: bytes [start, end) hold it (`start == end`:
    none); in a WAV, `chunk` is the `id3 ` chunk's [start, end) around it,
    and `pads` where the pad bytes that odd-sized chunks before it lack go in."""

    start: int
    end: int
    chunk: tuple | None = None
    pads: tuple = ()


# -- the file ------------------------------------------------------------------------


def read(path: str, wave: bool) -> tuple:
    """(Tag, Place) of the ID3v2 tag of the MP3 (`wave`: WAV) at `path`:
    NEW_TAG where it has none. UnreadableTag says why one cannot be read."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        place, limit = Place(0, 0), f.tell()
        if wave:
            place, limit = _wave_place(f)
        f.seek(place.start)
        head = f.read(min(HEADER, limit - place.start))
        if head[:3] != b"ID3":
            if wave and head:
                raise UnreadableTag("its `id3 ` chunk holds no ID3v2 tag")
            return NEW_TAG, place
        length = id3v2_length(head)
        if place.start + length > limit:
            raise UnreadableTag(f"its ID3v2 tag says it takes {length} bytes, and the "
                                f"{'chunk' if wave else 'file'} holds "
                                f"{limit - place.start}")
        f.seek(place.start)
        return parse(f.read(length)), place._replace(end=place.start + length)


def write(path: str, place: Place, tag: Tag) -> None:
    """Puts `tag` where `place` says; the bytes after it move, nothing else
    changes but a WAV's chunk and RIFF sizes (and its chunk's pad byte, and
    those odd-sized chunks before it lacked: `place.pads`)."""
    data = to_bytes(tag)
    with open(path, "r+b") as f:
        if place.chunk is None:
            _splice(f, place.start, place.end, data)
            return
        before = f.seek(0, os.SEEK_END)
        for pad in reversed(place.pads):  # right after each odd-sized chunk that lacks it
            _splice(f, pad, pad, b"\x00")
        moved = len(place.pads)
        start, end = (at + moved for at in place.chunk)
        place = Place(place.start + moved, place.end + moved)
        if start == end:  # a new chunk, after the last one
            _splice(f, start, end, WAVE_CHUNK + bytes(4))
            end, place = start + 8, Place(start + 8, start + 8)
        f.seek(start + 4)
        size = int.from_bytes(f.read(4), "little")
        new_size = size + len(data) - (place.end - place.start)
        _splice(f, min(start + 8 + size, end), end, bytes(new_size % 2))  # its pad byte
        _splice(f, place.start, place.end, data)
        f.seek(start + 4)
        f.write(struct.pack("<I", new_size))
        grown = f.seek(0, os.SEEK_END) - before
        f.seek(4)
        riff = int.from_bytes(f.read(4), "little")
        if riff != STREAMED:  # a stream's unknown length stays unknown
            f.seek(4)
            f.write(struct.pack("<I", riff + grown))


def _wave_place(f) -> tuple:
    """(Place, where its data ends) of a WAV's `id3 ` chunk; a new chunk
    goes after the last chunk. UnreadableTag when its sizes were never
    written (`_unfinished`), or when another chunk before it runs past the
    RIFF's end (a WAV written as a stream, its data size 0xFFFFFFFF, or one
    cut short): a chunk after it would be read as part of it (as audio),
    and where it truly ends the file does not tell."""
    f.seek(0)
    riff = int.from_bytes(f.read(12)[4:8], "little")
    length = f.seek(0, os.SEEK_END)
    end = min(length, 8 + riff)
    chunks, pads, at, past_end = _chunks(f, end)
    walked = [*chunks, past_end] if past_end else chunks
    _unfinished(walked, riff, length)
    for chunk_at, chunk_id, size in walked:
        if chunk_id.lower() == WAVE_CHUNK:
            stop = min(chunk_at + 8 + size + size % 2, end)
            pads = [pad for pad in pads if pad <= chunk_at]
            _audio_stays(walked, pads)
            return (Place(chunk_at + 8, chunk_at + 8, (chunk_at, stop), tuple(pads)),
                    min(chunk_at + 8 + size, end))
    _audio_stays(walked, pads)
    if past_end is not None:
        chunk_id, size = past_end[1:]
        said = ("is 0xFFFFFFFF (it was written as a stream)" if size == STREAMED else
                f"says {size} bytes, and the RIFF holds {end - past_end[0] - 8} after its "
                "header")
        raise UnreadableTag(f"its {chunk_id.decode('latin-1')!r} chunk's size {said}: a tag "
                            "after it would be read as part of it; rewrite the file with its "
                            "true sizes (with sox or ffmpeg) to tag it")
    return Place(at, at, (at, at), tuple(pads)), at


def _chunks(f, end: int) -> tuple:
    """([(start, ID, size)] of the chunks of a WAV whose RIFF ends at
    `end`, where each odd-sized chunk's pad byte lacks (its start), where
    the last one ends, and (start, ID, size) of a chunk running past `end`
    (the walk stops there) or None."""
    chunks, pads, at = [], [], 12
    while at + 8 <= end:
        f.seek(at)
        chunk_id, size = struct.unpack("<4sI", f.read(8))
        if at + 8 + size > end:
            return chunks, pads, at, (at, chunk_id, size)
        chunks.append((at, chunk_id, size))
        at, lacks_pad = _next_chunk(f, at + 8 + size, size, end)
        if lacks_pad:
            pads.append(at)
    return chunks, pads, at, None


def _unfinished(chunks: list, riff: int, length: int) -> None:
    """UnreadableTag for a WAV whose sizes were never written, as a
    recorder leaves them until it closes the file (libsndfile's: RIFF 8,
    data 0): its RIFF holds no `data` chunk and the file holds more, or its
    `data` chunk's size is 0 and bytes follow it. A reader guesses where
    its audio ends (libsndfile takes the rest of the file, but only while
    the sizes are 8 and 0), so a chunk put in by its sizes would be read
    before its audio or as part of it; its sizes are not made up here
    either: the recording may be going on still. `chunks`: (start, ID,
    size) of those that start within the RIFF."""
    data = next(((at, size) for at, chunk_id, size in chunks if chunk_id == b"data"), None)
    if data is None and 8 + riff < length:
        said = (f"its RIFF size says {riff} bytes, and the file holds {length - 8} after its "
                "header, its 'data' chunk not within them")
    elif data is not None and data[1] == 0 and data[0] + 8 < length:
        said = f"its 'data' chunk's size is 0, and {length - data[0] - 8} bytes follow its header"
    else:
        return
    raise UnreadableTag(f"{said}: its sizes are unfinished (its recording was stopped "
                        "before the file was closed, or is still going on); rewrite the file "
                        "with its true sizes (with sox or ffmpeg) to tag it")


def _audio_stays(chunks: list, pads: list) -> None:
    """UnreadableTag where a pad byte to put in (`pads`) goes before the
    `data` chunk (`chunks`: (start, ID, size)): it would move the audio,
    which readers now find elsewhere or not at all, and so change what
    they play."""
    data = next((at for at, chunk_id, _ in chunks if chunk_id == b"data"), None)
    if data is None or not pads or pads[0] > data:
        return
    odd = next(chunk_id for at, chunk_id, size in chunks if at + 8 + size == pads[0])
    raise UnreadableTag(f"its {odd.decode('latin-1')!r} chunk is of an odd size and lacks the "
                        "pad byte after it, before its 'data' chunk: putting one in would move "
                        "its audio and change what readers make of it; rewrite the file (with "
                        "sox or ffmpeg) to tag it")


def _next_chunk(f, after: int, size: int, end: int) -> tuple:
    """(where the chunk after one of `size` bytes ending at `after` starts,
    whether its pad byte lacks): after its pad byte when `size` is odd, or
    at `after` when the pad byte is missing (as some writers leave it): a
    chunk header that fits in the RIFF (`end`) is found there and not after
    the pad byte, or the RIFF ends there."""
    padded = after + size % 2
    if padded == after:
        return after, False
    if padded > end:  # the last chunk, its pad byte left out
        return end, True
    if padded + 8 > end or _fits(f, padded, end) or not _fits(f, after, end):
        return padded, False
    return after, True


def _fits(f, at: int, end: int) -> bool:
    """Whether a chunk header at `at` has an ID of printable ASCII and a
    size that ends within the RIFF (`end`)."""
    f.seek(at)
    chunk_id, size = struct.unpack("<4sI", f.read(8))
    return all(0x20 <= byte < 0x7F for byte in chunk_id) and at + 8 + size <= end


def _splice(f, start: int, end: int, data: bytes, block: int = 1 << 20) -> None:
    """Puts `data` in place of bytes [start, end) of the open file `f`,
    moving what follows by the difference, a block at a time."""
    f.seek(0, os.SEEK_END)
    size, shift = f.tell(), len(data) - (end - start)
    if shift > 0:  # from the last block back, each moved before it is written over
        at = size
        while at > end:
            step = min(block, at - end)
            at -= step
            f.seek(at)
            moved = f.read(step)
            f.seek(at + shift)
            f.write(moved)
    elif shift < 0:
        at = end
        while at < size:
            f.seek(at)
            moved = f.read(block)
            f.seek(at + shift)
            f.write(moved)
            at += len(moved)
        f.truncate(size + shift)
    f.seek(start)
    f.write(data)


# -- the tag's bytes --------------------------------------------------------------------


def parse(data: bytes) -> Tag:
    """The Tag whose bytes (header to footer) are `data`."""
    version, flags = data[3], data[5]
    if version not in (2, 3, 4):
        raise UnreadableTag(f"its ID3v2 tag is of version 2.{version}, and 2.2 to 2.4 are known")
    if version == 2 and flags & 0x40:
        raise UnreadableTag("its ID3v2.2 tag is compressed, which no reader knows how to undo")
    body = data[HEADER:HEADER + syncsafe_value(data[6:10])]
    unsynchronised = version < 4 and bool(flags & UNSYNCHRONISED)
    stream = _Stream(body, unsynchronised)
    extended = _extended_header(stream, version, flags)
    walks = [_walk(stream, extended, version, plain) for plain in
             ((False, True) if version == 4 else (False,))]
    walks = [walk for walk in walks if walk is not None]
    if not walks:
        raise UnreadableTag("a frame of its ID3v2 tag runs past the tag's end (its sizes read "
                            "either way), so its frames cannot be told apart")
    frames, plain, _ = max(walks, key=lambda walk: walk[2])  # the syncsafe one on a tie
    end = sum(map(len, frames), len(extended))
    return Tag(version, flags, extended, frames, body[end:], plain)


def to_bytes(tag: Tag) -> bytes:
    """The bytes of `tag`: header, extended header, frames, padding and (v2.4
    with the flag) footer."""
    pieces = [*tag.frames, tag.padding]
    if tag.whole_unsynchronised:  # a frame that ends in ff now before a 00 keeps it an ff
        pieces = [piece + b"\x00" if piece.endswith(b"\xff") and (
            nxt[:1] == b"" or nxt[0] == 0 or nxt[0] >= 0xE0) else piece
                  for piece, nxt in zip(pieces, [*pieces[1:], b""])]
    body = _extended_again(tag, pieces) + b"".join(pieces)
    header = b"ID3" + bytes([tag.version, 0, tag.flags]) + _syncsafe(len(body))
    return header + body + (b"3DI" + header[3:] if tag.version == 4 and tag.flags & FOOTER
                            else b"")


def with_frames(tag: Tag, frames: dict) -> Tag:
    """`tag` with `frames` ({key: (ID, [strings])}, keys as mutagen's:
    `TXXX:tagger`, `TCON`) in place of the frames of those keys; the padding
    takes up the difference."""
    made = {key: _frame(tag, name, strings) for key, (name, strings) in frames.items()}
    kept, placed = [], set()
    for frame in tag.frames:
        key = _key(tag, frame)
        if key not in made:
            kept.append(frame)
        elif key not in placed:
            kept.append(made[key])
            placed.add(key)
    kept += [frame for key, frame in made.items() if key not in placed]
    text = tag.padding.rstrip(b"\x00")  # what another program left there stays
    left = len(tag.padding) - len(text) - (sum(map(len, kept)) - sum(map(len, tag.frames)))
    if tag.version == 4 and tag.flags & FOOTER and not tag.padding:
        left = 0  # a footer comes with no padding
    elif left < 0:
        left = NEW_PADDING
    return tag._replace(frames=kept, padding=text + bytes(left))


def _key(tag: Tag, frame: bytes) -> str | None:
    """mutagen's key of one of our kinds of frame (`TXXX:tagger`, `TCON`),
    None for other frames and for one mutagen cannot read."""
    read = decoded(tag, frame)
    return None if read is None else read.HashKey


def decoded(tag: Tag, frame: bytes):
    """One frame of `tag` as mutagen reads it (a mutagen Frame, as in a
    v2.4 tag), if it is of our kinds (TXXX, TCON) and readable; else None."""
    from mutagen import MutagenError
    from mutagen.id3 import ID3

    if frame[:4 if tag.version > 2 else 3] not in OURS[tag.version]:
        return None
    flags = 0
    if tag.whole_unsynchronised:
        frame = _synchronised(frame)
    elif tag.version == 4:
        flags = tag.flags & UNSYNCHRONISED
        frame = frame[:4] + _syncsafe(_header_size(frame, 4, tag.plain_sizes)) + frame[8:]
    alone = b"ID3" + bytes([tag.version, 0, flags]) + _syncsafe(len(frame)) + frame
    try:
        read = ID3(io.BytesIO(alone), load_v1=False)
    except MutagenError:
        return None
    return next(iter(read.values()), None)


def _frame(tag: Tag, name: bytes, strings: list) -> bytes:
    """A text frame (`TXXX`, `TCON`: its v2.4 ID) holding `strings` in
    `tag`'s version and sizes: UTF-8 in v2.4, UTF-16 before (which has no
    UTF-8)."""
    if tag.version == 4:
        data = b"\x03" + b"\x00".join(s.encode("utf-8") for s in strings)
        # unsynchronisation would leave it as it is: UTF-8 holds no ff byte
    else:
        data = b"\x01" + b"\x00\x00".join(b"\xff\xfe" + s.encode("utf-16-le") for s in strings)
    if tag.version == 2:
        frame = V22_IDS[name] + len(data).to_bytes(3, "big") + data
    else:
        size = len(data).to_bytes(4, "big") if tag.version == 3 or tag.plain_sizes \
            else _syncsafe(len(data))
        frame = name + size + b"\x00\x00" + data
    return _unsynchronised(frame) if tag.whole_unsynchronised else frame


# -- the frames' walk ---------------------------------------------------------------------


class _Stream:
    """A tag's body read as the bytes it stands for (in an unsynchronised
    v2.2 or v2.3 tag, `ff 00` stands for `ff`); `at`: where in the body."""

    def __init__(self, body: bytes, unsynchronised: bool):
        self.body, self.unsynchronised, self.at = body, unsynchronised, 0

    def take(self, count: int) -> bytes:
        taken = bytearray()
        while len(taken) < count and self.at < len(self.body):
            want = count - len(taken)
            # a stuffed 00 right after the last byte wanted is taken with it
            stuffed = self.body.find(b"\xff\x00", self.at, self.at + want + 1) \
                if self.unsynchronised else -1
            if stuffed < 0:
                taken += self.body[self.at:self.at + want]
                self.at = min(self.at + want, len(self.body))
            else:
                taken += self.body[self.at:stuffed + 1]
                self.at = stuffed + 2
        return bytes(taken)


def _extended_header(stream: _Stream, version: int, flags: int) -> bytes:
    """The extended header at the start of the body, as stored (b"" when
    the flag is not set, or when a frame starts there, as mutagen reads it)."""
    if version == 2 or not flags & EXTENDED:
        return b""
    head = stream.take(4)
    if re.fullmatch(rb"[A-Z0-9]{4}", head):
        stream.at = 0
        return b""
    size = syncsafe_value(head) - 4 if version == 4 else int.from_bytes(head, "big")
    if size < 0 or len(stream.take(size)) < size:
        raise UnreadableTag("the extended header of its ID3v2 tag runs past the tag's end")
    return stream.body[:stream.at]


def _walk(stream: _Stream, extended: bytes, version: int, plain: bool):
    """([each frame as stored], plain, score) of the frames after the
    extended header, their sizes read `plain` (v2.4); None when a frame
    runs past the body's end and no odd ID came before it. From a frame
    whose ID is not of A-Z0-9, when what follows cannot be walked as frames
    (the last such ID before a frame that runs past the end), the rest is
    padding (the text some programs leave there). The score: (padding all
    zeros, frames with an ID of A-Z0-9)."""
    stream.at = len(extended)
    head_size, id_size = (6, 3) if version == 2 else (10, 4)
    frames, known, last_odd = [], 0, None
    while True:
        start = stream.at
        head = stream.take(head_size)
        if len(head) < head_size or not head[:id_size].strip(b"\x00"):
            stream.at = start
            break
        is_known = bool(re.fullmatch(rb"[A-Z0-9]{%d}" % id_size, head[:id_size]))
        if not is_known:
            last_odd = (start, len(frames), known)
        size = _header_size(head, version, plain)
        if size is None or len(stream.take(size)) < size:
            if last_odd is None:
                return None
            stream.at, count, known = last_odd
            del frames[count:]
            break
        frames.append(stream.body[start:stream.at])
        known += is_known
    padding = stream.body[stream.at:]
    return frames, plain, (not padding.strip(b"\x00"), known)


def _header_size(head: bytes, version: int, plain: bool) -> int | None:
    """A frame's data size from its header; None for a syncsafe size with
    a byte over 7 bits."""
    if version == 2:
        return int.from_bytes(head[3:6], "big")
    if version == 3 or plain:
        return int.from_bytes(head[4:8], "big")
    if any(byte & 0x80 for byte in head[4:8]):
        return None
    return syncsafe_value(head[4:8])


def _extended_again(tag: Tag, pieces: list) -> bytes:
    """The extended header of `tag` with what it says of the frames made
    true: its CRC (v2.3: of the frames; v2.4: of all after it) and v2.3's
    padding size; `pieces`: the frames and padding as stored."""
    extended = tag.extended
    if not extended:
        return extended
    if tag.version == 4:
        flags = extended[5] if len(extended) > 5 else 0
        at = 7 + bool(flags & 0x40)  # the CRC, after its length byte and the update flag's
        if flags & 0x20 and len(extended) >= at + 5:
            crc = zlib.crc32(b"".join(pieces))
            crc35 = bytes((crc >> shift) & 0x7F for shift in (28, 21, 14, 7, 0))
            extended = extended[:at] + crc35 + extended[at + 5:]
        return extended
    plain = _synchronised(extended) if tag.whole_unsynchronised else extended
    frames = b"".join(_synchronised(p) if tag.whole_unsynchronised else p
                      for p in pieces[:-1])
    padding = len(_synchronised(pieces[-1]) if tag.whole_unsynchronised else pieces[-1])
    if len(plain) >= 10:
        plain = plain[:6] + struct.pack(">I", padding) + plain[10:]
    if len(plain) >= 14 and plain[4] & 0x80:
        plain = plain[:10] + struct.pack(">I", zlib.crc32(frames)) + plain[14:]
    return _unsynchronised(plain) if tag.whole_unsynchronised else plain


# -- sizes and unsynchronisation ----------------------------------------------------------


def _syncsafe(number: int) -> bytes:
    """`number` as ID3v2's 4-byte size of 7 bits a byte."""
    return bytes((number >> shift) & 0x7F for shift in (21, 14, 7, 0))


def _unsynchronised(data: bytes) -> bytes:
    """`data` with a 00 after each ff that a 00 or a byte of 111xxxxx
    follows, or that ends it (ID3v2's unsynchronisation)."""
    return re.sub(rb"\xff(?=[\x00\xe0-\xff]|\Z)", b"\xff\x00", data)


def _synchronised(data: bytes) -> bytes:
    """`data` with unsynchronisation undone: `ff 00` is `ff`."""
    return data.replace(b"\xff\x00", b"\xff")
