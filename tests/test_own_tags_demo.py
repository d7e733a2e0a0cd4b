"""demo.py --own-tags on a folder of its own: two folders of tones are two
tags, a few files of each labelled; a tiny untrained pons_musicnn is the
body, and the same family learns from scratch on the same split; both are
measured on the other files; a rerun reuses every step; flags of the
other demos are refused in one line."""

import contextlib
import csv
import io
import json
import pathlib

import numpy as np
import pytest
import soundfile

from tagger.commands import demo
from tagger.models import family
from tests.checks import records_info, saved_model

FILES = 8  # a folder


@pytest.fixture(scope="module")
def music(tmp_path_factory):
    """low/ and high/: FILES tones of 3.2 s at 16 kHz each, and a file of no folder."""
    root = tmp_path_factory.mktemp("music")
    rng = np.random.default_rng(0)
    t = np.arange(int(3.2 * 16000)) / 16000
    for name, hz in (("low", 220.0), ("high", 1760.0)):
        (root / name).mkdir()
        for i in range(FILES):
            audio = 0.3 * np.sin(2 * np.pi * hz * t) + 0.05 * rng.standard_normal(len(t))
            soundfile.write(str(root / name / f"{i:02d}.wav"), audio.astype(np.float32), 16000)
    soundfile.write(str(root / "loose.wav"), np.zeros(len(t), np.float32), 16000)
    return root


def run_demo(argv):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = demo.main([str(a) for a in argv])
    assert code == 0, out.getvalue()
    return out.getvalue().splitlines()


@pytest.mark.slow
def test_own_tags_demo_on_a_folder(music, tmp_path):
    body = saved_model("pons_musicnn", family("pons_musicnn").tiny,
                       records_info(("a", "b", "c"), 16000, 48128), tmp_path / "body")
    argv = ["--own-tags", "--music", music, "--from", body, "--per-tag", "4", "--epochs", "1",
            "--work-dir", tmp_path / "work", "--workers", "1", "--no-progress"]
    lines = run_demo(argv)
    text = "\n".join(lines)
    work = tmp_path / "work" / "own_tags"
    with open(work / "labels.csv") as f:
        labels = list(csv.DictReader(f))
    assert sorted(row["tags"] for row in labels) == ["high"] * 4 + ["low"] * 4
    info = json.loads((work / "records" / "dataset_info.json").read_text())
    assert (info["tag_names"], info["sample_rate"], info["segment_length"]) == (
        ["high", "low"], 16000, 48128)
    assert info["splits"]["student"]["clips"] == 2 * FILES - 8 + 1  # and loose.wav
    heldout = json.loads((work / "heldout.json").read_text())
    ours, scratch = f"from {body}", "from scratch (pons_musicnn)"
    assert list(heldout["models"]) == [ours, scratch]
    for who in (ours, scratch):
        held = heldout["models"][who]
        assert held["files"] == 8  # loose.wav belongs to no tag's folder
        metrics = json.loads((work / "runs" / ("from-body" if who == ours else "pons_musicnn")
                              / "metrics.json").read_text())
        row = next(line for line in lines if line.startswith(who))
        assert f"{held['roc_auc']:14.4f} {held['pr_auc']:7.4f}" in row
        assert f"{metrics['epochs']:6d}" in row
    assert "held-out files (8)" in text
    assert f"labels: {work / 'labels.csv'}, high 4 of 8 files, low 4 of 8 files" in text
    tagged = next(line for line in lines if line.startswith("python tag.py "))
    assert str(work / "runs" / "from-body" / "model.keras") in tagged
    assert lines[-1].startswith("demo finished in ")
    again = "\n".join(run_demo(argv))
    assert again.count("(already finished)") == 2 and "(already measured)" in again
    assert next(line for line in again.splitlines() if line.startswith(ours)) == next(
        line for line in lines if line.startswith(ours))
    saved_model("pons_musicnn", family("pons_musicnn").tiny,  # another body, same path
                records_info(("a", "b", "d"), 16000, 48128), tmp_path / "body")
    other = run_demo(argv)
    assert sum("(already finished)" in line for line in other) == 1  # from scratch: the same
    retrained = next(line for line in other if str(work / "runs" / "from-body") in line)
    assert retrained.startswith("training: ") and retrained.endswith(" is trained anew"), other


@pytest.mark.parametrize("argv, message", [
    (["--per-tag", "3"], "--per-tag applies with --own-tags only; leave it out or add "
                         "--own-tags"),
    (["--from", "MTT_vgg"], "--from applies with --own-tags only"),
    (["--music", "x"], "--music applies with --distil and --own-tags only; leave it out or "
                       "add one of them"),
    (["--own-tags", "--model", "fcn", "--clips", "20"],
     "--model, --clips apply without --own-tags only (it learns folder tags on a trained "
     "model's body and its architecture from scratch); leave them out"),
    (["--own-tags", "--distil"], "--distil applies without --own-tags only"),
    (["--own-tags", "--teacher", "x"], "--teacher applies with --distil only"),
])
def test_flags_of_the_other_demos_are_refused(capsys, argv, message):
    assert demo.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


