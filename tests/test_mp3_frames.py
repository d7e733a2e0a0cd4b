"""mp3_frames: MPEG audio frame headers, and what an MP3's bytes say of
the length libsndfile gives it: the MP3s libsndfile would decode short of
their end are FFmpeg's (joined files, a bit rate that varies without a
header giving the length), a file without a length header has the length
its frames hold (a cover's bytes are not audio), a header counting bytes
past the file's end is said."""

import numpy as np
import pytest
import soundfile

from tagger import audio, mp3_frames
from tagger.audio_spans import SpanReader
from tests.test_audio_spans import strip_xing, through

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


def apev2(value=b"a title"):
    """An APEv2 tag (header, one item, footer), as a file's end holds it."""
    item = len(value).to_bytes(4, "little") + bytes(4) + b"Title\0" + value
    size = (len(item) + 32).to_bytes(4, "little")

    def head(flags):
        return b"APETAGEX" + (2000).to_bytes(4, "little") + size + (1).to_bytes(
            4, "little") + flags.to_bytes(4, "little") + bytes(8)
    return head(0xA0000000) + item + head(0x80000000)


ID3V1 = b"TAG" + bytes(125)


def lyrics3(size=3000):
    """A Lyrics3 v2.00 block of `size` bytes of lyrics, as it sits before an ID3v1 tag."""
    block = b"LYRICSBEGIN" + b"LYR%05d" % size + (b"la la la\r\n" * size)[:size]
    return block + b"%06d" % len(block) + b"LYRICS200"


# bytes after the frames that are none, before the tags at the end
TAILS = {"cbr_bare_zeros_at_end": (bytes(2000), b""),
         "cbr_bare_lyrics3": (apev2() + lyrics3(), ID3V1)}


def frames_from(data, count=None, skip=0):
    """The bytes of the frames of `data` (a bare stream) from frame `skip`
    on, `count` of them (None: all); and how many were taken."""
    at = taken = 0
    for _ in range(skip):
        at += mp3_frames.frame_header(data, at).length
    begin = at
    while (count is None or taken < count) and (frame := mp3_frames.frame_header(data, at)):
        at, taken = at + frame.length, taken + 1
    return data[begin:at], taken


def encode(path, audio_, mode="CONSTANT", level=0.3):
    soundfile.write(path, audio_, RATE, format="MP3", subtype="MPEG_LAYER_III",
                    bitrate_mode=mode, compression_level=level)
    return path


