"""tag.py --write-tags changes our tags and nothing else: in files whose
tags other programs wrote (ID3v1 and ID3v2.3, ID3v2.4, ID3v1 alone, APEv2
on an MP3; ID3v2.4 with plain frame sizes, with unsynchronisation, with a
footer; ID3v2.3 unsynchronised or with an extended header; ID3v2.2; frames
of zero size and odd IDs; a WAV's `id3 ` chunk beside LIST/INFO, FLAC with
a picture, Ogg Vorbis, Opus, M4A with a cover), every other frame, block,
comment and atom is the same bytes after as before, the ID3v2 header keeps
its version and flags, and the end of an MP3 (ID3v1, `TAG+`, APEv2) is
left byte for byte."""

from __future__ import annotations

import io
import re
import struct
import zlib

import mutagen
import pytest

from tagger.inference.library import file_tags
from tests.checks import tone, write_m4a
from tests.inference.test_file_tags import flac_frames, id3_end, make

FIELDS = {"tagger": "rock; guitar", "tagger_scores": "0.900; 0.800",
          "tagger_model": "samplecnn/cnn sha256:0123"}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4  # a cover's bytes, as they are


# -- tags as other programs write them ------------------------------------------


def frame(name: bytes, data: bytes, flags: int = 0, version: int = 3,
          plain: bool = False) -> bytes:
    """One ID3v2 frame: v2.3 sizes are plain, v2.4 ones syncsafe (`plain`: 8
    bits a byte, as older iTunes wrote them); v2.2 has 3-byte IDs and sizes."""
    if version == 2:
        return name + len(data).to_bytes(3, "big") + data
    size = len(data) if version == 3 or plain else syncsafe(len(data))
    return name + struct.pack(">IH", size, flags) + data


def syncsafe(number: int) -> int:
    return sum(((number >> (7 * i)) & 0x7F) << (8 * i) for i in range(4))


def unsyncsafe(size: int) -> int:
    return sum(((size >> (8 * i)) & 0x7F) << (7 * i) for i in range(4))


def unsynchronised(data: bytes) -> bytes:
    """ID3v2's unsynchronisation: a 00 after each ff before 00 or 111xxxxx."""
    return re.sub(rb"\xff(?=[\x00\xe0-\xff]|\Z)", b"\xff\x00", data)


def id3v2(version: int, frames: list, padding: int = 256, flags: int = 0,
          extended: bytes = b"") -> bytes:
    """A tag; with flag 0x80 in v2.2/v2.3 all after the header
    unsynchronised, with 0x10 (v2.4) a footer after it."""
    body = extended + b"".join(frames) + bytes(padding)
    if version < 4 and flags & 0x80:
        body = unsynchronised(body)
    header = b"ID3" + bytes([version, 0, flags]) + struct.pack(">I", syncsafe(len(body)))
    return header + body + (b"3DI" + header[3:] if flags & 0x10 else b"")


def utf16(text: str) -> bytes:  # with a byte order mark, as Windows programs write
    return b"\xff\xfe" + text.encode("utf-16-le")


V23_FRAMES = [  # as id3lib and Windows Media Player write them: terminated strings
    frame(b"TIT2", b"\x01" + utf16("A v2 title") + b"\0\0"),
    frame(b"TPE1", b"\x00An artist\x00"),
    frame(b"TYER", b"\x001999"),
    frame(b"TCON", b"\x00(17)Rock"),
    frame(b"TXXX", b"\x01" + utf16("replaygain_track_gain") + b"\0\0" + utf16("-6.20 dB")),
    frame(b"COMM", b"\x00eng\x00a comment\x00"),
    frame(b"RVAD", b"\x03\x10" + bytes(range(8))),  # not in v2.4
    frame(b"PRIV", b"WM/MediaClassPrimaryID\x00" + bytes(range(16))),
    frame(b"APIC", b"\x00image/png\x00\x03cover\x00" + PNG),
]
V24_FRAMES = [  # as a v2.4 writer does: UTF-8, a timestamp, a data length indicator
    frame(b"TIT2", b"\x03A v2.4 title", version=4),
    frame(b"TDRC", b"\x032001-02-03", version=4),
    frame(b"TCON", b"\x03Jazz", version=4),
    frame(b"TPE1", struct.pack(">I", syncsafe(10)) + b"\x03Performer", flags=0x0001,
          version=4),
    frame(b"TXXX", b"\x03MusicBrainz Album Id\x00d4d3ec0e-4e6a", version=4),
    frame(b"APIC", b"\x00image/png\x00\x03\x00" + PNG, version=4),
]
JPEG = bytes.fromhex("ffd8ffe000104a46494600010100000100010000ffdb0043") + bytes(range(256)) \
    + b"\xff\xd9"  # a JPEG's start and end: false syncs that unsynchronisation breaks
