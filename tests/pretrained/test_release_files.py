"""Real files of Won et al. 2020's release (the eight small best_model.pth
of the shared reference data, in the release's layout) through the pinned
path: a file:// mirror (TAGGER_WEIGHTS_URL), the registry's size and
sha256, the converter, and tags on a music-like signal. A substituted file
is refused and nothing of it stays in the cache. Skipped where the
reference weights are absent."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tagger import pretrained
from tagger.cache import Checksum
from tagger.pretrained.registry import ZOO_CHECKSUMS
from tests.checks import call_main, one_line_error, reference_dir

WEIGHTS = reference_dir() / "sota_weights"
pytestmark = pytest.mark.skipif(
    not (WEIGHTS / "mtat" / "fcn" / "best_model.pth").is_file(),
    reason=f"the release's weights are not at {WEIGHTS} (set TAGGER_REFERENCE_DIR)")


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("TAGGER_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def music_like(path, seconds=30.0, rate=16000, seed=0):
    """Notes with five harmonics and a decay, over noise bursts on every
    beat (120 bpm): the kind of signal a tagger of real music should find
    electronic and rhythmic."""
    import soundfile

    t = np.arange(int(seconds * rate)) / rate
    signal = np.zeros_like(t)
    for i, freq in enumerate([220.0, 277.2, 329.6, 440.0] * int(seconds / 3.6)):
        part = slice(int(i * 0.9 * rate), int((i * 0.9 + 0.8) * rate))
        onset = t[part] - t[part][0]
        for harmonic in range(1, 6):
            signal[part] += np.sin(2 * np.pi * freq * harmonic * t[part]) / harmonic \
                * np.exp(-3 * onset)
    since_beat = np.arange(len(t)) % (rate // 2)
    noise = np.random.default_rng(seed).standard_normal(len(t))
    signal += 0.3 * noise * (since_beat < 800) * np.exp(-since_beat / 200)
    soundfile.write(path, (0.3 * signal / np.abs(signal).max()).astype("float32"), rate)
    return path


@pytest.mark.parametrize("name", ["mtat-musicnn", "mtat-fcn"])
def test_a_release_file_downloads_pinned_converts_and_tags_music(name, home, tmp_path,
                                                                  monkeypatch):
    import tagger
    from tagger.convert import VERSION

    entry = pretrained.get(name)
    pin = ZOO_CHECKSUMS["models/" + entry.file_name]
    assert entry.checksum == pin == Checksum.of(str(WEIGHTS / entry.file_name))
    monkeypatch.setenv("TAGGER_WEIGHTS_URL", f"file://{WEIGHTS}")
    path = pretrained.ensure(name, progress=False, log=lambda line: None)

    original = home / "originals" / entry.file_name
    assert original.read_bytes() == (WEIGHTS / entry.file_name).read_bytes()
    record = json.loads((home / "originals" / (entry.file_name + ".json")).read_text())
    assert (record["bytes"], record["sha256"]) == (pin.size, pin.sha256)
    assert record["converter_version"] == VERSION
    info = json.loads((home / "models" / f"{name}.json").read_text())
    assert info["source_sha256"] == pin.sha256

    names, scores = tagger.clip_scores(str(music_like(tmp_path / "music.wav")), model=path)
    scores = np.asarray(scores)
    assert list(names) == list(entry.tags()) and scores.shape == (50,)
    assert np.all(np.isfinite(scores)) and scores.min() >= 0 and scores.max() <= 1
    assert scores.std() > 0.01 and scores.max() > 0.05  # not all equal, not all off
    top = {names[i] for i in np.argsort(-scores)[:5]}
    assert top & {"techno", "electronic", "beat", "drums", "synth"}, top


@pytest.mark.parametrize("name, served, differs", [
    # jamendo's FCN is 4 bytes longer than mtat's
    ("mtat-fcn", "jamendo/fcn/best_model.pth", "1,902,815 bytes, not 1,902,811"),
    # msd's and jamendo's FCN have the same size: the sha256 tells them apart
    ("msd-fcn", "jamendo/fcn/best_model.pth", "sha256 7bce08a66dbc..., not 6012aa7eecf8..."),
])
def test_a_substituted_release_file_is_refused_and_nothing_stays(name, served, differs, home,
                                                                 tmp_path, monkeypatch,
                                                                 capsys):
    from tagger.commands import pretrained as pretrained_cmd

    entry = pretrained.get(name)
    mirror = tmp_path / "mirror"
    (mirror / entry.file_name).parent.mkdir(parents=True)
    shutil.copy(WEIGHTS / served, mirror / entry.file_name)
    monkeypatch.setenv("TAGGER_WEIGHTS_URL", f"file://{mirror}")
    code, _, err = call_main(pretrained_cmd.main, capsys, "path", name, "--no-progress")
    last = err.strip().splitlines()[-1]
    assert code == 2 and "Traceback" not in err
    assert f"file://{mirror}/{entry.file_name} sent a file that is not the release's" in last
    assert differs in last and "nothing of it stays in the cache" in last
    assert files_under(home / "originals") == [] and not (home / "models").exists()

    # given by hand: refused before anything is copied
    code, _, err = call_main(pretrained_cmd.main, capsys, "download", name, "--weights",
                             WEIGHTS / served)
    one_line_error(code, err, "is not the release's", differs, "nothing was replaced")
    assert files_under(home / "originals") == []

    # put into the cache by hand: refused and removed
    original = home / "originals" / entry.file_name
    shutil.copy(WEIGHTS / served, original)
    code, _, err = call_main(pretrained_cmd.main, capsys, "path", name)
    one_line_error(code, err, f"{original} is not the release's", differs,
                   "removed from the cache")
    assert files_under(home / "originals") == []