@pytest.fixture(scope="module")
def mp3s(tmp_path_factory):
    """{name: path}: VBR and CBR, with and without their LAME header; the
    bare VBR behind a 200 kB ID3v2 tag (with a footer); the bare CBR behind
    a 300 kB cover and before APEv2 and ID3v1 tags, from its first padded
    frame on, and before bytes that are no frames (`TAILS`: 2000 zeros; an
    APEv2 tag and a Lyrics3 block before an ID3v1 tag); the CBR with its
    header between such tags; two files joined (the first's header
    counting its own frames); a bare stream whose
    rate falls after its first 70 frames; the CBR cut at 70% of its bytes."""
    folder = tmp_path_factory.mktemp("mp3_frames")
    made = {}
    for name, mode in (("cbr", "CONSTANT"), ("vbr", "VARIABLE")):
        made[name] = encode(folder / f"{name}.mp3", music(), mode)
        made[f"{name}_bare"] = strip_xing(str(made[name]), str(folder / f"{name}_bare.mp3"))
        other = encode(folder / f"{name}_other.mp3", music()[::-1].copy(), mode)
        (folder / f"{name}_joined.mp3").write_bytes(made[name].read_bytes()
                                                    + other.read_bytes())
        made[f"{name}_joined"] = folder / f"{name}_joined.mp3"
    tagged = folder / "vbr_bare_tagged.mp3"
    tagged.write_bytes(id3v2(200_000, footer=True) + open(made["vbr_bare"], "rb").read())
    made["vbr_bare_tagged"] = tagged
    bare = open(made["cbr_bare"], "rb").read()
    for name, audio_ in (("cbr_bare_covered", bare), ("cbr_covered", made["cbr"].read_bytes())):
        (folder / f"{name}.mp3").write_bytes(id3v2(300_000) + audio_ + apev2() + ID3V1)
        made[name] = folder / f"{name}.mp3"
    padded = next(k for k in range(64) if mp3_frames.frame_header(
        frames_from(bare, 1, skip=k)[0]).length > mp3_frames.frame_header(bare).length)
    (folder / "cbr_bare_padded_first.mp3").write_bytes(frames_from(bare, skip=padded)[0])
    made["cbr_bare_padded_first"] = folder / "cbr_bare_padded_first.mp3"
    for name, (tail, tags) in TAILS.items():
        (folder / f"{name}.mp3").write_bytes(bare + tail + tags)
        made[name] = folder / f"{name}.mp3"
    dense = strip_xing(str(encode(folder / "dense.mp3", music(), level=0.0)),
                       str(folder / "dense_bare.mp3"))
    sparse = strip_xing(str(encode(folder / "sparse.mp3", music(), level=0.7)),
                        str(folder / "sparse_bare.mp3"))
    (folder / "rate_falls.mp3").write_bytes(frames_from(open(dense, "rb").read(), 70)[0]
                                            + open(sparse, "rb").read())
    made["rate_falls"] = folder / "rate_falls.mp3"
    data = made["cbr"].read_bytes()
    (folder / "cbr_cut.mp3").write_bytes(data[:len(data) * 7 // 10])
    made["cbr_cut"] = folder / "cbr_cut.mp3"
    return {name: str(path) for name, path in made.items()}


def reader_of(path):
    data = open(path, "rb").read()
    return (lambda offset, size: data[offset:offset + size]), len(data)


@pytest.mark.parametrize("name, cut_short", [
    ("vbr_bare", "no header gives its length and its bit rate varies"),
    ("vbr_bare_tagged", "no header gives its length and its bit rate varies"),
    ("rate_falls", "no header gives its length and its bit rate varies"),
    ("cbr_joined", "frames follow the bytes its length header counts"),
    ("vbr_joined", "frames follow the bytes its length header counts"),
    ("vbr", None), ("cbr", None), ("cbr_covered", None), ("cbr_bare", None),
    ("cbr_bare_covered", None), ("cbr_bare_padded_first", None), ("cbr_cut", None),
    ("cbr_bare_zeros_at_end", None), ("cbr_bare_lyrics3", None)])
def test_what_libsndfile_would_cut_short(mp3s, name, cut_short):
    assert mp3_frames.length_check(*reader_of(mp3s[name])).cut_short == cut_short


def test_what_the_bytes_say_of_the_length(mp3s):
    """A file with a length header keeps libsndfile's length, one without
    has the samples of its frames (counted without the tags around them),
    one cut short after its header was written has none."""
    frames = frames_from(open(mp3s["cbr_bare"], "rb").read())[1]
    for name in ("cbr_bare", "cbr_bare_covered"):
        assert mp3_frames.length_check(*reader_of(mp3s[name])) == mp3_frames.LengthCheck(
            frames=frames * 1152)
    assert mp3_frames.length_check(*reader_of(mp3s["cbr_covered"])) == mp3_frames.LengthCheck()
    stream = frames_from(open(mp3s["cbr_bare"], "rb").read())[0]
    for name, (tail, _) in TAILS.items():  # a constant rate, and the bytes after it said
        assert mp3_frames.length_check(*reader_of(mp3s[name])) == mp3_frames.LengthCheck(
            frames=frames * 1152, after_frames=len(open(mp3s["cbr_bare"], "rb").read())
            - len(stream) + len(tail))
    cut = mp3_frames.length_check(*reader_of(mp3s["cbr_cut"]))
    missing = len(open(mp3s["cbr"], "rb").read()) - len(open(mp3s["cbr_cut"], "rb").read())
    assert cut == mp3_frames.LengthCheck(
        past_end=f"its length header counts {missing} bytes more than the file holds")


def test_what_is_not_an_mp3_has_nothing_said_of_its_length(mp3s, tmp_path):
    soundfile.write(tmp_path / "a.wav", music(), RATE)
    assert mp3_frames.length_check(*reader_of(tmp_path / "a.wav")) is None
    one_frame = open(mp3s["vbr_bare"], "rb").read()[:600]  # cut after its first frame
    assert mp3_frames.length_check(lambda offset, size: one_frame[offset:offset + size],
                                   600) is None


@pytest.mark.parametrize("name", ["cbr_bare", "cbr_bare_covered", *TAILS])
def test_a_bare_cbr_mp3_has_the_length_its_frames_hold(mp3s, name):
    """libsndfile estimates it from the first frame's length and the file's
    size: behind a cover, seconds too long; bare, a padding's worth; before
    bytes that are no frames, seconds too long, and it fails in them (past
    1 KiB), so it reads no further than the frames: decoded once, by
    seeking, with --windows."""
    samples = audio.load_audio(mp3s[name], RATE)
    info = audio.file_info(mp3s[name])
    assert info.decoder == "libsndfile" and info.frames == len(samples)
    if name in TAILS:  # the same frames as the bare file's, the same samples
        assert np.array_equal(samples, audio.load_audio(mp3s["cbr_bare"], RATE))
    for rate in (RATE, 16000):
        with SpanReader(mp3s[name], rate) as reader:
            assert reader.seek_problem is None
            assert reader.length == len(through(mp3s[name], rate))
    if name in TAILS:
        from tagger.inference.window_choice import read_chosen

        chosen = read_chosen(mp3s[name], 16000, 16000, 16000, 0, 2)
        while True:
            try:
                next(chosen)
            except StopIteration as stop:
                assert stop.value.through is None and stop.value.indices.tolist() == [1, 3]
                break


@pytest.mark.parametrize("name, parts", [
    ("vbr_bare", 1), ("vbr_bare_tagged", 1), ("cbr_joined", 2), ("vbr_joined", 2),
    ("rate_falls", 1), ("cbr_bare_padded_first", 1)])
def test_an_mp3_libsndfile_would_cut_short_is_decoded_to_its_end(mp3s, name, parts):
    """libsndfile would stop where a header counting the first part's frames
    or its estimate from the first frame's length says (the joined files:
    at 5.0 of 10.1 s; the one whose rate falls: at 3.6 of 6.9 s; from a
    padded first frame: 172 samples short), and the builders would record
    that much: FFmpeg decodes every frame, whole (read_clip) and streamed."""
    data = open(mp3s[name], "rb").read()
    frames = frames_from(data)[1] if name.startswith(("cbr_bare", "rate")) else None
    info = audio.file_info(mp3s[name])
    assert info.decoder == "FFmpeg"
    samples = audio.load_audio(mp3s[name], RATE)
    assert len(through(mp3s[name], RATE)) == len(samples)
    if frames is not None:  # no header: every frame decoded
        assert len(samples) == frames * 1152
    else:  # each part's 5 s and what its encoder adds
        assert parts * 5 * RATE <= len(samples) <= parts * (5 * RATE + 3 * 1152)
    assert np.abs(samples[-RATE:]).max() > 0.01  # the last second is music, not padding
    with open(mp3s[name], "rb") as file:  # the file's bytes (a remote path's way)
        with audio.open_source(file.read()) as source:
            assert source.decoder == "FFmpeg"
    for kept in ("vbr", "cbr", "cbr_covered", "cbr_bare"):
        assert audio.file_info(mp3s[kept]).decoder == "libsndfile"
