"""Tagging a track from N of its windows (`tag_files(..., windows=N)`):
which windows (`window_choice.choose`), and that the windows read by
seeking are the windows a run over every window scores."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from tagger.inference import window_choice
from tagger.inference.engine.tagging import tag_files
from tagger.inference.window_choice import choose, windows_count, windows_label

RATE = 1000  # the fake tagger's rate: 10 s are 10 * RATE samples
WINDOW = 100


class FirstSample:
    """Scores each window by its first and last samples (a ramp file says
    where the window starts); `hop_samples` and `edge_padding` as a
    spectrogram tagger's."""

    sample_rate = RATE
    window_samples = WINDOW

    def __init__(self, hop=None, edge=0):
        self.hop_samples, self.edge_padding = hop, edge

    def __call__(self, windows):
        return np.stack([windows[:, 0], windows[:, -1]], axis=1).astype(np.float32), None


def ramp(path, seconds, rate=RATE):
    """A file whose sample at time t holds t / 1000 (t in seconds)."""
    sf.write(str(path), (np.arange(int(seconds * rate)) / rate / 1000).astype(np.float32),
             rate, subtype="FLOAT" if str(path).endswith(".wav") else None)
    return str(path)


def test_the_windows_are_the_centres_of_equal_parts_of_the_whole_track():
    # 60 s at 1000 Hz: windows 0..599, its first and last seconds as much as the rest
    assert choose(60 * RATE, 4, WINDOW, WINDOW, 0, RATE).tolist() == [75, 225, 375, 525]
    assert choose(60 * RATE, 1, WINDOW, WINDOW, 0, RATE).tolist() == [300]
    assert choose(21 * RATE, 10, WINDOW, WINDOW, 0, RATE).tolist() == [
        (2 * i + 1) * 210 // 20 for i in range(10)]
    # N windows or fewer: every window
    assert choose(8 * WINDOW + 99, 8, WINDOW, WINDOW, 0, RATE) is None
    # edge padding and a hop: window k starts at k * hop - padding, inside the file
    picks = choose(30 * RATE, 3, WINDOW, 50, 25, RATE)
    assert picks.tolist() == [100, 300, 499]
    assert (picks * 50 - 25 >= 0).all() and (picks * 50 - 25 + WINDOW <= 30 * RATE).all()


def test_edges_left_out_where_asked_and_the_track_allows():
    # 10 s from each edge of 60 s: windows 100..499
    assert choose(60 * RATE, 4, WINDOW, WINDOW, 0, RATE, edge_seconds=10).tolist() == [
        150, 250, 350, 450]
    # 21 s: 10 windows lie 10 s from both edges; 20 do not: the whole file
    assert choose(21 * RATE, 10, WINDOW, WINDOW, 0, RATE, edge_seconds=10).tolist() == [
        100 + i for i in range(10)]
    assert choose(21 * RATE, 20, WINDOW, WINDOW, 0, RATE, edge_seconds=10).tolist() == [
        (2 * i + 1) * 210 // 40 for i in range(20)]
    picks = choose(30 * RATE, 3, WINDOW, 50, 25, RATE, edge_seconds=10)
    assert picks.tolist() == [234, 300, 366]
    assert (picks * 50 - 25 >= 10 * RATE).all() and (picks * 50 - 25 + WINDOW <= 20 * RATE).all()
    assert window_choice.windows_inside(60 * RATE, WINDOW, WINDOW, 0, 10 * RATE) == (100, 500)


def test_a_track_is_scored_from_the_chosen_windows_as_a_run_over_every_window(tmp_path):
    files = [ramp(tmp_path / "long.wav", 60), ramp(tmp_path / "short.wav", 0.75),
             ramp(tmp_path / "resampled.flac", 40, rate=2 * RATE)]
    for predictor in (FirstSample(), FirstSample(hop=60, edge=20)):
        every = {r.path: r for r in tag_files(predictor, files, workers=2)}
        for result in tag_files(predictor, files, windows=8, workers=2, batch_size=5):
            assert result.ok and result.through is None, result.error
            whole = every[result.path]
            if whole.windows <= 8:  # short.wav's 7 windows: every one, decoded through
                assert result.chosen is None and result.windows == whole.windows == 7
                np.testing.assert_array_equal(result.scores, whole.scores)
                continue
            hop = predictor.hop_samples or WINDOW
            expected = choose(result.samples, 8, WINDOW, hop, predictor.edge_padding, RATE)
            assert result.chosen.tolist() == expected.tolist() and result.windows == 8
            assert result.samples == whole.samples and result.file_sample_rate == (
                2 * RATE if result.path.endswith(".flac") else RATE)
            np.testing.assert_allclose(result.scores, whole.scores[result.chosen], atol=2e-6,
                                       rtol=0)
            np.testing.assert_array_equal(result.starts, expected * hop)
            np.testing.assert_allclose(result.clip_scores, result.scores.mean(axis=0))


def test_a_file_that_cannot_seek_is_decoded_through_with_the_same_choice(tmp_path):
    """A raw AAC stream: FFmpeg's times after a seek are estimates. Its
    windows are chosen from the length decoding gives, and read through."""
    av = pytest.importorskip("av")
    path = str(tmp_path / "a.aac")
    rate = 8000
    with av.open(path, "w", format="adts") as out:
        stream = out.add_stream("aac", rate=rate)
        stream.layout = "mono"
        t = np.arange(25 * rate) / rate
        audio = (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)[None]
        for i in range(0, audio.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[:, i:i + 1024]),
                                               format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    predictor = FirstSample()
    whole = next(tag_files(predictor, [path]))
    result = next(tag_files(predictor, [path], windows=3))
    assert result.through == "FFmpeg seeks in its aac stream by estimated times"
    assert result.chosen.tolist() == choose(whole.samples, 3, WINDOW, WINDOW, 0, RATE).tolist()
    np.testing.assert_array_equal(result.scores, whole.scores[result.chosen])


def tone_file(path, seconds, rate=16000):
    """A 300 Hz tone of `seconds` in the format `path`'s suffix names: MP3
    (CBR, with LAME's Info header), FLAC or M4A (its index before the audio)."""
    audio = (0.3 * np.sin(2 * np.pi * 300 * np.arange(int(seconds * rate)) / rate)).astype(
        np.float32)
    if str(path).endswith(".m4a"):
        from tests.checks import write_m4a

        return str(write_m4a(path, audio, rate, faststart=True))
    kind = dict(format="MP3", subtype="MPEG_LAYER_III", bitrate_mode="CONSTANT",
                compression_level=0.3) if str(path).endswith(".mp3") else {}
    sf.write(str(path), audio, rate, **kind)
    return str(path)


@pytest.mark.parametrize("kind, through", [
    ("mp3", "bytes more than the file holds"), ("m4a", "frames run past the file's end"),
    ("flac", None)])
def test_a_file_cut_short_after_its_header_is_scored_as_with_every_window(tmp_path, kind,
                                                                          through):
    """A download stopped at 70%: the header says 30 s, the audio ends near
    21 s. The windows are chosen from the length decoding gives, as with
    every window, not read past the audio's end; a FLAC that libsndfile
    loses its sync in where the bytes stop fails alike with and without."""
    path = tone_file(tmp_path / f"a.{kind}", 30)
    data = open(path, "rb").read()
    open(path, "wb").write(data[:len(data) * 7 // 10])
    predictor = FirstSample()
    whole = next(tag_files(predictor, [path]))
    result = next(tag_files(predictor, [path], windows=4))
    if through is None:
        assert whole.error == result.error == (
            "not decodable audio (Error : flac decoder lost sync)")
        return
    assert whole.ok and 20 * RATE < whole.samples < 22 * RATE, (whole.error, whole.samples)
    assert through in result.through and result.samples == whole.samples
    assert result.chosen.tolist() == choose(whole.samples, 4, WINDOW, WINDOW, 0, RATE).tolist()
    np.testing.assert_array_equal(result.scores, whole.scores[result.chosen])


def test_a_bare_mp3_behind_a_cover_is_scored_from_the_windows_of_its_length(tmp_path):
    """No length header and a 100 kB ID3v2 tag (a cover) before the frames:
    libsndfile's estimate counts the tag's bytes as audio (37 s of 30 here,
    its windows all inside the audio, read and stored with that length).
    The frames give the length: the windows and the length stored are
    those of a run over every window."""
    from tests.test_mp3_frames import frames_from, id3v2

    data = open(tone_file(tmp_path / "lame.mp3", 30), "rb").read()
    path = tmp_path / "covered.mp3"
    path.write_bytes(id3v2(100_000) + frames_from(data, skip=1)[0])  # without the Info frame
    predictor = FirstSample()
    whole = next(tag_files(predictor, [str(path)]))
    result = next(tag_files(predictor, [str(path)], windows=4))
    assert result.ok and result.through is None and result.samples == whole.samples
    assert result.chosen.tolist() == choose(whole.samples, 4, WINDOW, WINDOW, 0, RATE).tolist()
    np.testing.assert_allclose(result.scores, whole.scores[result.chosen], atol=2e-6, rtol=0)


def test_windows_flag_values_and_the_label_recording_them():
    assert [windows_count(t) for t in ("8", "all", "ALL", "0")] == [8, 0, 0, 0]
    for bad in ("-1", "eight", "2.5"):
        with pytest.raises(ValueError, match="expected a number of windows"):
            windows_count(bad)
    label = "MTT_musicnn sha256:ab12"
    assert windows_label(label, 8) == f"{label} windows:8 rule:2"
    assert window_choice.RULE == 2 and window_choice.EDGE_SECONDS == 0
    # what the earlier rule (10 s left out at each end) labelled is another label
    assert windows_label(label, 8) != f"{label} windows:8"
    assert windows_label(label, window_choice.ALL) == windows_label(label, None) == label