OLD_TAGGER = frame(b"TXXX", b"\x03tagger\x00from an earlier run", version=4, plain=True)
ITUNES_FRAMES = [  # v2.4 with plain sizes: a zero-filled picture, longer than 127 bytes
    frame(b"TIT2", b"\x00An iTunes title", version=4, plain=True),
    frame(b"APIC", b"\x00image/jpeg\x00\x03\x00" + bytes(300), version=4, plain=True),
    OLD_TAGGER,
    frame(b"TPE1", b"\x00An artist", version=4, plain=True),
    frame(b"COMM", b"\x00eng\x00" + b"a long comment " * 12, version=4, plain=True),
    OLD_TAGGER,  # a second copy: both are replaced by one
]
UNSYNCHRONISED_FRAMES = [  # v2.4: each frame's data unsynchronised
    frame(b"TIT2", b"\x03An unsynchronised title", version=4),
    frame(b"APIC", unsynchronised(b"\x00image/jpeg\x00\x03\x00" + JPEG), version=4),
    frame(b"PRIV", unsynchronised(b"an owner\x00" + b"\xff\xe0\xff\xff"), version=4),
]
ODD_FRAMES = [  # as mutagen drops them: of zero size, with IDs not four of A-Z0-9
    frame(b"TIT2", b"\x00A title"),
    frame(b"TIT3", b""),
    frame(b"abcd", b"a lower-case ID"),
    frame(b"TT2\x00", b"\x00a v2.2 ID in a v2.3 tag"),
    frame(b"PRIV", b""),
    frame(b"TPE1", b"\x00An artist"),
]
V22_FRAMES = [  # as older iTunes wrote them
    frame(b"TT2", b"\x00A v2.2 title", version=2),
    frame(b"TP1", b"\x01" + utf16("A v2.2 artist") + b"\0\0", version=2),
    frame(b"COM", b"\x00engiTunNORM\x00 0000 0001", version=2),
    frame(b"PIC", b"\x00PNG\x03\x00" + PNG, version=2),
]
ID3V1 = (b"TAG" + b"v1 title".ljust(30, b"\0") + b"v1 artist".ljust(30, b"\0")
         + b"v1 album".ljust(30, b"\0") + b"2001" + b"v1 comment".ljust(28, b"\0")
         + b"\x00\x05\x11")
TAG_PLUS = (b"TAG+" + b"an extended title".ljust(60, b"\0") + b"an artist".ljust(60, b"\0")
            + b"an album".ljust(60, b"\0") + b"\x02" + b"Rock".ljust(30, b"\0")
            + b"000:00" + b"000:03")


def apev2() -> bytes:
    """An APEv2 tag (header, items, footer) as mutagen writes it alone."""
    from mutagen.apev2 import APEv2

    ape, block = APEv2(), io.BytesIO()
    ape["Title"], ape["Artist"] = "an APE title", "an APE artist"
    ape.save(block)
    return block.getvalue()


def mp3_audio(folder) -> bytes:
    return make(folder, "a.mp3", seconds=1.0).read_bytes()


MP3S = {  # name: (start, end) around an MP3's frames
    "id3v1 and id3v2.3, TAG+ and APEv2": (id3v2(3, V23_FRAMES), apev2() + TAG_PLUS + ID3V1),
    "id3v2.4": (id3v2(4, V24_FRAMES), b""),
    "id3v1 alone": (b"", ID3V1),
    "APEv2 after id3v1": (id3v2(3, V23_FRAMES[:3], padding=0), ID3V1 + apev2()),
    "id3v2.4 with plain sizes": (id3v2(4, ITUNES_FRAMES, padding=64), ID3V1),
    "id3v2.4 unsynchronised": (id3v2(4, UNSYNCHRONISED_FRAMES, flags=0x80), ID3V1),
    "id3v2.4 with a footer": (id3v2(4, V24_FRAMES, padding=0, flags=0x10), ID3V1),
    "id3v2.3 unsynchronised": (id3v2(3, V23_FRAMES + [frame(b"PRIV", b"ends\xff")], padding=16,
                                     flags=0x80), ID3V1),
    "zero-size and odd-ID frames": (id3v2(3, ODD_FRAMES, padding=32), ID3V1),
    "id3v2.2": (id3v2(2, V22_FRAMES), ID3V1),
}
PLAIN_SIZES = {"id3v2.4 with plain sizes"}
OURS = ("TXXX:tagger", "TXXX:tagger_scores", "TXXX:tagger_model")


# -- what they hold, as bytes ------------------------------------------------------


