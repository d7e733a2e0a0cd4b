"""read_clip: what is not a regular file, too large, too long or not finite
is refused with a reason (never a hang); longer clips are cut. What
libsndfile cannot open (M4A/AAC) is decoded by FFmpeg, whole or streamed,
with the same mono mix and resampling; what neither opens is one failure."""

import os
import signal

import numpy as np
import pytest
import soundfile

from tagger import audio
from tagger.audio import AudioDecodeError, read_clip

RATE = 16000


@pytest.fixture(autouse=True)
def no_hang():
    """Fails a test that blocks (on a FIFO, say) instead of hanging the run."""
    def fail(*_):
        raise TimeoutError("read_clip blocked")
    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def tone(seconds, channels=1):
    t = np.arange(int(seconds * RATE)) / RATE
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return x if channels == 1 else np.stack([x, -x * 0.5], axis=1)


def write_wav(path, data, subtype="PCM_16"):
    soundfile.write(str(path), data, RATE, format="WAV", subtype=subtype)
    return str(path)


def reason(path, **limits):
    with pytest.raises(AudioDecodeError) as error:
        read_clip(str(path), RATE, **limits)
    return str(error.value)


def test_special_files_are_refused_with_what_they_are(tmp_path):
    fifo = tmp_path / "fifo.mp3"
    os.mkfifo(fifo)
    assert reason(fifo) == "not a regular file (a FIFO)"
    (tmp_path / "dir.mp3").mkdir()
    assert reason(tmp_path / "dir.mp3") == "not a regular file (a folder)"
    os.symlink("/dev/zero", tmp_path / "zero.mp3")
    assert reason(tmp_path / "zero.mp3") == "not a regular file (a character device)"
    os.symlink(tmp_path / "loop_b.mp3", tmp_path / "loop_a.mp3")
    os.symlink(tmp_path / "loop_a.mp3", tmp_path / "loop_b.mp3")
    assert reason(tmp_path / "loop_a.mp3") == "symlink loop"
    assert reason(tmp_path / "missing.mp3") == "file not found"
    (tmp_path / "empty.mp3").write_bytes(b"")
    assert reason(tmp_path / "empty.mp3") == "empty file (0 bytes)"


def test_file_above_the_size_limit_is_skipped_unread(tmp_path):
    path = write_wav(tmp_path / "a.wav", tone(2.0))  # 64 kB of PCM
    assert "above the limit of 0.01 MB (--max-file-mb)" in reason(
        path, max_bytes=int(0.01 * 2**20))
    assert len(read_clip(path, RATE, max_bytes=2**20)[0]) == 2 * RATE


def test_longer_clip_is_cut_and_reports_its_length(tmp_path):
    path = write_wav(tmp_path / "a.wav", tone(5.0, channels=2))
    full, cut = read_clip(path, RATE)
    assert cut is None and full.shape == (5 * RATE,)
    short, seconds = read_clip(path, RATE, max_seconds=2.0)
    assert seconds == pytest.approx(5.0)
    np.testing.assert_array_equal(short, full[:2 * RATE])  # mono mix, same samples
    same, cut = read_clip(path, RATE, max_seconds=5.0)
    assert cut is None and np.array_equal(same, full)


def test_block_reading_equals_one_read(tmp_path, monkeypatch):
    path = write_wav(tmp_path / "a.wav", tone(3.0, channels=2))
    whole = read_clip(path, 22050)[0]
    monkeypatch.setattr(audio, "READ_BLOCK_FRAMES", 1000)
    np.testing.assert_array_equal(read_clip(path, 22050)[0], whole)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_samples_are_refused(tmp_path, bad):
    data = tone(1.0)
    data[100] = bad
    path = write_wav(tmp_path / "a.wav", data, subtype="FLOAT")
    assert reason(path) == "the audio holds NaN or infinite samples"


def test_stream_audio_refuses_special_files(tmp_path):
    os.mkfifo(tmp_path / "fifo.wav")
    with pytest.raises(AudioDecodeError, match="a FIFO"):
        list(audio.stream_audio(str(tmp_path / "fifo.wav"), RATE))
    path = write_wav(tmp_path / "a.wav", tone(1.0))
    assert sum(len(b) for b in audio.stream_audio(path, RATE)) == RATE


def test_to_int16_equals_round_of_clip():
    x = np.random.default_rng(0).uniform(-1.5, 1.5, 10001).astype(np.float32)
    x[:4] = [1.0, -1.0, 0.5 / 32767, -0.5 / 32767]
    expected = np.round(np.clip(x, -1.0, 1.0) * 32767.0).astype(np.int16)
    np.testing.assert_array_equal(audio.to_int16(x), expected)


# -- the second decoder: FFmpeg (PyAV) for what libsndfile cannot open --------


