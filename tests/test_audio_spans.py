"""SpanReader: a span decoded by seeking holds the samples that decoding
the whole file from its start gives there, in every format tag.py seeks
in, at the file's own rate and resampled.

Tolerances (the largest differences measured, with room):
- WAV, FLAC, Ogg Vorbis, M4A (AAC): 0 at the file's rate: the
  decoders seek sample-exactly (FFmpeg from a few frames before the span);
- MP3 (mpg123), CBR with and without a Xing/LAME header, VBR with one,
  and Opus: within `MP3_TOLERANCE`: after a seek mpg123 decodes from a few
  frames back and its synthesis filter's sums may round differently (1
  ulp, 6e-8, seen), and the Opus decoder restarts (1.2e-7 seen); no
  sample is shifted;
- resampled to 16 kHz: within `RESAMPLED_TOLERANCE`: soxr's sums over the
  span and over the whole file round differently in float32 (5e-7 seen).
"""

import av
import numpy as np
import pytest
import soundfile

from tagger.audio import CannotSeekExactly, stream_audio
from tagger.audio_spans import SpanReader

RATE = 44100
SECONDS = 12
MP3_TOLERANCE = 1e-6
RESAMPLED_TOLERANCE = 2e-6
# seconds the header's length may differ from what decoding gives: FFmpeg
# keeps the AAC encoder's padding in the last frame (up to 1024 samples)
LENGTH_TOLERANCE = {"m4a": 1024 / RATE}
# in this order: a short read, then a seek a few seconds on (where libsndfile
# 1.2's Vorbis seek lands samples off unless it seeks from the start)
SPANS = ((0, 3000), (12345, 48128), (5 * RATE + 7, 48128), (9 * RATE, 30000))


def music(rate=RATE, seconds=SECONDS):
    """(samples, 2) float32: a gliding tone and noise, different per channel."""
    t = np.arange(int(rate * seconds)) / rate
    noise = np.random.default_rng(0).standard_normal((len(t), 2)) * 0.05
    tones = np.stack([0.3 * np.sin(2 * np.pi * 440 * t * (1 + 0.02 * t)),
                      0.3 * np.sin(2 * np.pi * 660 * t)], axis=1)
    return (tones + noise).astype(np.float32)


def strip_xing(path, out):
    """`path` without its first frame (LAME's Xing/Info frame): an MP3 with
    no header giving its length or seek table."""
    data = open(path, "rb").read()
    tag = max(data.find(b"Xing"), data.find(b"Info"))
    start = max(i for i in range(tag) if data[i] == 0xFF and data[i + 1] & 0xE0 == 0xE0)
    header = int.from_bytes(data[start:start + 4], "big")
    kbps = [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320][header >> 12 & 15]
    rate = [44100, 48000, 32000][header >> 10 & 3]
    length = 144000 * kbps // rate + (header >> 9 & 1)  # MPEG-1 layer III
    open(out, "wb").write(data[:start] + data[start + length:])
    return out


def write_m4a(path, audio, rate, container="mp4"):
    """AAC in `container` by FFmpeg's encoder, without perceptual noise
    substitution: its decoder draws that noise from a random state, so a
    band coded so differs after a seek (by design, not a seeking error)."""
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream("aac", rate=rate, options={"aac_pns": "0"})
        stream.layout = "stereo"
        for i in range(0, len(audio), 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[i:i + 1024].T),
                                               format="fltp", layout="stereo")
            frame.sample_rate, frame.pts = rate, i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """{name: (path, tolerance at the file's rate)}."""
    folder = tmp_path_factory.mktemp("spans")
    audio = music()
    made = {}
    for name, kind in (("wav", dict(format="WAV")), ("flac", dict(format="FLAC")),
                       ("ogg", dict(format="OGG", subtype="VORBIS"))):
        soundfile.write(folder / f"a.{name}", audio, RATE, **kind)
        made[name] = (str(folder / f"a.{name}"), 0.0)
    soundfile.write(folder / "a.opus", music(48000), 48000, format="OGG", subtype="OPUS")
    made["opus"] = (str(folder / "a.opus"), MP3_TOLERANCE)
    for name, mode in (("cbr", "CONSTANT"), ("vbr", "VARIABLE")):
        path = str(folder / f"{name}.mp3")
        soundfile.write(path, audio, RATE, format="MP3", subtype="MPEG_LAYER_III",
                        bitrate_mode=mode, compression_level=0.3)
        made[f"mp3_{name}_lame_header"] = (path, MP3_TOLERANCE)
        made[f"mp3_{name}_no_header"] = (strip_xing(path, str(folder / f"{name}_bare.mp3")),
                                         MP3_TOLERANCE)
    made["m4a"] = (write_m4a(folder / "a.m4a", audio, RATE), 0.0)
    return made


def through(path, rate):
    return np.concatenate(list(stream_audio(path, rate)))


FORMATS = ("wav", "flac", "ogg", "opus", "mp3_cbr_lame_header", "mp3_cbr_no_header",
           "mp3_vbr_lame_header", "m4a")