def id3_frames(tag: bytes, plain: bool = False) -> tuple[int, list]:
    """(version, [each frame's bytes]) of an ID3v2 tag at the start of `tag`
    (in v2.2 and v2.3, unsynchronisation undone); `plain`: v2.4 sizes of 8
    bits a byte."""
    if tag[:3] != b"ID3":
        return 0, []
    version, flags = tag[3], tag[5]
    body = tag[10:id3_end(tag) - (10 if flags & 0x10 else 0)]
    if version < 4 and flags & 0x80:
        body = body.replace(b"\xff\x00", b"\xff")
    at = 0
    if flags & 0x40 and version == 3:
        at = 4 + int.from_bytes(body[:4], "big")
    elif flags & 0x40:
        at = unsyncsafe(int.from_bytes(body[:4], "big"))
    head, name = (6, 3) if version == 2 else (10, 4)
    frames = []
    while at + head <= len(body) and body[at:at + name].strip(b"\0"):
        size = int.from_bytes(body[at + name:at + 2 * name], "big")
        if version == 4 and not plain:
            size = unsyncsafe(size)
        frames.append(body[at:at + head + size])
        at += head + size
    return version, frames


def heard(path) -> tuple[list, dict]:
    """What mutagen reads of the ID3v2 tag (a player's view: unsynchronisation
    undone, v2.2 and v2.3 as v2.4): [(key, frame)] of their frames, and
    {field: text} of ours."""
    from mutagen.id3 import ID3

    if path.read_bytes()[:3] != b"ID3":
        return [], {}
    tags = ID3(path, load_v1=False)
    return (sorted((key, repr(value)) for key, value in tags.items() if key not in OURS),
            {key[5:]: str(tags[key]) for key in OURS if key in tags})


def test_extended_headers_stay_with_their_crc_and_padding_made_true(tmp_path):
    frames = V23_FRAMES[:3]
    crc = zlib.crc32(b"".join(frames))  # v2.3: of the frames
    v23 = struct.pack(">I2sII", 10, b"\x80\x00", 100, crc)  # size, CRC flag, padding, CRC
    crc = zlib.crc32(b"".join(V24_FRAMES) + bytes(100))  # v2.4: of all after it
    v24 = bytes([0, 0, 0, 12, 1, 0x20, 5]) + bytes((crc >> s) & 0x7F for s in (28, 21, 14, 7, 0))
    audio = mp3_audio(tmp_path)
    for version, extended, theirs in ((3, v23, frames), (4, v24, V24_FRAMES)):
        path = tmp_path / f"v2.{version}.mp3"
        path.write_bytes(id3v2(version, theirs, 100, 0x40, extended) + audio + ID3V1)
        written(path)
        data = path.read_bytes()
        assert data[id3_end(data):] == audio + ID3V1 and data[3:6] == bytes([version, 0, 0x40])
        _, now = id3_frames(data)
        assert added_and_kept(theirs, now)[1] == theirs
        stored = data[10 + len(extended):id3_end(data)]  # frames and padding
        if version == 3:
            size, flags, padding, crc = struct.unpack(">I2sII", data[10:24])
            assert (size, flags) == (10, b"\x80\x00")
            assert padding == len(stored) - sum(map(len, now)) and padding > 0
            assert crc == zlib.crc32(b"".join(now))
        else:
            assert data[10:17] == extended[:7]
            crc = zlib.crc32(stored)
            assert data[17:22] == bytes((crc >> s) & 0x7F for s in (28, 21, 14, 7, 0))


def test_a_tag_whose_frames_cannot_be_told_apart_is_left_as_it_is(tmp_path):
    runs_past = b"TIT2" + bytes([0, 0, 0x7F, 0x7F, 0, 0]) + b"\x03a title"  # either way
    path = tmp_path / "song.mp3"
    path.write_bytes(id3v2(4, [V24_FRAMES[0], runs_past], padding=0) + mp3_audio(tmp_path))
    before = path.read_bytes()
    outcome = file_tags.write_fields(str(path), FIELDS)
    assert outcome == ("skipped", "a frame of its ID3v2 tag runs past the tag's end (its sizes "
                       "read either way), so its frames cannot be told apart", None)
    assert path.read_bytes() == before


@pytest.mark.parametrize("name", [name for name, (start, _) in MP3S.items() if start])
def test_a_tag_read_and_written_again_is_the_same_bytes(name):
    from tagger.inference.library import id3_frames as reader_and_writer

    start = MP3S[name][0]
    tag = reader_and_writer.parse(start)
    assert reader_and_writer.to_bytes(tag) == start
    assert tag.plain_sizes == (name in PLAIN_SIZES)
    if not tag.whole_unsynchronised:
        assert tag.frames == id3_frames(start, tag.plain_sizes)[1]


