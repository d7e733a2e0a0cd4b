"""mp3_frames: MPEG audio frame headers, and the MP3s whose length
libsndfile would guess from a varying bit rate (decoded by FFmpeg)."""

import numpy as np
import pytest
import soundfile

from tagger import audio, mp3_frames
from tests.test_audio_spans import strip_xing

RATE = 44100


def header(version, layer, bitrate_index, rate_index, padding=0, protected=False):
    b1 = 0xE0 | version << 3 | (4 - layer) << 1 | (0 if protected else 1)
    return bytes([0xFF, b1, bitrate_index << 4 | rate_index << 2 | padding << 1, 0xC0])


@pytest.mark.parametrize("raw, expected", [
    (header(3, 3, 9, 0), (3, 3, 9, 44100, 417)),  # MPEG-1 layer III, 128 kbit/s
    (header(3, 3, 9, 0, padding=1), (3, 3, 9, 44100, 418)),
    (header(2, 3, 8, 0), (2, 3, 8, 22050, 208)),  # MPEG-2 layer III, 64 kbit/s
    (header(0, 3, 8, 2), (0, 3, 8, 8000, 576)),  # MPEG-2.5 at 8 kHz
    (header(3, 2, 14, 2, padding=1), (3, 2, 14, 32000, 1729)),  # the longest frame
    (header(3, 1, 1, 0), (3, 1, 1, 44100, 32)),  # layer I: 4-byte slots
])
def test_a_frame_header_gives_its_frames_length(raw, expected):
    assert tuple(mp3_frames.frame_header(raw)) == expected
    assert mp3_frames.frame_header(b"\0" + raw, 1) == mp3_frames.frame_header(raw)


@pytest.mark.parametrize("raw", [
    header(1, 3, 9, 0),  # reserved version
    header(3, 3, 0, 0),  # free format
    header(3, 3, 15, 0),  # bad bit rate
    header(3, 3, 9, 3),  # reserved rate
    b"\xff\xe0\x90",  # too short
    b"ID3\x04",
])
def test_what_is_not_a_frame_header_is_none(raw):
    assert mp3_frames.frame_header(raw) is None


def music():
    """(5 s, 2) float32: loud noise, then a quiet tone: a VBR encoder's rate
    falls from its first frames' (libsndfile's guess is then short)."""
    rng = np.random.default_rng(0)
    t = np.arange(3 * RATE) / RATE
    tone = np.repeat((0.05 * np.sin(2 * np.pi * 220 * t))[:, None], 2, axis=1)
    return np.concatenate([0.5 * rng.standard_normal((2 * RATE, 2)), tone]).astype(np.float32)


def id3v2(size, footer=False):
    """An ID3v2.4 tag of one PRIV frame, `size` bytes of payload."""
    body = b"PRIV" + syncsafe(size) + b"\0\0" + bytes(size)
    flags = 0x10 if footer else 0
    tag = b"ID3\x04\x00" + bytes([flags]) + syncsafe(len(body)) + body
    return tag + (b"3DI\x04\x00" + bytes([flags]) + syncsafe(len(body)) if footer else b"")


def syncsafe(n):
    return bytes([n >> 21 & 0x7F, n >> 14 & 0x7F, n >> 7 & 0x7F, n & 0x7F])


@pytest.fixture(scope="module")
def mp3s(tmp_path_factory):
    """{name: path}: VBR and CBR, with and without their LAME header, and
    the bare VBR behind a 200 kB ID3v2 tag (with a footer)."""
    folder = tmp_path_factory.mktemp("mp3_frames")
    made = {}
    for name, mode in (("cbr", "CONSTANT"), ("vbr", "VARIABLE")):
        path = folder / f"{name}.mp3"
        soundfile.write(path, music(), RATE, format="MP3", subtype="MPEG_LAYER_III",
                        bitrate_mode=mode, compression_level=0.3)
        made[name] = path
        made[f"{name}_bare"] = strip_xing(str(path), str(folder / f"{name}_bare.mp3"))
    tagged = folder / "vbr_bare_tagged.mp3"
    tagged.write_bytes(id3v2(200_000, footer=True) + open(made["vbr_bare"], "rb").read())
    made["vbr_bare_tagged"] = tagged
    return {name: str(path) for name, path in made.items()}


def reader_of(path):
    data = open(path, "rb").read()
    return lambda offset, size: data[offset:offset + size]


@pytest.mark.parametrize("name, guessed", [("vbr_bare", True), ("vbr_bare_tagged", True),
                                           ("vbr", False), ("cbr", False), ("cbr_bare", False)])
def test_only_a_bare_vbr_mp3_has_its_length_guessed_from_a_varying_rate(mp3s, name, guessed):
    assert mp3_frames.length_estimated_from_a_varying_rate(reader_of(mp3s[name])) is guessed


def test_what_is_not_an_mp3_has_no_varying_rate(mp3s, tmp_path):
    soundfile.write(tmp_path / "a.wav", music(), RATE)
    assert not mp3_frames.length_estimated_from_a_varying_rate(reader_of(tmp_path / "a.wav"))
    one_frame = open(mp3s["vbr_bare"], "rb").read()[:600]  # cut after its first frame
    assert not mp3_frames.length_estimated_from_a_varying_rate(
        lambda offset, size: one_frame[offset:offset + size])


@pytest.mark.parametrize("name", ["vbr_bare", "vbr_bare_tagged"])
def test_a_bare_vbr_mp3_is_decoded_to_its_end(mp3s, name):
    """libsndfile's guess of the length is off by seconds (short: it would
    decode no further; behind the tag, long: it counts the tag's bytes)."""
    guessed = soundfile.info(mp3s[name]).frames
    assert abs(guessed - 5 * RATE) > RATE
    info = audio.file_info(mp3s[name])
    assert info.decoder == "FFmpeg"
    samples = audio.load_audio(mp3s[name], RATE)
    assert 5 * RATE <= len(samples) <= 5 * RATE + 3 * 1152
    with open(mp3s[name], "rb") as file:  # the file's bytes (a remote path's way)
        with audio.open_source(file.read()) as source:
            assert source.decoder == "FFmpeg"
    assert audio.file_info(mp3s["vbr"]).decoder == "libsndfile"
    assert audio.file_info(mp3s["cbr_bare"]).decoder == "libsndfile"
