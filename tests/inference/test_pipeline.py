"""The tagging pipeline and its helpers, without TensorFlow: a fake predictor
reports what it was given, so batching, order and error handling are visible."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
import soundfile as sf

from tagger.inference.engine.tagging import tag_files
from tagger.inference.inputs import find_audio
from tagger.inference.library.embeddings import EmbeddingWriter
from tagger.inference.outputs import select_tags
from tagger.inference.tag.taggram import taggram_names

RATE = 1000
WINDOW = 100


class FakePredictor:
    """Scores = (first sample of each window, batch size); embeddings = the
    window's mean, repeated. Records every batch size."""

    sample_rate = RATE
    window_samples = WINDOW

    def __init__(self):
        self.batches = []

    def __call__(self, windows):
        self.batches.append(len(windows))
        scores = np.stack([windows[:, 0], np.full(len(windows), len(windows))], axis=1)
        return scores.astype(np.float32), np.repeat(windows.mean(1, keepdims=True), 3, 1)


def ramp_file(folder, name, samples, offset):
    """A WAV whose sample i holds (offset + i) / 10000: windows are recognisable."""
    path = os.path.join(folder, name)
    sf.write(path, (offset + np.arange(samples)) / 10000.0, RATE, subtype="FLOAT")
    return path


@pytest.fixture
def ramps(tmp_path):
    lengths = {"a.wav": 350, "b.wav": 1000, "c.wav": 60, "d.wav": 200}
    return [ramp_file(str(tmp_path), name, n, 1000 * i)
            for i, (name, n) in enumerate(lengths.items())], lengths


