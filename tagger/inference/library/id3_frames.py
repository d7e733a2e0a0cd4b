"""Our frames in an ID3v2 tag (an MP3's, or a WAV's `id3 ` chunk), and
nothing else changed (file_tags, tag.py --write-tags).

mutagen, left to its defaults, changes more than the frames it is given:
it merges an ID3v1 tag into the frames it reads (a title, artist, album,
year, comment and genre the ID3v2 tag never held), converts the frames to
ID3v2.4 (dropping those v2.4 has no place for, such as RVAD and TSIZ),
re-encodes every frame it understands, and writes an ID3v1 tag again from
the ID3v2 frames. Here:

- ID3v1 is not read (`load_v1=False`), and the end of an MP3 (an ID3v1
  tag, an extended `TAG+` block, an APEv2 tag) is left byte for byte;
- a v2.3 or v2.4 tag is read with no frame known to mutagen
  (`known_frames={}`), so every frame is kept as its bytes (mutagen's
  `unknown_frames`, written back unchanged when the tag keeps its
  version), and the tag keeps its version. Only our frames are replaced:
  `TXXX` with our description, and `TCON` when the genre is written;
- a v2.2 tag, which mutagen cannot write, becomes a v2.4 one.
"""

from __future__ import annotations

import io
import os

# mutagen looks for an ID3v1 tag in a file's last 131 bytes (the tag's 128,
# and 3 more for an APEv2 footer's "APETAGEX" around its "TAG")
ID3V1_SEARCH = 131


def open_tags(cls, path: str):
    """The file at `path` as mutagen's `cls` (MP3, WAVE) with its ID3v2
    tag only: an ID3v1 tag is another program's, not ours to read."""
    return cls(path, load_v1=False)


def frame_key(raw: bytes, version: int) -> str | None:
    """mutagen's key (`TXXX:tagger`, `TCON`) of one frame, `raw` its header
    and data in an ID3v2.`version` tag; None for other frames than TXXX
    and TCON, and for one mutagen cannot read."""
    from mutagen import MutagenError
    from mutagen.id3 import ID3

    if raw[:4] not in (b"TXXX", b"TCON"):
        return None
    tag = b"ID3" + bytes([version, 0, 0]) + _syncsafe(len(raw)) + raw
    try:
        return next(iter(ID3(io.BytesIO(tag), load_v1=False, translate=False).keys()), None)
    except MutagenError:
        return None


def set_frames(audio, frames: list) -> None:
    """Puts `frames` (mutagen frames) into the ID3v2 tag of `audio` (an
    MP3 or WAVE of `open_tags`), each replacing the frames of its key;
    every other frame stays as its bytes."""
    if audio.tags is None:
        audio.add_tags()
    elif audio.tags.version[1] in (3, 4):  # read again, every frame as its bytes
        tags = type(audio.tags)(audio.filename, known_frames={}, load_v1=False,
                                translate=False)
        replaced = {frame.HashKey for frame in frames}
        tags.unknown_frames = [raw for raw in tags.unknown_frames
                               if frame_key(raw, tags.version[1]) not in replaced]
        audio.tags = tags
    for frame in frames:
        audio.tags.setall(frame.HashKey, [frame])


def save(audio) -> None:
    """Saves the ID3v2 tag of `audio` (`set_frames`) in its version (v2.2:
    v2.4); an MP3's end is left as it was."""
    version = audio.tags.version[1] if audio.tags.version[1] in (3, 4) else 4
    if _is_wave(audio):
        audio.save(v2_version=version)  # the `id3 ` chunk alone is written
    else:
        _save_keeping_the_end(audio, version)


def _is_wave(audio) -> bool:
    from mutagen.wave import WAVE

    return isinstance(audio, WAVE)


def _save_keeping_the_end(audio, version: int) -> None:
    """Saves an MP3's ID3v2 tag, at its start, and leaves its end as it
    was. mutagen either writes an ID3v1 tag there from the ID3v2 frames
    (`v1=1`, its default) or removes it (`v1=0`), with no way to leave it:
    it removes it here, and the bytes it took are put back."""
    path = audio.filename
    size, start = os.path.getsize(path), id3v2_end(path)
    with open(path, "rb") as f:
        f.seek(max(start, size - ID3V1_SEARCH))
        end = f.read()
    audio.save(v1=0, v2_version=version)
    removed = (size - start) - (os.path.getsize(path) - id3v2_end(path))
    if removed > 0:
        with open(path, "ab") as f:
            f.write(end[len(end) - removed:])


def id3v2_end(path: str) -> int:
    """Where the ID3v2 tag at the start of the file at `path` ends (0
    when it starts with none)."""
    with open(path, "rb") as f:
        header = f.read(10)
    if len(header) < 10 or header[:3] != b"ID3":
        return 0
    size = 0
    for byte in header[6:10]:
        size = (size << 7) | (byte & 0x7F)
    return 10 + size + (10 if header[5] & 0x10 else 0)  # the v2.4 footer


def _syncsafe(number: int) -> bytes:
    """`number` as ID3v2's 4-byte size of 7 bits a byte."""
    return bytes((number >> shift) & 0x7F for shift in (21, 14, 7, 0))