def test_splice_moves_what_follows_a_block_at_a_time():
    from tagger.inference.library.id3_frames import _splice

    for new in (bytes(25), b"ab", b""):
        f = io.BytesIO(bytes(range(50)))
        _splice(f, 10, 20, new, block=3)
        assert f.getvalue() == bytes(range(10)) + new + bytes(range(20, 50))


def riff_chunks(data: bytes) -> list:
    """[(id, bytes)] of the chunks of a RIFF/WAVE file."""
    chunks, at = [], 12
    while at + 8 <= len(data):
        size = int.from_bytes(data[at + 4:at + 8], "little")
        chunks.append((data[at:at + 4], data[at + 8:at + 8 + size]))
        at += 8 + size + size % 2
    return chunks


def flac_blocks(data: bytes) -> list:
    """[(type, bytes)] of a FLAC's metadata blocks."""
    blocks, at = [], 4
    while at < flac_frames(data):
        length = int.from_bytes(data[at + 1:at + 4], "big")
        blocks.append((data[at] & 0x7F, data[at + 4:at + 4 + length]))
        at += 4 + length
    return blocks


def mp4_children(data: bytes, path: list) -> list:
    """[each atom's bytes] under the atoms `path` (`meta` is a full atom)."""
    at, end = 0, len(data)
    for name in path:
        while at < end:
            size, kind = int.from_bytes(data[at:at + 4], "big"), data[at + 4:at + 8]
            if kind == name:
                at, end = at + 8 + (4 if name == b"meta" else 0), at + size
                break
            at += size
        else:
            raise AssertionError(f"no {name} atom")
    children = []
    while at < end:
        size = int.from_bytes(data[at:at + 4], "big")
        children.append(data[at:at + size])
        at += size
    return children


def added_and_kept(before: list, after: list) -> tuple[list, list]:
    """What `after` holds that `before` did not, and what it kept of `before`."""
    return [x for x in after if x not in before], [x for x in after if x in before]


def written(path, fields=FIELDS) -> None:
    outcome = file_tags.write_fields(str(path), fields)
    assert outcome.outcome == "written", outcome
    now = file_tags.current_fields(*file_tags._open(str(path)))
    assert {key: now.get(key) for key in fields} == fields


# -- MP3 and WAV: ID3 -----------------------------------------------------------------


@pytest.mark.parametrize("name", MP3S)
def test_an_mp3s_other_frames_and_its_end_stay_as_they_were(tmp_path, name):
    start, end = MP3S[name]
    plain = name in PLAIN_SIZES
    audio = mp3_audio(tmp_path)
    path = tmp_path / "song.mp3"
    path.write_bytes(start + audio + end)
    version, frames = id3_frames(start, plain)
    before, _ = heard(path)
    written(path)
    data = path.read_bytes()
    assert data[id3_end(data):] == audio + end  # the audio, APEv2, TAG+ and ID3v1
    assert data[3:6] == (start[3:6] or bytes([4, 0, 0]))  # the version and flags stay
    new_version, new_frames = id3_frames(data, plain)
    added, kept = added_and_kept(frames, new_frames)
    assert kept == [f for f in frames if f != OLD_TAGGER]  # theirs: bytes and order
    assert [x[:3] for x in added] == [b"TXX"] * 3  # ours, and no genre without --genre
    assert heard(path) == (before, FIELDS)  # a player reads the same of theirs, and ours
    if version < 4 and data[5] & 0x80:  # their frames as stored, then ours
        assert data[10:].startswith(start[10:10 + len(unsynchronised(b"".join(frames)))])
    shorter = {**FIELDS, "tagger": "jazz"}
    written(path, shorter)  # a rerun replaces ours
    data = path.read_bytes()
    assert data[id3_end(data):] == audio + end and data[3:6] == (start[3:6] or bytes([4, 0, 0]))
    _, again = id3_frames(data, plain)
    assert added_and_kept(frames, again)[1] == kept and len(again) == len(new_frames)
    assert heard(path) == (before, shorter)
    if data[5] & 0x10:  # a footer as the header, and no padding (as before)
        assert data[id3_end(data) - 10:id3_end(data)] == b"3DI" + data[3:10]
        assert 10 + sum(map(len, again)) + 10 == id3_end(data)


JUNK = {  # after the last frame, as some programs leave the padding: (text, zeros after it)
    "text, then zeros": (b"MP3ext V3.3.19(ansi)", 256),
    "spaces": (b" " * 64, 0),
}


