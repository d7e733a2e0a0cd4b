"""The synthetic MSD: real layouts, consistent files, byte-identical per seed."""

from __future__ import annotations

import hashlib
import os
import sqlite3

import numpy as np
import pytest

from tagger import fileio
from tagger.commands.synthetic_msd import main
from tagger.datasets.msd.tags import CALS_TAGS, CLASSIC_TAGS, KNOWN_BROKEN_IDS
from tagger.datasets.pickle2 import load_py2
from tagger.datasets.synthetic_msd import _Catalogue, generate


def _digest(folder):
    h = hashlib.sha256()
    for root, _, files in sorted(os.walk(folder)):
        for name in sorted(files):
            path = os.path.join(root, name)
            h.update(os.path.relpath(path, folder).encode())
            with open(path, "rb") as f:
                h.update(f.read())
    return h.hexdigest()


def test_layout_and_consistency(synthetic_msd):
    data_dir, summary = synthetic_msd
    con = sqlite3.connect(os.path.join(data_dir, "track_metadata.db"))
    songs = con.execute("SELECT track_id, artist_id, track_7digitalid FROM songs").fetchall()
    assert len(songs) == summary.tracks == 60
    assert all(len(t) == 18 and t.startswith("TR") and len(a) == 18 and a.startswith("AR")
               for t, a, _ in songs)
    assert len({a for _, a, _ in songs}) == summary.artists
    previews = {}
    for root, _, files in os.walk(os.path.join(data_dir, "audio")):
        for name in files:
            rel = os.path.relpath(os.path.join(root, name), os.path.join(data_dir, "audio"))
            previews[rel] = os.path.getsize(os.path.join(root, name))
    for tid, _, d in songs:
        kind = summary.defects.get(tid)
        path = f"{str(d)[0]}/{str(d)[1]}/{d}.clip.mp3"
        if kind in ("missing", "no_7digital_id"):
            assert path not in previews
        elif kind in ("empty", "known_broken"):
            assert previews[path] == 0
        else:
            assert previews[path] > 1000
    assert sum(k == "known_broken" for k in summary.defects.values()) == 2
    assert {t for t, k in summary.defects.items() if k == "known_broken"} <= KNOWN_BROKEN_IDS
    tags = sqlite3.connect(os.path.join(data_dir, "lastfm_tags.db"))
    tids = {r[0] for r in tags.execute("SELECT tid FROM tids")}
    assert tids <= {t for t, _, _ in songs}
    vals = [r[0] for r in tags.execute("SELECT val FROM tid_tag")]
    assert min(vals) >= 1 and max(vals) <= 100 and any(v <= 50 for v in vals)


def test_split_files(synthetic_msd):
    data_dir, summary = synthetic_msd
    cals = os.path.join(data_dir, "cals")
    ids = {s: np.load(os.path.join(cals, f"{s}_ids.npy")) for s in
           ("train", "valid", "test", "student")}
    assert all(a.dtype == np.dtype("<U18") and a.ndim == 1 for a in ids.values())
    for s in ("train", "valid", "test"):
        binaries = np.load(os.path.join(cals, f"{s}_binaries.npy"))
        assert binaries.shape == (len(ids[s]), len(CALS_TAGS)) and binaries.any(axis=1).all()
    assert {s: len(a) for s, a in ids.items()} == summary.cals_sizes
    with open(os.path.join(data_dir, "classic", "filtered_list_test.cP"), "rb") as f:
        raw = f.read()
    assert raw[:2] == b"\x80\x02" and b"U\x12TR" in raw  # protocol 2, Python 2 byte strings
    test = load_py2(raw)
    assert test == sorted(test) and len(test) == summary.classic_sizes["test"]
    with open(os.path.join(data_dir, "classic", "msd_id_to_tag_vector.cP"), "rb") as f:
        vectors = load_py2(f.read())
    assert set(test) <= set(vectors) and next(iter(vectors.values())).shape == (50, 1)
    with open(os.path.join(data_dir, "classic", "50tagList.txt")) as f:
        assert tuple(f.read().split("\n")[:50]) == CLASSIC_TAGS


def test_byte_identical_per_seed(tmp_path):
    a = generate(str(tmp_path / "a"), tracks=40, seed=3, metadata_only=True, progress=False)
    generate(str(tmp_path / "b"), tracks=40, seed=3, metadata_only=True, progress=False)
    generate(str(tmp_path / "c"), tracks=40, seed=4, metadata_only=True, progress=False)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")
    assert a.tracks == 40 and not os.path.exists(tmp_path / "a" / "audio")


