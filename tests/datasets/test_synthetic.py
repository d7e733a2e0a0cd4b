"""The synthetic MagnaTagATune-layout dataset: layout, broken files,
determinism, tag frequencies, audible tag signatures and the CLI."""

import collections
import hashlib
import os
import re

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from tagger.commands import synthetic as synthetic_cli
from tagger.datasets import synthetic
from tagger.datasets.mtt import KNOWN_BROKEN, MTT_TOP50
from tagger.datasets.synthetic import (
    EXTRA_TAGS,
    TAG_NAMES,
    ClipAttributes,
    generate,
    plan,
    render_clip,
)
from tests.checks import call_main

CLIPS = 14
SECONDS = 3.0
SR = synthetic.SAMPLE_RATE
NAME = re.compile(r"^[0-9a-f]/[a-z0-9_]+-[a-z0-9_]+-\d\d-[a-z0-9_]+-\d+-\d+\.mp3$")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic")
    summary = generate(root, clips=CLIPS, seconds=SECONDS, seed=0, progress=False)
    return root, summary


def _hashes(root):
    out = {}
    for base, _, files in os.walk(root):
        for name in files:
            path = os.path.join(base, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = hashlib.sha256(f.read()).hexdigest()
    return out


# ------------------------------------------------------------------- layout

def test_csv_quoting_is_exactly_mtt(dataset):
    root, summary = dataset
    with open(summary.csv_path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    assert lines[-1] == ""  # newline-terminated
    lines = lines[:-1]
    assert len(lines) == CLIPS + 1
    for line in lines:
        fields = line.split("\t")
        assert len(fields) == len(TAG_NAMES) + 2
        assert all(len(x) >= 2 and x[0] == '"' and x[-1] == '"' and '"' not in x[1:-1]
                   for x in fields), line[:80]
    header = [x[1:-1] for x in lines[0].split("\t")]
    assert header == ["clip_id", *TAG_NAMES, "mp3_path"]
    assert lines[1].split("\t")[1] in ('"0"', '"1"')


def test_csv_parses_with_pandas(dataset):
    root, summary = dataset
    df = pd.read_csv(summary.csv_path, sep="\t")
    assert list(df.columns) == ["clip_id", *TAG_NAMES, "mp3_path"]
    assert len(df) == CLIPS == summary.num_clips
    assert df["clip_id"].dtype == np.int64
    tags = df[list(TAG_NAMES)]
    assert all(dt == np.int64 for dt in tags.dtypes)
    assert set(np.unique(tags.values)) <= {0, 1}
    ids = df["clip_id"].values
    assert np.all(np.diff(ids) > 0) and ids.min() >= 2 and ids.max() <= 58908
    assert df["mp3_path"].map(lambda p: bool(NAME.match(p))).all()
    assert tuple(summary.tag_names) == TAG_NAMES


def test_tag_columns():
    assert len(TAG_NAMES) >= 60 and len(set(TAG_NAMES)) == len(TAG_NAMES)
    assert len(MTT_TOP50) == 50 and set(MTT_TOP50) <= set(TAG_NAMES)
    assert len(EXTRA_TAGS) >= 10 and not set(EXTRA_TAGS) & set(MTT_TOP50)
    # synonyms from the merge list, so merging changes the counts
    assert {"drum", "electro", "synthesizer", "heavy metal", "no singer"} <= set(EXTRA_TAGS)


def test_audio_tree(dataset):
    root, summary = dataset
    assert sorted(os.listdir(summary.audio_root)) == list("0123456789abcdef")
    df = pd.read_csv(summary.csv_path, sep="\t")
    on_disk = {os.path.relpath(os.path.join(b, n), summary.audio_root).replace(os.sep, "/")
               for b, _, files in os.walk(summary.audio_root) for n in files}
    assert on_disk == set(df["mp3_path"])


def test_mp3s_decode_at_16k_mono(dataset):
    root, summary = dataset
    df = pd.read_csv(summary.csv_path, sep="\t")
    broken = {b.mp3_path for b in summary.broken}
    good = [p for p in df["mp3_path"] if p not in broken]
    assert len(good) == CLIPS - 6
    for p in good:
        audio, sr = sf.read(os.path.join(summary.audio_root, p), dtype="float32")
        assert sr == SR and audio.ndim == 1
        assert abs(len(audio) - SECONDS * SR) <= 1152  # one MPEG frame
        assert 0.001 < np.sqrt(np.mean(audio ** 2)) and np.max(np.abs(audio)) < 1.0


def test_broken_files(dataset):
    root, summary = dataset
    df = pd.read_csv(summary.csv_path, sep="\t").set_index("clip_id")
    kinds = collections.Counter(b.kind for b in summary.broken)
    assert len(summary.broken) == 6 and kinds["empty"] >= 1
    assert kinds["truncated"] == 1 and kinds["not_audio"] == 1
    by_id = {b.clip_id: b for b in summary.broken}
    for clip_id, path in KNOWN_BROKEN.items():
        assert by_id[clip_id].mp3_path == path
        assert df.loc[clip_id, "mp3_path"] == path
    for b in summary.broken:
        assert df.loc[b.clip_id, list(MTT_TOP50)].sum() >= 1  # skip the audio, not the tags
        path = os.path.join(summary.audio_root, b.mp3_path)
        size = os.path.getsize(path)
        if b.kind == "empty":
            assert size == 0
        if b.kind == "truncated":
            try:
                audio, _ = sf.read(path)
                assert len(audio) < 2.7 * SR
            except sf.LibsndfileError:
                pass
        else:
            with pytest.raises(sf.LibsndfileError):
                sf.read(path)
        if b.kind == "not_audio":
            with open(path, "rb") as f:
                data = f.read()
            assert data and all(32 <= c < 127 or c in b"\n\r\t" for c in data)  # plain text


def test_same_seed_is_byte_identical_other_seed_differs(dataset, tmp_path):
    root, summary = dataset
    again = generate(tmp_path / "again", clips=CLIPS, seconds=SECONDS, seed=0, progress=False)
    assert again.broken == summary.broken
    assert _hashes(tmp_path / "again") == _hashes(root)
    other = generate(tmp_path / "other", clips=CLIPS, seconds=SECONDS, seed=1, progress=False)
    a, b = _hashes(root), _hashes(tmp_path / "other")
    assert a["annotations_final.csv"] != b["annotations_final.csv"]
    assert set(a.values()) != set(b.values())
    assert other.num_clips == CLIPS


def test_existing_dataset_needs_overwrite(dataset, tmp_path):
    root, summary = dataset
    with pytest.raises(ValueError, match="already holds a dataset"):
        generate(root, clips=CLIPS, seconds=SECONDS, progress=False)
    out = tmp_path / "twice"
    generate(out, clips=10, seconds=1.0, seed=3, progress=False)
    stale = out / "mp3" / "0" / "stale.mp3"
    stale.write_bytes(b"")
    generate(out, clips=10, seconds=1.0, seed=3, progress=False, overwrite=True)
    assert not stale.exists()


def test_an_interrupted_run_is_finished_by_the_same_run(dataset, tmp_path, monkeypatch):
    """A run stopped halfway keeps the clips it wrote (each whole); the same
    run again writes the rest, as a run never stopped does; another run
    there is refused, naming the settings that would finish it."""
    import tagger.datasets.synthetic as synthetic

    root, _ = dataset
    write, calls = synthetic._write_clip, []

    def stopped_at_the_sixth(job):
        calls.append(job)
        if len(calls) == 6:
            raise KeyboardInterrupt
        write(job)

    monkeypatch.setattr(synthetic, "_write_clip", stopped_at_the_sixth)
    out = tmp_path / "stopped"
    with pytest.raises(KeyboardInterrupt):
        generate(out, clips=CLIPS, seconds=SECONDS, seed=0, progress=False, workers=1)
    monkeypatch.setattr(synthetic, "_write_clip", write)
    kept = {p: p.stat().st_ino for p in out.rglob("*.mp3")}
    assert len(kept) == 5 and not (out / "annotations_final.csv").exists()
    with pytest.raises(ValueError, match=r"unfinished synthetic dataset of other settings "
                                         r"\(seed 0\); run with those"):
        generate(out, clips=CLIPS, seconds=SECONDS, seed=1, progress=False)
    generate(out, clips=CLIPS, seconds=SECONDS, seed=0, progress=False, workers=1)
    assert _hashes(out) == _hashes(root)  # as a run never stopped
    assert {p: p.stat().st_ino for p in kept} == kept  # not written again
    with pytest.raises(ValueError, match="already holds a dataset .*pass --overwrite"):
        generate(out, clips=CLIPS, seconds=SECONDS, seed=0, progress=False)


@pytest.mark.parametrize("kwargs", [dict(clips=0), dict(clips=9), dict(seconds=0.0),
                                    dict(seconds=float("nan")), dict(seed=-1), dict(clips=2.5),
                                    dict(workers=0), dict(workers=-2)])
def test_bad_arguments(kwargs, tmp_path):
    with pytest.raises(ValueError):
        generate(tmp_path / "x", **{"clips": 20, **kwargs})
    assert not (tmp_path / "x").exists()


# -------------------------------------------------------------------- plan

@pytest.fixture(scope="module")
def plan400():
    return plan(400, 29.1, 0)


def test_top50_by_frequency(plan400):
    counts = collections.Counter(t for r in plan400 for t in r.tags)
    ranked = sorted(TAG_NAMES, key=lambda t: -counts[t])
    assert set(ranked[:50]) == set(MTT_TOP50)
    assert ranked[0] == "guitar" and {"classical", "slow"} <= set(ranked[:3])
    assert "techno" in ranked[:8]
    assert max(counts[t] for t in EXTRA_TAGS) < min(counts[t] for t in MTT_TOP50)
    # roughly the real order: rank correlation with the real top-50 (the
    # bottom 30 tags hold 13-35 clips each at 400, so sampling shuffles them)
    assert _rank_correlation(counts) > 0.7
    assert _rank_correlation(
        collections.Counter(t for r in plan(4000, 29.1, 0) for t in r.tags)) > 0.9


def _rank_correlation(counts):
    rank = {t: i for i, t in enumerate(sorted(TAG_NAMES, key=lambda t: -counts[t]))}
    return np.corrcoef(np.arange(50), [rank[t] for t in MTT_TOP50])[0, 1]


def test_rows_ids_and_splits(plan400):
    ids = [r.clip_id for r in plan400]
    assert ids == sorted(set(ids)) and len(ids) == 400
    assert ids[0] < 1000 and ids[-1] > 55000
    folders = collections.Counter(r.mp3_path[0] for r in plan400)
    assert set(folders) == set("0123456789abcdef")
    train = sum(folders[c] for c in "0123456789ab") / 400
    val, test = folders["c"] / 400, sum(folders[c] for c in "def") / 400
    assert 0.70 < train < 0.80 and 0.03 < val < 0.10 and 0.14 < test < 0.24
    # tracks give runs of consecutive 29 s clips
    assert any(r.mp3_path.endswith("-29-58.mp3") for r in plan400)


def test_some_clips_have_no_top50_tag(plan400):
    none = [r for r in plan400 if not set(r.tags) & set(MTT_TOP50)]
    assert 0.005 * 400 <= len(none) <= 0.08 * 400
    assert all(r.broken is None for r in none)


def test_tags_follow_the_attributes(plan400):
    for r in plan400:
        if r.attributes is None:
            continue
        probs = synthetic.tag_probabilities(r.genre, r.style, r.attributes)
        possible = {t for t, p in probs.items() if p > 0}
        assert set(r.tags) <= possible, (r.genre, r.style, r.tags)
        inst = set(r.attributes.instruments)
        if "drums" in r.tags:
            assert "drum_kit" in inst
        if "piano" in r.tags:
            assert "piano" in inst
        if "female" in r.tags:
            assert r.attributes.voice == "female"
        if {"no vocals", "no vocal", "no voice"} & set(r.tags):
            assert r.attributes.voice is None


def test_plan_is_deterministic():
    assert plan(50, 29.1, 7) == plan(50, 29.1, 7)
    assert plan(50, 29.1, 7) != plan(50, 29.1, 8)


# ---------------------------------------------------------- tag signatures

def _spectrum(x):
    frames = x[: len(x) // 512 * 512].reshape(-1, 512) * np.hanning(512)
    return np.abs(np.fft.rfft(frames, axis=1)) ** 2  # (frames, bins)


def _centroid(x):
    s = _spectrum(x).sum(0)
    f = np.fft.rfftfreq(512, 1 / SR)
    return float((f * s).sum() / s.sum())


def _onset_strength(x):
    """Mean positive change of log band energy between frames, over 2 kHz."""
    s = _spectrum(x)[:, 64:]
    e = np.log(s.sum(1) + 1e-9)
    return float(np.maximum(np.diff(e), 0).mean())


def _onsets_per_second(x, hop=256):
    """Peaks of the spectral flux (16 ms frames) above median + std / 2."""
    frames = x[: len(x) // hop * hop].reshape(-1, hop) * np.hanning(hop)
    logs = np.log(np.abs(np.fft.rfft(frames, axis=1))[:, 1:] ** 2 + 1e-7)
    flux = np.maximum(np.diff(logs, axis=0), 0).mean(1)
    mid = flux[1:-1]
    peaks = (mid > flux[:-2]) & (mid >= flux[2:]) & (mid > np.median(flux) + 0.5 * flux.std())
    return peaks.sum() / (len(x) / SR)


def _median_f0(x):
    frame = int(0.05 * SR)
    f0 = []
    for k in range(0, len(x) - frame, frame):
        w = x[k:k + frame] - x[k:k + frame].mean()
        if np.sqrt(np.mean(w ** 2)) < 0.02:
            continue
        ac = np.correlate(w, w, "full")[frame - 1:]
        lo, hi = SR // 800, SR // 80
        f0.append(SR / (lo + int(np.argmax(ac[lo:hi]))))
    return float(np.median(f0))


def test_drums_have_more_transients_than_piano():
    drums = render_clip(ClipAttributes(instruments=("drum_kit",)), 4.0, SR, rng=0)
    piano = render_clip(ClipAttributes(instruments=("piano",)), 4.0, SR, rng=0)
    assert _onset_strength(drums) > 2 * _onset_strength(piano)
    assert _centroid(drums) > 2 * _centroid(piano)


def test_half_drums_half_piano_clip():
    a = render_clip(ClipAttributes(instruments=("drum_kit",), genre="rock"), 3.0, SR, rng=1)
    b = render_clip(ClipAttributes(instruments=("piano",), genre="classical"), 3.0, SR, rng=2)
    clip = np.concatenate([a, b])
    assert clip.dtype == np.float32 and len(clip) == 6 * SR
    assert _centroid(clip[:3 * SR]) > 2 * _centroid(clip[3 * SR:])


def test_female_voice_is_higher_than_male():
    female = render_clip(ClipAttributes(voice="female", tempo="slow"), 4.0, SR, rng=3)
    male = render_clip(ClipAttributes(voice="male", tempo="slow"), 4.0, SR, rng=3)
    assert _median_f0(female) > 1.4 * _median_f0(male)
    assert 180 < _median_f0(female) < 800 and 80 < _median_f0(male) < 330


def test_fast_has_more_onsets_than_slow():
    for inst in ("piano", "harpsichord"):
        fast = render_clip(ClipAttributes(instruments=(inst,), tempo="fast"), 4.0, SR, rng=4)
        slow = render_clip(ClipAttributes(instruments=(inst,), tempo="slow"), 4.0, SR, rng=4)
        assert _onsets_per_second(fast) > 2.5 * _onsets_per_second(slow)


def test_dynamics_set_the_level():
    rms = {}
    for dyn in ("loud", "normal", "soft", "quiet"):
        x = render_clip(ClipAttributes(instruments=("strings", "piano"), dynamics=dyn), 3.0, SR,
                        rng=5)
        assert np.max(np.abs(x)) <= 0.9  # headroom, no clipping
        rms[dyn] = float(np.sqrt(np.mean(x ** 2)))
    assert rms["loud"] > 1.5 * rms["normal"] > 1.5 * 1.5 * rms["soft"]
    assert rms["soft"] > 1.8 * rms["quiet"] and rms["quiet"] < 0.03


def test_render_clip_is_seeded_and_checked():
    a = ClipAttributes(instruments=("sitar", "tanpura"), mode="raga", genre="indian")
    x = render_clip(a, 2.0, SR, rng=11)
    assert np.array_equal(x, render_clip(a, 2.0, SR, rng=np.random.default_rng(11)))
    assert not np.array_equal(x, render_clip(a, 2.0, SR, rng=12))
    assert np.all(render_clip(ClipAttributes(), 1.0, SR, rng=0) == 0)
    with pytest.raises(ValueError, match="unknown instrument 'banjo'"):
        ClipAttributes(instruments=("banjo",))
    with pytest.raises(ValueError, match="tempo"):
        ClipAttributes(tempo="presto")


def test_every_planned_attribute_renders():
    seen = {}
    for r in plan(400, 29.1, 1):
        if r.attributes is not None:
            seen.setdefault((r.genre, r.style), r.attributes)
    assert len(seen) >= 20
    for i, a in enumerate(seen.values()):
        x = render_clip(a, 1.0, SR, rng=i)
        assert x.shape == (SR,) and np.all(np.isfinite(x)) and np.max(np.abs(x)) <= 0.9


# --------------------------------------------------------------------- CLI

def _cli(capsys, *args):
    """The synthetic command run in-process (its run as `python -m` is
    tests/test_cli_conventions.py's): (exit code, stdout, stderr)."""
    return call_main(synthetic_cli.main, capsys, *args)


@pytest.mark.slow
def test_cli_writes_and_prints_one_line(tmp_path, capsys):
    code, stdout, stderr = _cli(capsys, tmp_path / "d", "--clips", 10, "--seconds", 1,
                                "--seed", 2, "--no-progress")
    assert code == 0, stderr
    out = stdout.strip().splitlines()
    assert len(out) == 1 and "wrote 10 clips" in out[0] and "35644" in out[0]
    assert len(pd.read_csv(tmp_path / "d" / "annotations_final.csv", sep="\t")) == 10


@pytest.mark.parametrize("case", ["clips0", "file", "notint", "seconds", "existing"])
def test_cli_bad_input_is_one_line(case, tmp_path, capsys):
    target = tmp_path / "out"
    args = {"clips0": [target, "--clips", 0],
            "file": [tmp_path / "f.txt", "--clips", 10],
            "notint": [target, "--clips", "many"],
            "seconds": [target, "--seconds", -3],
            "existing": [tmp_path / "ds", "--clips", 10]}[case]
    (tmp_path / "f.txt").write_text("not a directory")
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "annotations_final.csv").write_text("")
    code, stdout, stderr = _cli(capsys, *args)
    assert code != 0
    lines = [x for x in stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "error:" in lines[0], stderr
    assert "Traceback" not in stderr and stdout == ""


@pytest.mark.parametrize("argv, fragment", [
    (["--workers", "0"], "argument --workers: expected a number in [1, 256], got '0'"),
    (["--clips", "5"], "argument --clips: expected a number in [10, 25000], got '5'"),
    (["--seconds", "nan"], "argument --seconds: expected a number in [1.0, 600.0], got 'nan'"),
    (["--seconds", "601"], "argument --seconds: expected a number in [1.0, 600.0]"),
    (["--seed", "-1"], "argument --seed: expected a number >= 0, got '-1'"),
])
def test_cli_numbers_are_checked_up_front(argv, fragment, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        synthetic_cli.main([str(tmp_path / "out"), *argv, "--no-progress"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and len(err.strip().splitlines()) == 1 and fragment in err, err
    assert not (tmp_path / "out").exists()