@pytest.mark.parametrize("junk", JUNK)
@pytest.mark.parametrize("version", [3, 4])
def test_text_in_the_padding_stays_byte_for_byte(tmp_path, version, junk):
    text, zeros = JUNK[junk]
    theirs = [frame(b"TPE1", b"\x00An artist", version=version),
              frame(b"TIT2", b"\x00A title", version=version)]
    start = id3v2(version, theirs, padding=0)[:10] + b"".join(theirs) + text + bytes(zeros)
    start = start[:6] + struct.pack(">I", syncsafe(len(start) - 10)) + start[10:]
    audio = mp3_audio(tmp_path)
    path = tmp_path / "song.mp3"
    path.write_bytes(start + audio + ID3V1)
    before, _ = heard(path)
    assert [key for key, _ in before] == ["TIT2", "TPE1"]  # mutagen stops at the text too
    size, ours_before = len(start + audio + ID3V1), 0
    for fields in (FIELDS, {**FIELDS, "tagger": "jazz"}):  # a rerun replaces ours
        written(path, fields)
        data = path.read_bytes()
        assert data[:6] == start[:6] and data[id3_end(data):] == audio + ID3V1
        _, walked = id3_frames(data)  # theirs, ours, then the text read as one more
        ours = sum(map(len, walked[len(theirs):-1]))
        assert walked[:len(theirs)] == theirs
        assert [f[:4] for f in walked[len(theirs):-1]] == [b"TXXX"] * 3
        room = zeros + ours_before - ours  # the zeros make room for ours; else 1 KiB more
        assert walked[-1] == text + bytes(room if room >= 0 else 1024)
        assert (len(data) == size) == (room >= 0)
        assert heard(path) == (before, fields)
        size, ours_before, zeros = len(data), ours, len(walked[-1]) - len(text)


def test_the_genre_replaces_theirs_and_nothing_else(tmp_path):
    start, end = MP3S["id3v1 and id3v2.3, TAG+ and APEv2"]
    audio = mp3_audio(tmp_path)
    path = tmp_path / "song.mp3"
    path.write_bytes(start + audio + end)
    written(path, {**FIELDS, "genre": "Electronic"})
    data = path.read_bytes()
    assert data[id3_end(data):] == audio + end
    version, frames = id3_frames(data)
    added, kept = added_and_kept(V23_FRAMES, frames)
    assert version == 3
    assert kept == [f for f in V23_FRAMES if f[:4] != b"TCON"]
    assert sorted(x[:4] for x in added) == [b"TCON"] + [b"TXXX"] * 3
    assert mutagen.File(path).tags["TCON"].text == ["Electronic"]
    # a rerun replaces ours: no second copy, theirs as they were
    written(path, {**FIELDS, "tagger": "jazz", "genre": "Jazz"})
    data = path.read_bytes()
    again, frames = id3_frames(data)
    assert len(frames) == len(kept) + 4
    assert added_and_kept(V23_FRAMES, frames)[1] == kept
    assert data[id3_end(data):] == audio + end


@pytest.mark.parametrize("where", ["at the end", "odd-sized, before the audio", "none"])
def test_a_wavs_id3_chunk_keeps_its_frames_and_the_other_chunks_theirs(tmp_path, where):
    import soundfile as sf

    path = tmp_path / "song.wav"
    with sf.SoundFile(str(path), "w", 22050, 1, format="WAV") as wav:  # a LIST/INFO chunk
        wav.title, wav.artist = "an INFO title", "an INFO artist"
        wav.write(tone(0.5, 22050, 1, 440.0, 1))
    samples = sf.read(str(path))[0]
    data = path.read_bytes()
    frames = [] if where == "none" else V23_FRAMES
    tag = id3v2(3, frames, padding=1 - sum(map(len, frames)) % 2 if where[0] == "o" else 256)
    chunk = b"id3 " + struct.pack("<I", len(tag)) + tag + bytes(len(tag) % 2)
    chunks = riff_chunks(data)
    at = data.find(b"data") if where[0] == "o" else len(data)
    data = data[:at] + (b"" if where == "none" else chunk) + data[at:]
    path.write_bytes(data[:4] + struct.pack("<I", len(data) - 8) + data[8:])
    before = riff_chunks(path.read_bytes())
    assert [kind for kind, _ in before if kind != b"id3 "] == [kind for kind, _ in chunks]
    written(path)
    data = path.read_bytes()
    after = riff_chunks(data)
    assert int.from_bytes(data[4:8], "little") == len(data) - 8  # the RIFF's size
    assert [c for c in after if c[0] != b"id3 "] == [c for c in before if c[0] != b"id3 "]
    assert [kind for kind, _ in after].index(b"id3 ") == (
        2 if where[0] == "o" else len(after) - 1)
    version, new_frames = id3_frames(dict(after)[b"id3 "])
    added, kept = added_and_kept(frames, new_frames)
    assert version == (3 if frames else 4) and kept == frames
    assert [x[:4] for x in added] == [b"TXXX"] * 3
    assert (sf.read(str(path))[0] == samples).all()


