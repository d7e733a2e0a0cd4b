"""Debian's soundtracks laid out (tagger/demos/soundtracks.py): a package
whose songs are stems gets one recording per song, the stems mixed as a
player plays them together; packages are found by name."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from tagger.demos import soundtracks
from tagger.errors import UserError

RATE = 8000


def stem(path, values, channels=2):
    samples = np.asarray(values, np.float32)
    sf.write(str(path), np.stack([samples] * channels, axis=1) if channels > 1 else samples,
             RATE, subtype="FLOAT")
    return path


def test_each_song_folder_of_stems_becomes_one_recording_of_their_sum(tmp_path):
    songs = tmp_path / "songs"
    for name, guitar in (("First song", [0.25] * 800), ("Second", [0.5] * 400)):
        (songs / name).mkdir(parents=True)
        stem(songs / name / "song.wav", [0.125] * 800)
        stem(songs / name / "guitar.wav", guitar)  # the second's shorter: silence after
    (songs / "no guitar").mkdir()
    stem(songs / "no guitar" / "song.wav", [0.1] * 800)  # not every stem: no recording
    soundtracks._copy_music(songs, tmp_path / "out", ("song.wav", "guitar.wav"))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["First song.flac",
                                                                    "Second.flac"]
    first, rate = sf.read(str(tmp_path / "out" / "First song.flac"), dtype="float32")
    assert rate == RATE and first.shape == (800, 2)
    np.testing.assert_allclose(first, 0.375, atol=1 / 32768)
    second, _ = sf.read(str(tmp_path / "out" / "Second.flac"), dtype="float32")
    np.testing.assert_allclose(second[:400], 0.625, atol=1 / 32768)
    np.testing.assert_allclose(second[400:], 0.125, atol=1 / 32768)


def test_a_sum_that_would_clip_is_scaled_down_and_a_mono_stem_plays_in_both_channels(
        tmp_path):
    loud = [stem(tmp_path / "a.wav", [0.75, -0.5] * 50),
            stem(tmp_path / "b.wav", [0.75, 0.25] * 50, channels=1)]
    soundtracks.mix_stems(loud, tmp_path / "mix.flac")
    mix, _ = sf.read(str(tmp_path / "mix.flac"), dtype="float32")
    assert mix.shape == (100, 2)
    np.testing.assert_allclose(mix[:2, 0], [1.0, -0.25 / 1.5], atol=1 / 32768)
    np.testing.assert_allclose(mix[:, 0], mix[:, 1])
    sf.write(str(tmp_path / "c.wav"), np.zeros(10, np.float32), 2 * RATE)
    with pytest.raises(ValueError, match="expected stems of one sample rate"):
        soundtracks.mix_stems([loud[0], tmp_path / "c.wav"], tmp_path / "bad.flac")


def test_the_benches_soundtracks_are_found_by_package():
    assert soundtracks.soundtrack_named("fretsonfire-songs-sectoid").stems == (
        "song.ogg", "guitar.ogg")
    assert soundtracks.soundtrack_named("nexuiz-music") in soundtracks.SOUNDTRACKS
    with pytest.raises(UserError, match="expected one of Debian's soundtracks nexuiz-music, "):
        soundtracks.soundtrack_named("quake-music")