@pytest.mark.parametrize("name", FORMATS)
def test_a_span_read_by_seeking_equals_the_file_decoded_from_its_start(files, name):
    path, tolerance = files[name]
    with SpanReader(path, 16000) as reader:
        own = reader.file_rate
    assert reader.seek_problem is None
    for rate, allowed in ((own, tolerance), (16000, RESAMPLED_TOLERANCE + tolerance)):
        slack = LENGTH_TOLERANCE.get(name, 0.0)
        whole = through(path, rate)
        with SpanReader(path, rate) as reader:
            assert abs(reader.length - len(whole)) <= slack * rate
            for start, count in SPANS:
                start = start * rate // RATE
                span = reader.read(start, count)
                assert span.shape == (count,) and span.dtype == np.float32
                difference = np.abs(span - whole[start:start + count]).max()
                assert difference <= allowed, (name, rate, start, difference)


def test_mp3_bare_and_with_header_give_their_length(files):
    """A LAME header gives the length exactly (the encoder's delay and
    padding left out); without one, the frames give it: all they hold."""
    with SpanReader(files["mp3_cbr_lame_header"][0], RATE) as cbr:
        assert cbr.length == SECONDS * RATE
    with SpanReader(files["mp3_cbr_no_header"][0], RATE) as bare:
        assert bare.seek_problem is None and bare.length % 1152 == 0
        assert SECONDS * RATE < bare.length < SECONDS * RATE + 3 * 1152


def test_a_bare_vbr_mp3_is_decoded_whole_through_ffmpeg(files):
    """libsndfile would guess a bare VBR MP3's length from its first frames'
    rate and decode no further (6.2 of 12 s here): FFmpeg decodes it,
    through, to its end (the first of its 12 s shifted by the encoder's
    delay, which only the header gave)."""
    path = files["mp3_vbr_no_header"][0]
    with SpanReader(path, RATE) as reader:
        assert reader.seek_problem == "FFmpeg seeks in its mp3 stream by estimated times"
    whole = through(path, RATE)
    assert SECONDS * RATE <= len(whole) <= SECONDS * RATE + 3 * 1152
    assert np.abs(whole[-RATE:]).max() > 0.1  # the last second is music, not padding


@pytest.mark.parametrize("file_rate, rate, frames", [
    (8000, 22050, 8003), (44100, 16000, 44101), (48000, 22050, 48001), (24000, 44100, 1000)])
def test_the_length_is_the_one_decoding_through_gives(tmp_path, file_rate, rate, frames):
    """The streaming resampler rounds `frames * rate / file_rate` (1000 *
    44100 / 24000 = 1837.5 to 1837) where the ceiling is one more: a window
    at the file's end would be chosen from a length decoding does not give."""
    path = str(tmp_path / "a.wav")
    soundfile.write(path, music(file_rate, (frames + 1) / file_rate)[:frames], file_rate)
    with SpanReader(path, rate) as reader:
        assert reader.seek_problem is None
        assert reader.length == len(through(path, rate)) == -(-frames * rate // file_rate) - 1


class EndsSooner:
    """A decoder whose header gives `frames` and whose audio has `there`."""

    def __init__(self, frames, there, fails=False):
        self.frames, self.there, self.fails = frames, there, fails

    def read_at(self, frame, frames):
        if self.fails:
            raise CannotSeekExactly("cannot seek there")
        return np.zeros((max(0, min(frames, self.there - frame)), 2), np.float32)


def test_the_length_is_read_where_the_header_says_the_file_ends():
    """The last `END_FRAMES` frames by the header: fewer end the file sooner
    (libsndfile gives a recorded Opus file 10 samples fewer than its
    header's), none leave its length to decoding through (a file cut short)."""
    from tagger.audio import END_FRAMES, _frames_at_the_end

    assert _frames_at_the_end(EndsSooner(100_000, 100_000)) == (100_000, None)
    assert _frames_at_the_end(EndsSooner(100_000, 99_990)) == (99_990, None)
    assert _frames_at_the_end(EndsSooner(100, 90)) == (90, None)
    past = (None, "its header's 100000 frames run past the file's end")
    assert _frames_at_the_end(EndsSooner(100_000, 100_000 - END_FRAMES)) == past
    assert _frames_at_the_end(EndsSooner(100_000, 70_000)) == past
    assert _frames_at_the_end(EndsSooner(100_000, 100_000, fails=True)) == past
    assert _frames_at_the_end(EndsSooner(None, 100_000)) == (
        None, "its header does not give its length")


def test_a_span_past_the_end_cannot_be_read_exactly(files):
    with SpanReader(files["flac"][0], 16000) as reader:
        with pytest.raises(CannotSeekExactly, match="the file ends"):
            reader.read(reader.length - 1000, 2000)


def test_a_raw_aac_stream_is_not_read_by_seeking(files, tmp_path):
    path = write_m4a(tmp_path / "a.aac", music(seconds=2), RATE, container="adts")
    with SpanReader(path, 16000) as reader:
        assert reader.seek_problem == "FFmpeg seeks in its aac stream by estimated times"