def stereo_tone(seconds, rate=44100):
    t = np.arange(int(seconds * rate)) / rate
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    return np.stack([x, 0.5 * x], axis=1)  # mono mix: 0.75 x


def test_m4a_is_decoded_by_ffmpeg_alike_whole_and_streamed(tmp_path):
    from tests.checks import write_m4a

    path = str(write_m4a(tmp_path / "a.m4a", stereo_tone(2.0), 44100))
    with pytest.raises(soundfile.LibsndfileError):
        soundfile.info(path)  # libsndfile cannot read it
    info = audio.file_info(path)
    assert (info.decoder, info.sample_rate, info.channels) == ("FFmpeg", 44100, 2)
    whole, cut = read_clip(path, 22050)
    assert cut is None
    # 2 s plus the AAC encoder's priming and last-frame padding (up to 1024
    # samples each at 44.1 kHz, half as many at 22.05 kHz)
    assert 2 * 22050 <= len(whole) <= 2 * 22050 + 1024 + 1
    streamed = np.concatenate(list(audio.stream_audio(path, 22050, block_seconds=0.3)))
    np.testing.assert_array_equal(streamed, whole)
    spectrum = np.abs(np.fft.rfft(whole))
    assert np.argmax(spectrum) * 22050 / len(whole) == pytest.approx(440, abs=1)
    expected = 0.75 * 0.5 * np.sin(2 * np.pi * 440 * np.arange(len(whole)) / 22050)
    lag = max(range(0, 1100), key=lambda k: np.dot(whole[k:k + 11025], expected[:11025]))
    kept = whole[lag:lag + 40000]
    assert np.corrcoef(kept, expected[:len(kept)])[0, 1] > 0.999
    short, seconds = read_clip(path, 22050, max_seconds=1.0)
    assert len(short) == 22050 and seconds == pytest.approx(2.0, abs=0.1)


def test_streaming_an_m4a_holds_one_block_not_the_file(tmp_path):
    import tracemalloc

    from tests.checks import write_m4a

    path = str(write_m4a(tmp_path / "long.m4a", stereo_tone(30.0), 44100))
    tracemalloc.start()
    try:
        blocks = [len(b) for b in audio.stream_audio(path, 22050, block_seconds=0.5)]
        streaming = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        whole = read_clip(path, 22050)[0]
        at_once = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sum(blocks) == len(whole) and len(blocks) >= 60
    assert max(blocks) <= 0.5 * 22050 + 1024  # a block, and at most a frame more
    # the whole decode holds 30 s of stereo float32 (10.6 MB) at once; the stream, a block
    assert at_once > 10e6 and streaming < 1.5e6, (streaming, at_once)


@pytest.mark.parametrize("subtype", ["PCM_16", "FLOAT"])
def test_either_decoder_gives_the_same_samples(tmp_path, monkeypatch, subtype):
    """Mono mix and soxr resampling are the same code after either decoder:
    a WAV through FFmpeg gives libsndfile's samples, bit for bit."""
    path = str(tmp_path / "a.wav")
    soundfile.write(path, stereo_tone(1.5), 44100, subtype=subtype)
    by_libsndfile = (read_clip(path, 22050)[0],
                     np.concatenate(list(audio.stream_audio(path, 22050))))
    assert audio.file_info(path).decoder == "libsndfile"

    def refuse(*args, **kwargs):
        raise RuntimeError("Format not recognised")

    monkeypatch.setattr(audio.soundfile, "SoundFile", refuse)
    assert audio.file_info(path).decoder == "FFmpeg"
    np.testing.assert_array_equal(read_clip(path, 22050)[0], by_libsndfile[0])
    np.testing.assert_array_equal(np.concatenate(list(audio.stream_audio(path, 22050))),
                                  by_libsndfile[1])


def test_a_file_neither_decoder_reads_is_one_clear_failure(tmp_path):
    import av

    (tmp_path / "notes.mp3").write_text("liner notes, not audio\n" * 40)
    (tmp_path / "noise.m4a").write_bytes(bytes(range(1, 255)) * 400)
    video = tmp_path / "video.mp4"  # a format FFmpeg knows, without an audio stream
    with av.open(str(video), "w") as container:
        stream = container.add_stream("mpeg4", rate=1)
        stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
        frame = av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    for name in ("notes.mp3", "noise.m4a", "video.mp4"):
        path = str(tmp_path / name)
        messages = {reason(path)}
        for decode in (audio.file_info, lambda p: list(audio.stream_audio(p, RATE))):
            with pytest.raises(AudioDecodeError) as error:
                decode(path)
            messages.add(str(error.value))
        assert len(messages) == 1, messages  # the same one line on every path
        message = messages.pop()
        assert message.startswith("not decodable audio (") and "\n" not in message
        if name == "video.mp4":
            assert message == "not decodable audio (no audio stream)"
        else:  # neither decoder knows it: libsndfile's reason, as before FFmpeg came
            assert "Errno" not in message and "FFmpeg" not in message


