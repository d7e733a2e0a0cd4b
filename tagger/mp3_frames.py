"""MPEG audio frame headers (ISO/IEC 11172-3 and 13818-3, layers I-III),
read to tell whether libsndfile gives an MP3 its true length.

libsndfile (mpg123) takes an MP3's length from its Xing/Info or VBRI
header, or without one estimates it from its first frame's length and
the file's size, and decodes no further than that length. So it cuts
short a file whose header counts fewer frames than it holds (two MP3s
joined, the first's header counting its own) or whose frames are shorter
than its first (a variable rate without a header; a constant one whose
first frame is padded), and it counts the bytes of an ID3v2 tag (a
cover) as audio. `length_check` reads what the file's bytes say instead,
cheaply (its tags' headers, the frame headers at its start, a few bytes
where later frames should lie): `audio.open_source` decodes the files
libsndfile would cut short with FFmpeg, which reads every frame, and
gives the others the length their frames hold (tests/test_mp3_frames.py).
Bytes after the last frame that are no frames (padding, a Lyrics3 block)
do not make a constant rate vary: the frames are counted to the last
one, where libsndfile, which fails once it has searched 1 KiB of such
bytes for a frame, is stopped.
"""

from __future__ import annotations

import typing
from fractions import Fraction

FRAMES_WALKED = 64  # frame headers compared: a VBR encoder varies its rate within them
SYNC_SEARCH_BYTES = 64 * 1024  # where the first frame is looked for, after any ID3v2 tag
MAX_FRAME_BYTES = 1729  # layer II at 384 kbit/s and 32 kHz, padded
LENGTH_HEADERS = (b"Xing", b"Info", b"VBRI")