def wav_bytes(after_data: bytes = b"", before_data: bytes = b"") -> bytes:
    """A tiny 16-bit WAV (fmt, data) with `before_data` and `after_data`
    (chunks as they are) around its data chunk, its RIFF size true."""
    import soundfile as sf

    block = io.BytesIO()
    sf.write(block, tone(0.01, 8000, 1, 440.0, 1), 8000, format="WAV", subtype="PCM_16")
    data = block.getvalue()
    at = data.find(b"data")
    data = data[:at] + before_data + data[at:] + after_data
    return data[:4] + struct.pack("<I", len(data) - 8) + data[8:]


ODD_LIST = b"LIST" + struct.pack("<I", 13) + b"INFOISFT\x01\x00\x00\x00x"  # odd, no pad byte


def out_of_line_tag(text: str) -> bytes:
    """An `id3 ` chunk straight after ODD_LIST, where a pad byte belongs, as
    an earlier version appended it (read by no RIFF reader, so each run
    appended another)."""
    tag = id3v2(4, [frame(b"TXXX", b"\x03tagger\x00" + text.encode(), version=4)], 64)
    return b"id3 " + struct.pack("<I", len(tag)) + tag + bytes(len(tag) % 2)


@pytest.mark.parametrize("earlier", ["none", "one out of line"])
def test_a_wav_whose_last_chunk_lacks_its_pad_byte_gets_it_and_one_tag(tmp_path, earlier):
    import soundfile as sf

    path = tmp_path / "song.wav"
    path.write_bytes(wav_bytes(ODD_LIST + (out_of_line_tag("rock") if earlier[0] == "o"
                                          else b"")))
    samples = sf.read(str(path), dtype="int16")[0]
    if earlier[0] == "o":
        assert file_tags.current_fields(*file_tags._open(str(path))) == {"tagger": "rock"}
    before = riff_chunks(wav_bytes(ODD_LIST))  # fmt, data, LIST: as a RIFF reader walks them
    sizes = set()
    for run in range(3):  # each run changes our field, and so rewrites the tag
        written(path, {**FIELDS, "tagger": ["jazz", "piano"][run % 2]})
        data = path.read_bytes()
        assert int.from_bytes(data[4:8], "little") == len(data) - 8
        assert data[data.find(b"LIST") + len(ODD_LIST)] == 0  # the pad byte, put in
        chunks = riff_chunks(data)
        assert [kind for kind, _ in chunks] == [b"fmt ", b"data", b"LIST", b"id3 "]
        assert chunks[:3] == before
        assert heard_wave(chunks[3][1]) == ["jazz", "piano"][run % 2]
        assert (sf.read(str(path), dtype="int16")[0] == samples).all()
        sizes.add(len(data))
    assert len(sizes) == 1  # a rerun does not grow the file


def heard_wave(tag: bytes) -> str:
    """Our `tagger` field as mutagen reads it from an `id3 ` chunk's tag."""
    from mutagen.id3 import ID3

    return str(ID3(io.BytesIO(tag), load_v1=False)["TXXX:tagger"])


@pytest.mark.parametrize("tagged", ["no", "before its data"])
def test_a_wav_written_as_a_stream_keeps_its_audio(tmp_path, tagged):
    """Its data chunk's size 0xFFFFFFFF runs to the RIFF's end: a tag after
    it would be read as audio, so the file is skipped with a reason; a tag
    before it is rewritten there, the audio after it as it was."""
    import soundfile as sf

    tag = id3v2(3, V23_FRAMES[:2], padding=64)
    chunk = b"id3 " + struct.pack("<I", len(tag)) + tag + bytes(len(tag) % 2)
    chunk = chunk if tagged != "no" else b""
    data = wav_bytes(before_data=chunk)
    at = data.find(b"data")
    path = tmp_path / "stream.wav"
    path.write_bytes(data[:at + 4] + b"\xff\xff\xff\xff" + data[at + 8:])
    original, samples = path.read_bytes(), sf.read(str(path), dtype="int16")[0]
    sizes = set()
    for run in range(3):
        outcome = file_tags.write_fields(str(path), {**FIELDS, "tagger": str(run)})
        assert (sf.read(str(path), dtype="int16")[0] == samples).all()
        sizes.add(len(path.read_bytes()))
        if tagged == "no":
            assert outcome.outcome == "skipped"
            assert outcome.detail.startswith("its 'data' chunk's size is 0xFFFFFFFF (it was "
                                             "written as a stream)")
            assert path.read_bytes() == original
        else:
            assert outcome.outcome == "written", outcome
            assert file_tags.current_fields(*file_tags._open(str(path)))["tagger"] == str(run)
    assert len(sizes) == 1


