"""MPEG audio frame headers (ISO/IEC 11172-3 and 13818-3, layers I-III),
read to tell whether libsndfile gives an MP3 its true length.

Without a Xing/Info or VBRI header, libsndfile (mpg123) estimates an MP3's
length from its first frame's bit rate and decodes no further: a variable
bit rate file whose first frames are dense comes out cut short
(tests/test_mp3_frames.py). `length_estimated_from_a_varying_rate`
finds those files, by walking the first frames' headers; `audio.open_source`
decodes them with FFmpeg, which reads every frame.
"""

from __future__ import annotations

import typing

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


def _first_audio_byte(read) -> int:
    """Where the audio starts: after the ID3v2 tags at the file's start."""
    at = 0
    while (head := read(at, 10))[:3] == b"ID3" and len(head) == 10:
        at += id3v2_length(head)
    return at


def length_estimated_from_a_varying_rate(read) -> bool:
    """Whether an MP3 has no length header (Xing/Info, VBRI) and frames of
    different bit rates among its first `FRAMES_WALKED`: libsndfile's length
    is then a guess. `read(offset, size) -> bytes` reads the file (fewer
    bytes at its end). False where no two frames in a row are found."""
    start = _first_audio_byte(read)
    data = read(start, SYNC_SEARCH_BYTES)
    first, at = None, data.find(b"\xff")
    while 0 <= at < len(data) - 4:
        header = frame_header(data, at)
        following = header and frame_header(data, at + header.length)
        if following and following[:2] == header[:2] and following.sample_rate == (
                header.sample_rate):
            first = at
            break
        at = data.find(b"\xff", at + 1)
    if first is None:
        return False
    if any(tag in data[first:first + header.length] for tag in LENGTH_HEADERS):
        return False
    data = read(start + first, FRAMES_WALKED * MAX_FRAME_BYTES + 4)
    at = 0
    for _ in range(FRAMES_WALKED):
        walked = frame_header(data, at)
        if walked is None:
            return False
        if walked.bitrate_index != header.bitrate_index:
            return True
        at += walked.length
    return False