@pytest.mark.slow
def test_audio_is_byte_identical_for_any_worker_count(tmp_path):
    one = generate(str(tmp_path / "one"), tracks=40, seed=1, seconds=2.0, workers=1,
                   progress=False)
    generate(str(tmp_path / "two"), tracks=40, seed=1, seconds=2.0, workers=2, progress=False)
    assert os.listdir(tmp_path / "one" / "audio")
    assert _digest(tmp_path / "one") == _digest(tmp_path / "two")
    assert one.tracks == 40


@pytest.mark.parametrize("seed", range(20))
def test_every_seed_gives_unique_ids_and_two_known_broken_tracks(seed):
    catalogue = _Catalogue(40, seed, 30.0)
    assert len(set(catalogue.track_ids.tolist())) == 40
    broken = [t for t, kind in catalogue.defects.items() if kind == "known_broken"]
    assert len(broken) == 2 and set(broken) <= KNOWN_BROKEN_IDS


def test_cli_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path / "x"), "--tracks", "5"])
    assert exit_.value.code == 2
    assert "--tracks" in capsys.readouterr().err
    generate(str(tmp_path / "y"), tracks=40, metadata_only=True, progress=False)
    assert main([str(tmp_path / "y"), "--tracks", "40", "--metadata-only", "--no-progress"]) == 2
    assert "already holds a dataset" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main([str(tmp_path / "z"), "--metadata-only", "--workers", "2"])
    assert exit_.value.code == 2
    assert "--workers applies without --metadata-only only" in capsys.readouterr().err


def test_an_unfinished_run_is_finished_by_the_same_run(tmp_path, monkeypatch):
    import tagger.datasets.synthetic_msd as synthetic_msd

    def stopped(*_):
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic_msd, "_write_metadata_db", stopped)  # the last file
    with pytest.raises(KeyboardInterrupt):
        generate(str(tmp_path / "x"), tracks=40, seed=3, metadata_only=True, progress=False)
    monkeypatch.undo()
    assert (tmp_path / "x" / "synthetic.unfinished.json").exists()
    with pytest.raises(ValueError, match="of other settings .tracks 40."):
        generate(str(tmp_path / "x"), tracks=41, seed=3, metadata_only=True, progress=False)
    generate(str(tmp_path / "x"), tracks=40, seed=3, metadata_only=True, progress=False)
    generate(str(tmp_path / "y"), tracks=40, seed=3, metadata_only=True, progress=False)
    assert _digest(tmp_path / "x") == _digest(tmp_path / "y")  # as a run never stopped


@pytest.mark.slow  # a process that has ended, as a killed run's writer
def test_a_run_stopped_among_its_previews_keeps_them(tmp_path, monkeypatch):
    import subprocess

    write, calls = fileio.write_atomic, []
    gone = subprocess.Popen(["true"])
    gone.wait()  # a writer that has ended: its temporary is a killed run's

    def stopped_at_the_sixth(path, data, durable=True):
        calls.extend([path] if "audio" in str(path) else [])  # the previews
        if len(calls) == 6:
            left = fileio.temporary_path(path).replace(f"-{os.getpid()}-", f"-{gone.pid}-")
            with open(left, "wb") as f:  # as a kill leaves it
                f.write(data[:10])
            raise KeyboardInterrupt
        write(path, data, durable)

    monkeypatch.setattr(fileio, "write_atomic", stopped_at_the_sixth)
    out = tmp_path / "x"
    with pytest.raises(KeyboardInterrupt):
        generate(str(out), tracks=40, seed=3, seconds=1.0, workers=1, progress=False)
    monkeypatch.undo()
    kept = {p: p.stat().st_ino for p in (out / "audio").rglob("*.mp3")}
    assert len(kept) == 5 and len(list((out / "audio").rglob(".*.tmp"))) == 1
    generate(str(out), tracks=40, seed=3, seconds=1.0, workers=1, progress=False)
    generate(str(tmp_path / "y"), tracks=40, seed=3, seconds=1.0, workers=1, progress=False)
    assert _digest(out) == _digest(tmp_path / "y")  # the kill's temporary removed too
    assert {p: p.stat().st_ino for p in kept} == kept


@pytest.mark.parametrize("workers", [0, -1])
def test_workers_below_one_are_refused(tmp_path, workers):
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        generate(str(tmp_path / "x"), tracks=40, workers=workers, metadata_only=True,
                 progress=False)
    assert not (tmp_path / "x").exists()