def decoded_both(path) -> tuple:
    """(libsndfile's, FFmpeg's) int16 samples of a WAV."""
    import av
    import numpy as np
    import soundfile as sf

    with av.open(str(path)) as container:
        ffmpeg = [frame.to_ndarray().ravel() for frame in container.decode(audio=0)]
    return sf.read(str(path), dtype="int16")[0].tolist(), np.concatenate(ffmpeg).tolist()


def with_sizes(data: bytes, riff: int, data_size: int | None = None) -> bytes:
    """`data` (a WAV) with its RIFF size, and its data chunk's, as given."""
    at = data.find(b"data")
    data = data[:4] + struct.pack("<I", riff) + data[8:]
    return data if data_size is None else data[:at + 4] + struct.pack("<I", data_size) + \
        data[at + 8:]


@pytest.mark.parametrize("sizes, said", [
    ((8, 0), "its RIFF size says 8 bytes"),  # libsndfile's until it closes the file
    ((8, None), "its RIFF size says 8 bytes"),  # its data chunk's size written, the RIFF's not
    ((36, 0), "its 'data' chunk's size is 0, and 160 bytes follow its header"),
], ids=["RIFF 8, data 0", "RIFF 8", "data 0"])
def test_a_wav_whose_sizes_are_unfinished_is_left_as_it_is(tmp_path, sizes, said):
    """A recording stopped before it closed its file: readers guess where
    its audio ends (libsndfile takes the rest of the file while the sizes
    are 8 and 0); a chunk put in by its sizes would come before its `fmt `
    and `data` chunks or be read as audio, so it is skipped with a reason."""
    path = tmp_path / "recording.wav"
    path.write_bytes(with_sizes(wav_bytes(), *sizes))
    original, heard_before = path.read_bytes(), decoded_both(path)
    assert len(heard_before[1]) == 80  # FFmpeg reads the rest of the file as audio
    outcome = file_tags.write_fields(str(path), FIELDS)
    assert outcome.outcome == "skipped", outcome
    assert outcome.detail.startswith(said) and "its sizes are unfinished" in outcome.detail
    assert path.read_bytes() == original and decoded_both(path) == heard_before


def odd_wav(after: bytes) -> bytes:
    """An 8-bit WAV whose data chunk is of an odd size (81 frames), `after`
    it as they are (without its pad byte, unless they begin with one)."""
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 8000, 1, 8)
    samples = bytes(range(100, 181))
    body = b"WAVE" + fmt + b"data" + struct.pack("<I", 81) + samples + after
    return b"RIFF" + struct.pack("<I", len(body)) + body


EVEN_LIST = b"LIST" + struct.pack("<I", 12) + b"INFOICMT\x00\x00\x00\x00"


@pytest.mark.parametrize("after", ["LIST", "odd LIST, LIST"])
def test_a_chunk_that_lacks_its_pad_byte_before_others_gets_it_right_after_it(tmp_path, after):
    """The data chunk (and a LIST after it) of an odd size, their pad bytes
    left out, other chunks after them: each pad byte goes in right after its
    chunk, so that every RIFF reader finds the chunks after it, ours too."""
    path = tmp_path / "odd.wav"
    path.write_bytes(odd_wav(EVEN_LIST if after == "LIST" else ODD_LIST + EVEN_LIST))
    heard_before = decoded_both(path)
    assert len(heard_before[0]) == 81
    written(path)
    data = path.read_bytes()
    assert int.from_bytes(data[4:8], "little") == len(data) - 8
    chunks = riff_chunks(data)  # walked as every RIFF reader walks them: pad bytes skipped
    kinds = [b"fmt ", b"data", b"LIST", b"id3 "] if after == "LIST" else [
        b"fmt ", b"data", b"LIST", b"LIST", b"id3 "]
    assert [kind for kind, _ in chunks] == kinds
    assert data[data.find(b"data") + 8 + 81] == 0  # the data chunk's pad byte, after it
    assert chunks[:-1] == riff_chunks(odd_wav(b"\x00" + EVEN_LIST) if after == "LIST" else
                                      odd_wav(b"\x00" + ODD_LIST + b"\x00" + EVEN_LIST))
    assert heard_wave(chunks[-1][1]) == FIELDS["tagger"]  # mutagen reads our tag
    assert mutagen.File(path).tags["TXXX:tagger"].text == [FIELDS["tagger"]]
    assert decoded_both(path) == heard_before
    outcome = file_tags.write_fields(str(path), FIELDS)  # a rerun: nothing to change
    assert outcome.outcome == "unchanged" and path.read_bytes() == data
    written(path, {**FIELDS, "tagger": "jazz"})
    assert len(path.read_bytes()) == len(data) and decoded_both(path) == heard_before


