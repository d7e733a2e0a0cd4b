"""tag.py --write-tags changes our tags and nothing else: in files whose
tags other programs wrote (ID3v1 and ID3v2.3, ID3v2.4, ID3v1 alone, APEv2
on an MP3, a WAV's `id3 ` chunk beside LIST/INFO, FLAC with a picture,
Ogg Vorbis, Opus, M4A with a cover), every other frame, block, comment and
atom is the same bytes after as before, the ID3v2 version stays, and the
end of an MP3 (ID3v1, `TAG+`, APEv2) is left byte for byte."""

from __future__ import annotations

import io
import struct

import mutagen
import pytest

from tagger.inference.library import file_tags
from tests.checks import tone, write_m4a
from tests.inference.test_file_tags import flac_frames, id3_end, make

FIELDS = {"tagger": "rock; guitar", "tagger_scores": "0.900; 0.800",
          "tagger_model": "samplecnn/cnn sha256:0123"}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4  # a cover's bytes, as they are


# -- tags as other programs write them ------------------------------------------


def frame(name: bytes, data: bytes, flags: int = 0, version: int = 3) -> bytes:
    """One ID3v2 frame: v2.3 sizes are plain, v2.4 ones syncsafe."""
    size = len(data) if version == 3 else syncsafe(len(data))
    return name + struct.pack(">IH", size, flags) + data


def syncsafe(number: int) -> int:
    return sum(((number >> (7 * i)) & 0x7F) << (8 * i) for i in range(4))


def id3v2(version: int, frames: list, padding: int = 256) -> bytes:
    body = b"".join(frames) + bytes(padding)
    return b"ID3" + bytes([version, 0, 0]) + struct.pack(">I", syncsafe(len(body))) + body


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
}


# -- what they hold, as bytes ------------------------------------------------------


def id3_frames(tag: bytes) -> tuple[int, list]:
    """(version, [each frame's bytes]) of an ID3v2 tag at the start of `tag`."""
    if tag[:3] != b"ID3":
        return 0, []
    version, end, at, frames = tag[3], id3_end(tag), 10, []
    while at + 10 <= end and tag[at:at + 4].strip(b"\0"):
        size = int.from_bytes(tag[at + 4:at + 8], "big")
        if version == 4:
            size = sum(((size >> (8 * i)) & 0x7F) << (7 * i) for i in range(4))
        frames.append(tag[at:at + 10 + size])
        at += 10 + size
    return version, frames


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
    audio = mp3_audio(tmp_path)
    path = tmp_path / "song.mp3"
    path.write_bytes(start + audio + end)
    version, frames = id3_frames(start)
    written(path)
    data = path.read_bytes()
    assert data[id3_end(data):] == audio + end  # the audio, APEv2, TAG+ and ID3v1
    new_version, new_frames = id3_frames(data)
    assert new_version == (version or 4)  # a v2.3 tag stays v2.3
    added, kept = added_and_kept(frames, new_frames)
    assert kept == frames  # every frame of theirs, its bytes and order
    assert [x[:4] for x in added] == [b"TXXX"] * 3  # ours, and no genre without --genre


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


def test_a_wavs_id3_chunk_keeps_its_frames_and_the_other_chunks_theirs(tmp_path):
    import soundfile as sf

    path = tmp_path / "song.wav"
    with sf.SoundFile(str(path), "w", 22050, 1, format="WAV") as wav:  # a LIST/INFO chunk
        wav.title, wav.artist = "an INFO title", "an INFO artist"
        wav.write(tone(0.5, 22050, 1, 440.0, 1))
    data = path.read_bytes()
    tag = id3v2(3, V23_FRAMES)
    chunk = b"id3 " + struct.pack("<I", len(tag)) + tag + bytes(len(tag) % 2)
    path.write_bytes(data[:4] + struct.pack("<I", len(data) - 8 + len(chunk)) + data[8:] + chunk)
    before = riff_chunks(path.read_bytes())
    assert [kind for kind, _ in before] == [b"fmt ", b"LIST", b"data", b"id3 "]
    written(path)
    after = riff_chunks(path.read_bytes())
    assert [c for c in after if c[0] != b"id3 "] == [c for c in before if c[0] != b"id3 "]
    version, frames = id3_frames(dict(after)[b"id3 "])
    added, kept = added_and_kept(V23_FRAMES, frames)
    assert version == 3 and kept == V23_FRAMES
    assert [x[:4] for x in added] == [b"TXXX"] * 3


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
