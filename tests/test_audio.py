"""read_clip: what is not a regular file, too large, too long or not finite
is refused with a reason (never a hang); longer clips are cut."""

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
        stream = audio.audio_windows(str(path), 1000, window, hop, block_seconds=block_seconds,
                                     edge_padding=edge)
        got = []
        while True:
            try:
                got.append(next(stream))
            except StopIteration as end:
                assert end.value == length
                break
        assert [start for start, _ in got] == [start for start, _ in expected]
        for (_, ours), (_, theirs) in zip(got, expected):
            np.testing.assert_array_equal(ours, theirs)