def test_a_chunk_that_lacks_its_pad_byte_before_the_audio_is_left_as_it_is(tmp_path):
    """A pad byte put in before the data chunk would move the audio, which
    readers now find elsewhere or not at all: skipped with a reason."""
    path = tmp_path / "odd.wav"
    path.write_bytes(wav_bytes(before_data=ODD_LIST))
    original = path.read_bytes()
    outcome = file_tags.write_fields(str(path), FIELDS)
    assert outcome.outcome == "skipped", outcome
    assert outcome.detail.startswith("its 'LIST' chunk is of an odd size and lacks the pad "
                                     "byte after it, before its 'data' chunk")
    assert path.read_bytes() == original


# -- FLAC, Ogg Vorbis, Opus: Vorbis comments -------------------------------------------


def vorbis_file(folder, name):
    """A file libsndfile wrote with comments of its own, as a player sees it."""
    import soundfile as sf

    fmt, subtype = {"b.flac": ("FLAC", "PCM_16"), "c.ogg": ("OGG", "VORBIS"),
                    "d.opus": ("OGG", "OPUS")}[name]
    rate = 48000 if subtype == "OPUS" else 22050
    path = folder / name
    with sf.SoundFile(str(path), "w", rate, 1, format=fmt, subtype=subtype) as f:
        f.title, f.artist, f.comment = "a title", "an artist", "a comment"
        f.write(tone(0.5, rate, 1, 440.0, 1))
    audio = mutagen.File(path)
    audio.tags["GENRE"] = ["Jazz"]
    audio.tags["replaygain_track_gain"] = ["-6.20 dB"]
    audio.tags["ARTIST"] = ["an artist", "another artist"]
    audio.save()
    return path


@pytest.mark.parametrize("name", ["b.flac", "c.ogg", "d.opus"])
def test_other_comments_and_the_vendor_stay(tmp_path, name):
    path = vorbis_file(tmp_path, name)
    before = mutagen.File(path).tags
    vendor, comments = before.vendor, list(before)
    written(path)
    after = mutagen.File(path).tags
    assert after.vendor == vendor
    added, kept = added_and_kept(comments, list(after))
    assert kept == comments
    assert sorted(key for key, _ in added) == ["TAGGER", "TAGGER_MODEL", "TAGGER_SCORES"]


def test_a_flacs_other_metadata_blocks_stay(tmp_path):
    from mutagen.flac import Picture

    path = vorbis_file(tmp_path, "b.flac")
    flac = mutagen.File(path)
    picture = Picture()
    picture.type, picture.mime, picture.desc, picture.data = 3, "image/png", "cover", PNG
    flac.add_picture(picture)
    flac.save()
    data = path.read_bytes()
    application = bytes([2, 0, 0, 12]) + b"tagr" + bytes(range(8))  # another program's block
    points = struct.pack(">QQH", 0, 0, 4096) + struct.pack(">QQH", 2**64 - 1, 0, 0)
    seektable = bytes([3, 0, 0, len(points)]) + points  # a point and a placeholder
    at = 4 + 4 + 34  # after STREAMINFO
    path.write_bytes(data[:at] + application + seektable + data[at:])
    before = flac_blocks(path.read_bytes())
    audio = data[flac_frames(data):]
    assert [kind for kind, _ in before][:5] == [0, 2, 3, 4, 6]  # + a padding block
    written(path)
    data = path.read_bytes()
    after = flac_blocks(data)
    others = [b for b in before if b[0] not in (1, 4)]  # all but padding and comments
    assert [b for b in after if b[0] not in (1, 4)] == others
    assert data[flac_frames(data):] == audio


# -- M4A: atoms --------------------------------------------------------------------------


def test_an_m4as_other_atoms_and_its_cover_stay(tmp_path):
    from mutagen.mp4 import MP4Cover

    path, rate = tmp_path / "song.m4a", 22050
    write_m4a(path, tone(0.5, rate, 1, 440.0, 1).reshape(-1), rate, metadata={
        "title": "a title", "artist": "an artist", "album": "an album", "genre": "Jazz",
        "date": "2001", "track": "3/9", "comment": "a comment"})  # FFmpeg's atoms
    m4a = mutagen.File(path)
    m4a.tags["covr"] = [MP4Cover(PNG, imageformat=MP4Cover.FORMAT_PNG)]
    m4a.save()
    ilst = [b"moov", b"udta", b"meta", b"ilst"]
    before = mp4_children(path.read_bytes(), ilst)
    assert len(before) == 9
    written(path)
    after = mp4_children(path.read_bytes(), ilst)
    added, kept = added_and_kept(before, after)
    assert sorted(kept) == sorted(before)  # each atom the same bytes (in mutagen's order)
    assert [x[4:8] for x in added] == [b"----"] * 3