# kbit/s by (MPEG-1?, layer) and the header's index 1-14
_BITRATES = {
    (True, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_BITRATES[(False, 3)] = _BITRATES[(False, 2)]
_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


class FrameHeader(typing.NamedTuple):
    version: int  # 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
    layer: int  # 1, 2 or 3
    bitrate_index: int  # 1-14 (0, free format, is not walked)
    sample_rate: int
    length: int  # bytes, the header included


def frame_header(data: bytes, at: int = 0) -> FrameHeader | None:
    """The frame header at `data[at:at + 4]`, or None where those bytes are
    not one (no sync, a reserved field, free format or a bad bit rate)."""
    if len(data) < at + 4 or data[at] != 0xFF or data[at + 1] & 0xE0 != 0xE0:
        return None
    b1, b2 = data[at + 1], data[at + 2]
    version, layer = b1 >> 3 & 3, 4 - (b1 >> 1 & 3)
    index, rate_index, padding = b2 >> 4, b2 >> 2 & 3, b2 >> 1 & 1
    if version == 1 or layer == 4 or index in (0, 15) or rate_index == 3:
        return None
    mpeg1 = version == 3
    bitrate = _BITRATES[(mpeg1, layer)][index - 1] * 1000
    rate = _RATES[version][rate_index]
    if layer == 1:
        length = (12 * bitrate // rate + padding) * 4
    else:
        length = (144 if mpeg1 or layer == 2 else 72) * bitrate // rate + padding
    return FrameHeader(version, layer, index, rate, length)


def syncsafe_value(size: bytes) -> int:
    """The number in ID3v2's syncsafe bytes: 7 bits each, most significant first."""
    value = 0
    for byte in size:
        value = (value << 7) | (byte & 0x7F)
    return value


def id3v2_length(head: bytes) -> int:
    """The bytes an ID3v2 tag takes, its 10-byte header `head` given:
    header, body and a v2.4 footer (flag 0x10)."""
    return 10 + syncsafe_value(head[6:10]) + (10 if head[3] == 4 and head[5] & 0x10 else 0)




class LengthCheck(typing.NamedTuple):
    """What an MP3's bytes say of the length libsndfile gives it (all None:
    nothing against it). `cut_short`: why libsndfile would decode less
    than the file holds (FFmpeg decodes it); `frames`: the samples per
    channel its frames hold, where libsndfile estimates them (no length
    header, one bit rate throughout); `past_end`: why the length its
    header gives is past the file's end (a file cut short after the
    header was written); `after_frames`: the bytes between the last of
    those frames and the tags at the end that are no frames (padding, a
    Lyrics3 block, an APE tag before one), where libsndfile gives up with
    an error once it has searched 1 KiB of them for a frame: it is read
    no further than `frames`."""

    cut_short: str | None = None
    frames: int | None = None
    past_end: str | None = None
    after_frames: int = 0


def length_check(read, size: int) -> LengthCheck | None:
    """`LengthCheck` of the MP3 that `read(offset, size) -> bytes` reads
    (fewer bytes at its end), `size` bytes long; None where no two frames
    in a row are found near its start. Where the first frame holds a
    Xing/Info or VBRI header, its frame and byte counts are checked
    against each other and the file's size (without its ID3v1 and APEv2
    tags), and frames are looked for past the bytes it counts; without
    one, the first `FRAMES_WALKED` frames must share a bit rate, and
    frames of that rate must lie where one rate throughout puts the
    middle and last frames of the file's size. Reads a few small blocks,
    never the whole file."""
    start = _after_id3v2(read, 0)
    data = read(start, SYNC_SEARCH_BYTES)
    found = _first_frame(data)
    if found is None:
        return None
    at, header = found
    end = _audio_end(read, size)
    frame = data[at:at + header.length]
    for tag in LENGTH_HEADERS:
        if (where := frame.find(tag)) >= 0:
            return _against_length_header(read, start + at, header, tag, frame[where:], end)
    counted = _constant_rate_samples(read, start + at, header, end)
    if counted is None:
        return LengthCheck(cut_short="no header gives its length and its bit rate varies")
    return LengthCheck(frames=counted[0], after_frames=counted[1])


def _after_id3v2(read, at: int) -> int:
    """Where the ID3v2 tags that begin at byte `at` end."""
    while (head := read(at, 10))[:3] == b"ID3" and len(head) == 10:
        at += id3v2_length(head)
    return at


def _audio_end(read, size: int) -> int:
    """Where the frames end: before the ID3v1 and APEv2 tags at the end."""
    end = size
    for _ in range(3):  # ID3v1 and APEv2 (its footer last), in either order
        if end >= 128 and read(end - 128, 3) == b"TAG":
            end -= 128
            continue
        footer = read(end - 32, 32) if end >= 32 else b""
        if footer[:8] != b"APETAGEX":
            break
        has_header = int.from_bytes(footer[20:24], "little") & 0x80000000
        end -= int.from_bytes(footer[12:16], "little") + (32 if has_header else 0)
    return max(end, 0)


def _first_frame(data: bytes):
    """(offset, FrameHeader) of the first frame in `data` that another
    frame of its version, layer and rate follows, or None."""
    at = data.find(b"\xff")
    while 0 <= at < len(data) - 4:
        header = frame_header(data, at)
        following = header and frame_header(data, at + header.length)
        if following and _same_stream(following, header):
            return at, header
        at = data.find(b"\xff", at + 1)
    return None


def _same_stream(a: FrameHeader, b: FrameHeader) -> bool:
    return a.version == b.version and a.layer == b.layer and a.sample_rate == b.sample_rate


def _samples_per_frame(header: FrameHeader) -> int:
    """Per channel: 384 in layer I, 1152 in layer II and MPEG-1 layer III, else 576."""
    if header.layer == 1:
        return 384
    return 1152 if header.layer == 2 or header.version == 3 else 576


def _frame_bytes(header: FrameHeader, bitrate_index: int) -> Fraction:
    """A frame's mean length in bytes at `bitrate_index` (its padding spread)."""
    kbps = _BITRATES[(header.version == 3, header.layer)][bitrate_index - 1]
    return Fraction(_samples_per_frame(header) * kbps * 1000, 8 * header.sample_rate)


def _against_length_header(read, first: int, header: FrameHeader, tag: bytes, fields: bytes,
                           end: int) -> LengthCheck:
    """The check of an MP3 whose first frame, at byte `first`, holds a
    length header (`fields`: from its tag on; `end`: where the frames end)."""
    flags = int.from_bytes(fields[4:8], "big")
    frames = counted = None
    if tag == b"VBRI" and len(fields) >= 18:
        counted, frames = int.from_bytes(fields[10:14], "big"), int.from_bytes(fields[14:18],
                                                                               "big")
    elif tag != b"VBRI" and flags & 3 == 3 and len(fields) >= 16:
        frames, counted = int.from_bytes(fields[8:12], "big"), int.from_bytes(fields[12:16],
                                                                              "big")
    if not frames or not counted:
        return LengthCheck(cut_short="its length header gives no frame and byte counts")
    shortest, longest = _frame_bytes(header, 1) - 1, _frame_bytes(header, 14) + 4
    if not shortest * frames <= counted <= longest * (frames + 1):  # with or without itself
        return LengthCheck(cut_short=f"its length header's {frames} frames cannot fill the "
                                     f"{counted} bytes it counts")
    if first + counted > end:
        return LengthCheck(past_end=f"its length header counts {first + counted - end} bytes "
                                    "more than the file holds")
    following = _after_id3v2(read, first + counted)
    if following < end and _first_frame(read(following, min(SYNC_SEARCH_BYTES,
                                                             end - following))):
        return LengthCheck(cut_short="frames follow the bytes its length header counts")
    return LengthCheck()


def _constant_rate_samples(read, first: int, header: FrameHeader, end: int) -> tuple | None:
    """(samples per channel, bytes after them) of the frames from byte
    `first` on, where the stream keeps `header`'s bit rate throughout: its
    first `FRAMES_WALKED` frames have it, and frames of it lie where one
    rate puts the middle and the last ones (within a padding slot); None
    otherwise. The last is the one before `end`, or where bytes that are no
    frames end the file (padding, a Lyrics3 block), the last found where
    one rate puts it (`_last_frame`) when no frames follow it."""
    data = read(first, FRAMES_WALKED * MAX_FRAME_BYTES + 4)
    at = 0
    for _ in range(FRAMES_WALKED):
        walked = frame_header(data, at)
        if walked is None or first + at + walked.length > end:
            break
        if not _same_stream(walked, header) or walked.bitrate_index != header.bitrate_index:
            return None
        at += walked.length
    grid = _Grid(read, first, header)
    count = int((end - first + grid.slot) / grid.mean)
    if count < 1:
        return None
    last, after = count - 1, 0
    if grid.frame(last) is None:
        last = _last_frame(grid, last)
        found = grid.frame(last)
        frames_end = found + frame_header(read(found, 4)).length
        if frames_end < end and _first_frame(read(frames_end, min(SYNC_SEARCH_BYTES,
                                                                 end - frames_end))):
            return None  # frames follow: their rate is another
        after = max(0, end - frames_end)
    if grid.frame(last // 2) is None:
        return None
    return (last + 1) * _samples_per_frame(header), after


class _Grid:
    """Where one bit rate (`header`'s) puts each frame of a stream whose
    first frame is at byte `first`: frame k within a padding slot of
    `first + k * mean`."""

    def __init__(self, read, first: int, header: FrameHeader):
        self.read, self.first, self.header = read, first, header
        self.mean = _frame_bytes(header, header.bitrate_index)
        self.slot = 4 if header.layer == 1 else 1

    def frame(self, k: int) -> int | None:
        """Where a frame of the stream's rate lies near frame k's place, or None."""
        place = self.first + round(k * self.mean)
        low = max(0, place - self.slot)
        near = self.read(low, 3 * self.slot + 4)
        for i in range(place + self.slot + 1 - low):
            found = frame_header(near, i)
            if found and _same_stream(found, self.header) and \
                    found.bitrate_index == self.header.bitrate_index:
                return low + i
        return None


def _last_frame(grid: _Grid, missing: int) -> int:
    """The last frame on `grid` before frame `missing`, which is not there
    (frame 0 is): halving the frames between, a few reads for any length."""
    there = 0
    while missing - there > 1:
        middle = (there + missing) // 2
        if grid.frame(middle) is None:
            missing = middle
        else:
            there = middle
    return there