def test_decode_reason_says_what_libsndfile_means(tmp_path):
    unknown = "not decodable audio (unknown format or damaged file)"
    for said in ("Format not recognised", "File does not exist or is not a regular file "
                                          "(possibly a pipe?)"):
        assert audio.decode_reason(AudioDecodeError(f"not decodable audio ({said})")) == unknown
    assert audio.decode_reason(AudioDecodeError("not a regular file (a FIFO)")) == \
        "not a regular file (a FIFO)"
    (tmp_path / "notes.txt").write_text("liner notes, not audio\n" * 40)
    with pytest.raises(AudioDecodeError) as error:
        audio.file_info(str(tmp_path / "notes.txt"))
    assert audio.decode_reason(error.value) == unknown


def test_without_pyav_a_format_libsndfile_lacks_says_what_to_install(tmp_path, monkeypatch):
    import sys

    from tests.checks import write_m4a

    path = write_m4a(tmp_path / "a.m4a", stereo_tone(0.5), 44100)
    monkeypatch.setitem(sys.modules, "av", None)  # import av raises ImportError
    assert reason(path).endswith("formats libsndfile lacks are read with PyAV, which is not "
                                 "installed: pip install av)")


@pytest.mark.parametrize("length", [1, 3, 60, 61, 700, 1059, 1060, 1759, 1760, 5000])
def test_windows_of_a_file_padded_at_its_edges(tmp_path, length):
    """edge_padding: the windows are those of the file reflected at both
    edges as numpy's pad does (a centred STFT's padding), whatever the
    file's length and however its blocks arrive; a file whose padded length
    is below one window is one zero-padded window; the return value is the
    file's own length."""
    x = np.random.default_rng(length).uniform(-0.5, 0.5, length).astype(np.float32)
    path = tmp_path / "x.wav"
    soundfile.write(path, x, 1000, subtype="FLOAT")
    window, hop, edge = 1000, 700, 30
    padded = np.pad(x, edge, mode="reflect")
    expected = [(k * hop, padded[k * hop:k * hop + window])
                for k in range(0, max(0, (len(padded) - window) // hop + 1))]
    if not expected:
        one = np.zeros(window, np.float32)
        one[:len(padded)] = padded
        expected = [(0, one)]
    for block_seconds in (0.01, 0.05, 30.0):  # 10-sample blocks: the head arrives in parts
        stream = audio.WindowStream(audio.audio_windows(
            str(path), 1000, window, hop, block_seconds=block_seconds, edge_padding=edge))
        assert stream.total is None
        got = list(stream)
        assert stream.total == length  # what the generator returns
        assert [start for start, _ in got] == [start for start, _ in expected]
        for (_, ours), (_, theirs) in zip(got, expected):
            np.testing.assert_array_equal(ours, theirs)


def test_the_mono_mix_of_two_channels_is_their_float32_mean_bit_for_bit():
    """What every record and tagging run was decoded with: the mean in
    float32, overflow and the smallest subnormals included."""
    rng = np.random.default_rng(0)
    block = (rng.standard_normal((10_001, 2)) * 10.0 ** rng.integers(-40, 38, (10_001, 1))
             ).astype(np.float32)
    block[:3] = [[3.4e38, 3.4e38], [1e-45, 1e-45], [1.0000001, 1.0]]
    with np.errstate(over="ignore"):
        expected = block.mean(axis=1, dtype=np.float32)
        mixed = audio.mono_mix(block)
    assert mixed.dtype == np.float32 and mixed.shape == (10_001,)
    np.testing.assert_array_equal(mixed, expected)
    three = rng.standard_normal((50, 3)).astype(np.float32)
    np.testing.assert_array_equal(audio.mono_mix(three), three.mean(axis=1, dtype=np.float32))


def test_resampled_length_is_the_streaming_resamplers_count():
    """soxr's own count, `stream_audio`'s way (blocks, then a flush), for
    rate pairs up and down and lengths where it and the ceiling differ."""
    import soxr

    rng = np.random.default_rng(0)
    for file_rate, rate in ((8000, 22050), (11025, 16000), (24000, 44100), (44100, 16000),
                            (48000, 22050), (96000, 44100), (16000, 16000)):
        for frames in (1, 2, 3, 1000, *rng.integers(1000, 60000, 6)):
            stream = soxr.ResampleStream(file_rate, rate, 1, dtype="float32", quality="HQ")
            block = np.zeros(int(frames), np.float32)
            given = sum(len(stream.resample_chunk(block[i:i + 7000]))
                        for i in range(0, len(block), 7000))
            given += len(stream.resample_chunk(np.zeros(0, np.float32), last=True))
            if file_rate == rate:
                given = int(frames)
            assert audio.resampled_length(int(frames), file_rate, rate) == given, (
                file_rate, rate, frames)