def test_every_window_scored_in_order_and_batches_full(ramps):
    files, lengths = ramps
    predictor = FakePredictor()
    results = list(tag_files(predictor, files, batch_size=4, workers=3))
    assert sorted(r.index for r in results) == [0, 1, 2, 3]
    total = 0
    for result in results:
        n = list(lengths.values())[result.index]
        assert result.ok and result.samples == n
        assert result.windows == max(1, n // WINDOW)
        assert result.padded == (n < WINDOW)
        first = 1000 * result.index + np.arange(result.windows) * WINDOW
        np.testing.assert_allclose(result.scores[:, 0], first / 10000.0, atol=1e-6)
        np.testing.assert_allclose(result.clip_scores, result.scores.mean(axis=0))
        assert result.embeddings.shape == (result.windows, 3)
        total += result.windows
    # Windows of different files share batches; only the last is short.
    assert sum(predictor.batches) == total == 3 + 10 + 1 + 2
    assert all(size == 4 for size in predictor.batches[:-1])
    assert predictor.batches[-1] == total - 4 * (len(predictor.batches) - 1)


def test_hop_and_zero_padding(ramps):
    files, _ = ramps
    results = {r.index: r for r in tag_files(FakePredictor(), files, hop_samples=30,
                                              batch_size=8, workers=1)}
    assert results[0].windows == (350 - 100) // 30 + 1 == 9
    np.testing.assert_allclose(results[0].scores[:, 0], np.arange(9) * 30 / 10000.0,
                               atol=1e-6)
    np.testing.assert_array_equal(results[0].starts, np.arange(9) * 30)
    assert results[2].windows == 1 and results[2].padded  # 60 samples, one padded window
    assert results[2].duration == pytest.approx(0.06)


def test_bad_files_fail_alone(ramps, tmp_path):
    files, _ = ramps
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF....WAVEfmt garbage")
    empty = tmp_path / "empty.flac"
    empty.write_bytes(b"")
    order = [files[0], str(bad), files[1], str(empty), str(tmp_path / "gone.ogg")]
    results = {r.path: r for r in tag_files(FakePredictor(), order, batch_size=3,
                                            workers=2)}
    assert len(results) == 5
    assert results[files[0]].ok and results[files[1]].ok
    for path in order[1:2] + order[3:]:
        assert not results[path].ok and results[path].error, path
        assert results[path].scores is None
    assert results[str(tmp_path / "gone.ogg")].error == "not found"


def test_closing_early_stops_the_decoders(ramps):
    files, _ = ramps
    before = threading.active_count()
    results = tag_files(FakePredictor(), files * 20, batch_size=1, workers=3,
                        queue_batches=1)
    next(results)
    results.close()
    assert threading.active_count() == before


def test_a_file_named_in_bytes_that_are_not_utf8_is_tagged(ramps, tmp_path):
    """A name as a foreign system wrote it (os.fsdecode keeps its bytes as
    surrogates) is decoded like any other, its own sample rate read."""
    files, lengths = ramps
    bad = os.fsdecode(os.fsencode(str(tmp_path)) + b"/bad\xff\xfe.wav")
    os.link(files[0], bad)
    results = {r.path: r for r in tag_files(FakePredictor(), [bad, files[1]], workers=2)}
    assert results[bad].ok and results[bad].file_sample_rate == RATE
    assert results[bad].samples == lengths["a.wav"]
    np.testing.assert_allclose(results[bad].scores[:, 0],
                               np.arange(results[bad].windows) * WINDOW / 10000.0, atol=1e-6)


def test_an_unexpected_error_on_one_file_is_that_files_failure(ramps, monkeypatch):
    from tagger.inference.engine import tagging

    files, _ = ramps
    real = tagging.audio_windows

    def flaky(path, *args, **kwargs):
        if path == files[1]:
            raise KeyError("a decoder bug")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(tagging, "audio_windows", flaky)
    results = {r.path: r for r in tag_files(FakePredictor(), files, workers=2)}
    assert results[files[1]].error == "cannot decode (KeyError: 'a decoder bug')"
    assert sorted(p for p, r in results.items() if r.ok) == sorted([files[0], *files[2:]])


def test_a_failing_list_of_files_ends_the_run_instead_of_cutting_it_short(ramps):
    """The iterable of files raising in a decoder thread (a library walk
    that meets a bug) is raised in the caller's thread: never a run that
    ends early, quietly, as if every file had been seen."""
    files, _ = ramps

    def walk():
        yield from files[:2]
        raise UnicodeEncodeError("utf-8", "x", 0, 1, "surrogates not allowed")

    seen = []
    with pytest.raises(RuntimeError, match="a decoder thread failed taking the next file "
                                           "to tag: UnicodeEncodeError") as raised:
        for result in tag_files(FakePredictor(), walk(), workers=2):
            seen.append(result.path)
    assert isinstance(raised.value.__cause__, UnicodeEncodeError)
    assert set(seen) <= set(files[:2])


def test_a_decoder_failing_outside_a_files_work_names_the_file(ramps):
    from tagger.inference.engine.decoder_pool import DecoderRates

    files, _ = ramps

    class Broken(DecoderRates):
        def decoded(self, windows, seconds):
            if windows == 0:  # after a file's last window, outside its own try
                raise MemoryError("no room")
            super().decoded(windows, seconds)

    with pytest.raises(RuntimeError, match=f"failed on {files[0]}: MemoryError: no room"):
        list(tag_files(FakePredictor(), files[:1], workers=1, rates=Broken()))


def test_find_audio(tmp_path):
    (tmp_path / "x" / "deep").mkdir(parents=True)
    for name in ["b.mp3", "a.FLAC", "x/c.ogg", "x/deep/d.wav", ".hidden.wav", "cover.jpg",
                 "x/.e.wav"]:
        (tmp_path / name).write_bytes(b"")
    os.symlink(tmp_path, tmp_path / "x" / "loop")  # a cycle must not hang
    found = find_audio([tmp_path])
    assert found.files == (str(tmp_path / "a.FLAC"), str(tmp_path / "b.mp3"))
    assert found.subfolders_skipped == 1
    found = find_audio([tmp_path, tmp_path / "b.mp3", tmp_path / "cover.jpg",
                        tmp_path / "nope.wav"], recursive=True)
    assert found.files == tuple(str(tmp_path / n) for n in [
        "a.FLAC", "b.mp3", "x/c.ogg", "x/deep/d.wav", "cover.jpg"])  # named files: always
    assert found.missing == ((str(tmp_path / "nope.wav"), "not found"),)


def test_select_tags():
    names = ["a", "b", "c", "d"]
    scores = np.array([0.2, 0.9, 0.5, 0.5], np.float32)
    assert select_tags(scores, names) == [("b", pytest.approx(0.9)), ("c", 0.5),
                                          ("d", 0.5), ("a", pytest.approx(0.2))]
    assert [t for t, _ in select_tags(scores, names, top_k=2)] == ["b", "c"]
    assert [t for t, _ in select_tags(scores, names, threshold=0.5)] == ["b", "c", "d"]
    assert [t for t, _ in select_tags(scores, names, top_k=1, threshold=0.5)] == ["b"]
    assert select_tags(scores, names, threshold=0.95) == []


def test_taggram_names_are_unique():
    paths = ["music/rock/song.mp3", "music/jazz/song.mp3", "music/rock/song.wav",
             "music/rock__song.mp3", "music/Rock__Song.mp3"]
    names = taggram_names(paths)
    assert names["music/rock/song.mp3"] == "rock__song.mp3"
    assert names["music/jazz/song.mp3"] == "jazz__song.mp3"
    assert names["music/rock/song.wav"] == "rock__song.wav"
    assert names["music/rock__song.mp3"] == "rock__song.mp3-2"
    assert len({n.lower() for n in names.values()}) == len(paths)
    assert taggram_names(["only/one.flac"]) == {"only/one.flac": "one.flac"}


def test_embedding_archive(tmp_path):
    path = tmp_path / "e.npz"
    path.write_bytes(b"old")
    writer = EmbeddingWriter(str(path))
    writer.add("/abs/a.wav", np.ones((3, 4)))
    writer.abort()
    assert path.read_bytes() == b"old" and not list(tmp_path.glob("*.tmp"))
    with EmbeddingWriter(str(path)) as writer:
        writer.add("/abs/a.wav", np.arange(6).reshape(3, 2))
        writer.add("rel/b c.mp3", np.ones((1, 2)))
    data = np.load(path)
    assert sorted(data.files) == ["/abs/a.wav", "/abs/a.wav::windows", "rel/b c.mp3",
                                  "rel/b c.mp3::windows"]
    np.testing.assert_array_equal(data["/abs/a.wav"], [2.0, 3.0])
    assert data["/abs/a.wav::windows"].shape == (3, 2)
    assert data["rel/b c.mp3"].dtype == np.float32


def test_embedding_archive_keys_of_names_ending_like_a_window_entry(tmp_path):
    from tagger.inference.library.embeddings import is_embeddings_file, read_embeddings

    path = tmp_path / "e.npz"
    names = ["a", "a::windows", "a::windows::mean", "b::mean"]
    with EmbeddingWriter(str(path)) as writer:
        for number, name in enumerate(names):
            writer.add(name, np.full((number + 1, 2), number))
    assert len(np.load(path).files) == 2 * len(names)
    assert is_embeddings_file(str(path))
    read = read_embeddings(str(path))
    assert sorted(read) == sorted(names)
    for number, name in enumerate(names):
        mean, windows = read[name]
        np.testing.assert_array_equal(mean, [number, number])
        assert windows.shape == (number + 1, 2)
    earlier = tmp_path / "earlier.npz"  # an earlier version keyed a mean by the path's text
    np.savez(earlier, **{"x::mean": np.ones(2), "x::mean::windows": np.ones((1, 2))})
    assert sorted(read_embeddings(str(earlier))) == ["x::mean"]


def test_truncated_mp3_streams_only_what_decodes(tmp_path):
    """The header of a cut MP3 promises the full length; the stream must hold
    the decoded audio only (not a buffer's uninitialised rest)."""
    from tagger.audio import load_audio, stream_audio

    path = tmp_path / "cut.mp3"
    t = np.arange(10 * 16000) / 16000
    sf.write(str(path), 0.5 * np.sin(2 * np.pi * 440 * t), 16000, format="MP3",
             subtype="MPEG_LAYER_III")
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 5])
    assert sf.info(str(path)).frames == len(t)  # the header still says 10 s
    reference = load_audio(str(path), RATE)
    assert RATE < len(reference) < 3 * RATE  # about 2 of the 10 s
    for _ in range(3):
        streamed = np.concatenate(list(stream_audio(str(path), RATE)))
        np.testing.assert_allclose(streamed, reference, atol=1e-6)
    result = next(tag_files(FakePredictor(), [str(path)], batch_size=4, workers=1))
    assert result.windows == len(reference) // WINDOW and result.samples == len(reference)


def test_undecodable_file_is_reported_and_its_descriptor_closed_once(tmp_path):
    """libsndfile closes a descriptor it fails to open; closing it again
    would report EBADF (or close another thread's file)."""
    from tagger.audio import AudioDecodeError, audio_windows

    bad = tmp_path / "bad.mp3"
    bad.write_text("this is not audio\n" * 20)
    keep = os.open(tmp_path / "bad.mp3", os.O_RDONLY)
    try:
        for _ in range(3):
            with pytest.raises(AudioDecodeError, match="not decodable audio"):
                list(audio_windows(str(bad), 22050, 1000))
        os.fstat(keep)  # still open
    finally:
        os.close(keep)