def test_a_folder_of_one_tag_is_refused(tmp_path, capsys):
    body = saved_model("pons_musicnn", family("pons_musicnn").tiny,
                       records_info(("a",), 16000, 48128), tmp_path / "body")
    music = pathlib.Path(tmp_path / "music" / "only")
    music.mkdir(parents=True)
    for i in range(4):
        soundfile.write(str(music / f"{i}.wav"), np.zeros(16000, np.float32), 16000)
    code = demo.main(["--own-tags", "--music", str(music.parent), "--from", str(body),
                      "--work-dir", str(tmp_path / "work"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.endswith(
        f"--music {str(music.parent)!r} needs two or more folders of 4 or more audio files "
        "each: each folder is a tag")


def test_the_labels_step_writes_the_labels_csv_build_folder_reads(tmp_path):
    """The demo's labels.csv is the one labels CSV (datasets/labels_csv.py):
    files whose names are not UTF-8 or hold a backslash are read back as
    theirs; a folder whose name is not UTF-8 is a tag as `path_text` shows
    it (a tag is UTF-8 text). The files are listed, never read."""
    import os

    from tagger.datasets.folder import audio_files
    from tagger.datasets.labels_csv import read_labels
    from tagger.demos.own_tags import OwnTagsDemoConfig, labels_step

    music = os.fsencode(tmp_path / "music")
    names = (b"1\xff.wav", b"2\\x.wav", b"3.wav", b"4.wav", b"5.wav", b"6.wav")
    for folder in (b"caf\xe9", b"rock"):
        os.makedirs(os.path.join(music, folder))
        for name in names:
            with open(os.path.join(music, folder, name), "wb"):
                pass
    config = OwnTagsDemoConfig(work_dir=str(tmp_path / "work"), per_tag=4)
    lines = list(labels_step(config, os.fsdecode(music)))
    assert lines[-1].endswith(" 3 of 6 files, rock 3 of 6 files; the other files are held out")
    read = read_labels(str(tmp_path / "work" / "labels.csv"), audio_files(os.fsdecode(music)))
    assert len(read) == 6
    for path, tags in read.items():
        folder, name = os.fsencode(path).split(b"/")
        assert name in names and tags == {"caf\\xe9" if folder == b"caf\xe9" else "rock"}


def test_a_folder_whose_name_cannot_be_a_tag_is_left_out_with_a_line(tmp_path):
    """A ';' separates tags in the labels CSV, and its tags lose spaces at
    their ends: such folders are no tag, each named in one line."""
    from tagger.demos.own_tags import OwnTagsDemoConfig, labels_step

    music = tmp_path / "music"
    for folder in ("Rock; Pop", " jazz", "low", "high"):
        (music / folder).mkdir(parents=True)
        for i in range(6):
            (music / folder / f"{i}.wav").touch()
    config = OwnTagsDemoConfig(work_dir=str(tmp_path / "work"), per_tag=4)
    lines = list(labels_step(config, str(music)))
    assert lines[:2] == [
        "folder ' jazz' left out: its name has spaces at its ends, which a labels CSV drops "
        "from a tag; rename it to make it a tag",
        "folder 'Rock; Pop' left out: its name holds a ';', which separates tags in a labels "
        "CSV; rename it to make it a tag"]
    with open(tmp_path / "work" / "labels.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(row["tags"] for row in rows) == ["high"] * 3 + ["low"] * 3
    assert all(row["path"].split("/")[0] == row["tags"] for row in rows)


@pytest.mark.parametrize("files, per_tag, advice", [
    ((4, 4), 10, "give more folders, or folders of more files"),
    ((8, 8), 1, "give --per-tag 3 or more files per tag, or more folders, or folders of "
                "more files"),
    ((4, 20), 1, "give --per-tag 4 or more files per tag, or more folders, or folders of "
                 "more files"),
    ((4, 6), 10, "give more folders, or folders of more files"),
])
def test_labelled_files_too_few_to_validate_are_refused_in_the_demos_terms(
        tmp_path, files, per_tag, advice):
    """Five labelled files or fewer: the build's tenth for validation rounds
    to none (two folders of 4 files, the fewest a tag takes, label 2 each).
    The demo says so with its own flags (the builder's message names
    --val-fraction, which the demo lacks), and the --per-tag that would
    do where one would, before labels.csv is written."""
    from tagger.demos.own_tags import OwnTagsDemoConfig, labels_step
    from tagger.errors import UserError

    music = tmp_path / "music"
    for folder, count in zip(("high", "low"), files):
        (music / folder).mkdir(parents=True)
        for i in range(count):
            (music / folder / f"{i}.wav").touch()
    config = OwnTagsDemoConfig(work_dir=str(tmp_path / "work"), per_tag=per_tag)
    high, low = (min(per_tag, count // 2) for count in files)
    with pytest.raises(UserError) as error:
        list(labels_step(config, str(music)))
    assert str(error.value) == (
        f"the {high + low} labelled files (high {high}, low {low}; at most half of each "
        "folder's files) are too few for the build to keep a tenth of them for validation; "
        f"{advice}")
    assert not (tmp_path / "work" / "labels.csv").exists()


def test_the_demo_learns_on_the_musicnn_package_by_default():
    """Its default body is train.py's recommended set: the musicnn package's
    four taggers, a head on each, in from-musicnn-package."""
    from tagger.demos.own_tags import OwnTagsDemoConfig, body_names, from_config
    from tagger.training.run import default_run_name

    config = OwnTagsDemoConfig()
    assert body_names(config) == ("MSD_musicnn", "MTT_musicnn", "MSD_vgg", "MTT_vgg")
    train = from_config(config, "records").pretrained
    assert (train.from_model, train.also_from, train.combine_bodies) == (
        "MSD_musicnn", ("MTT_musicnn", "MSD_vgg", "MTT_vgg"), "average")
    assert default_run_name(from_config(config, "records")) == "from-musicnn-package"
    single = OwnTagsDemoConfig(from_model="MTT_musicnn")
    assert from_config(single, "records").pretrained.also_from == ()
