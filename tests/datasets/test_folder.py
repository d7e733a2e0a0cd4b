"""build_folder.py on a folder of synthetic WAVs (rock/ and jazz/, two
albums each): splits by file and by folder, records read back, resume,
labels from a CSV, Beam, and one-line errors."""

import os

import numpy as np
import pytest

from tagger.commands import build_folder
from tagger.datasets.folder import FolderSettings, plan_folder, split_rows
from tagger.errors import UserError
from tagger.records.info import load_info
from tagger.records.reader import clip_dataset
from tests.checks import call_main, copy_to_gfile, files_digest, one_line_error, tone

RATE = 8000
ALBUMS = ("jazz/blue", "jazz/kind", "rock/ok", "rock/vs")
FLAGS = ["--sample-rate", str(RATE), "--segment-length", str(RATE), "--workers", "1",
         "--no-progress"]


@pytest.fixture(scope="module")
def music(tmp_path_factory):
    """12 WAVs of 3 s (three per album), plus what is not audio: a text
    file, a hidden file and a hidden folder."""
    import soundfile

    root = tmp_path_factory.mktemp("music")
    for a, album in enumerate(ALBUMS):
        (root / album).mkdir(parents=True)
        for t in range(3):
            soundfile.write(str(root / album / f"{t:02d}.wav"),
                            tone(3.0, RATE, 1, 200 + 100 * a + 30 * t, seed=a * 3 + t), RATE)
    (root / "rock" / "notes.txt").write_text("not audio")
    (root / ".hidden.wav").write_bytes(b"")
    (root / ".cache").mkdir()
    (root / ".cache" / "x.wav").write_bytes(b"")
    return root


def files_of(plan, split):
    return [clip.path for clip in plan.splits[split]]


def test_split_by_file_uses_every_audio_file_once(music):
    plan = plan_folder(str(music), progress=False)
    every = sorted(f"{album}/{t:02d}.wav" for album in ALBUMS for t in range(3))
    assert [len(plan.splits[s]) for s in ("train", "val", "test")] == [10, 1, 1]
    assert sorted(sum((files_of(plan, s) for s in plan.splits), [])) == every
    assert plan.tag_names == () and plan.unlabelled == () and set(plan.splits) == {
        "train", "val", "test"}
    for clips in plan.splits.values():  # ids: positions in the sorted listing
        assert all(c.clip_id == every.index(c.path) and c.labels == () for c in clips)
    assert files_of(plan, "train") != sorted(files_of(plan, "train"))  # shuffled
    again = plan_folder(str(music), FolderSettings(seed=0), progress=False)
    assert files_of(again, "train") == files_of(plan, "train")
    other = plan_folder(str(music), FolderSettings(seed=1), progress=False)
    assert files_of(other, "train") != files_of(plan, "train")
    assert plan.settings == {"val_fraction": 0.1, "test_fraction": 0.1, "split_by": "file",
                             "seed": 0, "labels_from": None}


def test_a_gfile_folder_plans_the_same_clips(music):
    copy_to_gfile(music, "ram://folder-source/music")
    remote = plan_folder("ram://folder-source/music", progress=False)
    assert remote.splits == plan_folder(str(music), progress=False).splits


def test_split_by_folder_keeps_each_album_in_one_split(music):
    settings = FolderSettings(val_fraction=0.25, test_fraction=0.25, split_by="folder")
    plan = plan_folder(str(music), settings, progress=False)
    albums = {s: {p.rpartition("/")[0] for p in files_of(plan, s)} for s in plan.splits}
    assert [len(plan.splits[s]) for s in ("train", "val", "test")] == [6, 3, 3]
    assert [len(albums[s]) for s in ("train", "val", "test")] == [2, 1, 1]
    assert set().union(*albums.values()) == set(ALBUMS)
    by_file = plan_folder(str(music), FolderSettings(val_fraction=0.25, test_fraction=0.25),
                          progress=False)
    assert [len(by_file.splits[s]) for s in ("train", "val", "test")] == [6, 3, 3]
    assert any(len({p.rpartition("/")[0] for p in files_of(by_file, s)}) > 1
               for s in ("val", "test"))


def test_a_split_left_empty_is_refused_unless_its_fraction_is_0(music, tmp_path, capsys):
    """Whole folders, or too few files, can leave val without a file:
    refused before anything is decoded, as train.py would refuse the
    records; a fraction of 0 asks for no such split; an empty test split
    is taken (a run's last evaluation leaves it out)."""
    out = tmp_path / "records"
    code, _, err = call_main(build_folder.main, capsys, music, "--out-dir", out,
                             "--split-by", "folder", "--val-fraction", "0.05",
                             "--test-fraction", "0.2", *FLAGS)
    one_line_error(code, err, "the split leaves val empty (files: train 9, val 0, test 3; "
                              "--split-by folder gives each of the 4 folder(s) whole to one "
                              "split); use --split-by file or more folders, raise "
                              "--val-fraction, or give --val-fraction 0 for no val split")
    assert not out.exists()
    for fractions in ((0.25, 0.0), (0.1, 0.1)):
        plan = plan_folder(str(music), FolderSettings(*fractions, split_by="folder"),
                           progress=False)
        assert [len(plan.splits[s]) for s in ("train", "val", "test")] == [9, 3, 0]
    two_albums = [f"{album}/{t:02d}.wav" for album in ("rock", "jazz") for t in range(6)]
    with pytest.raises(UserError, match=r"leaves val empty \(files: train 12, val 0, "
                                        r"test 0; --split-by folder gives each of the 2 "):
        split_rows(two_albums, FolderSettings(split_by="folder"))
    with pytest.raises(UserError) as error:
        split_rows(["a.wav", "b.wav", "c.wav"], FolderSettings(0.15), "labelled files")
    assert str(error.value) == (
        "the split leaves val empty (labelled files: train 3, val 0, test 0; --val-fraction "
        "0.15 of 3 labelled files rounds to none); add files, raise --val-fraction, or give "
        "--val-fraction 0 for no val split")
    rows = split_rows([f"{i}.wav" for i in range(6)], FolderSettings(0.2, 0.05))
    assert [len(rows[s]) for s in ("train", "val", "test")] == [5, 1, 0]  # test: not needed
    with pytest.raises(UserError, match=r"leaves train empty \(files: train 0, val 1, test 1;"):
        split_rows(["a.wav", "b.wav"], FolderSettings(val_fraction=0.45, test_fraction=0.45))
    rows = split_rows(["a.wav", "b.wav", "c.wav"], FolderSettings(0.0, 0.0))
    assert sorted(rows["train"]) == [0, 1, 2] and rows["val"] == rows["test"] == []


def test_cli_writes_records_the_reader_reads(music, tmp_path, capsys):
    out = tmp_path / "records"
    code, printed, err = call_main(build_folder.main, capsys, music, "--out-dir", out, *FLAGS)
    assert code == 0, err
    assert f"dataset 'folder' in {out}: 0 tags" in printed
    info = load_info(str(out))
    assert info.tag_names == () and info.num_tags == 0 and info.skipped == []
    assert {s: v["clips"] for s, v in info.splits.items()} == {
        "train": 10, "val": 1, "test": 1}
    assert info.origin == {"kind": "real", "dataset": "audio folder"}
    assert info.notes["audio_files"] == 12 and info.notes["folders"] == 4
    plan = plan_folder(str(music), progress=False)
    for split in ("train", "val", "test"):
        clips = list(clip_dataset(str(out), split, info).as_numpy_iterator())
        assert [c["path"].decode() for c in clips] == files_of(plan, split)
        for clip in clips:
            assert clip["segments"].shape == (3, RATE) and clip["tags"].shape == (0,)
            assert 0.05 < np.abs(clip["segments"]).max() <= 1.0


def test_an_interrupted_build_resumes_without_redoing_shards(music, tmp_path, capsys):
    out = tmp_path / "records"
    argv = [music, "--out-dir", out, "--num-audios-per-shard", "3", *FLAGS]
    assert call_main(build_folder.main, capsys, *argv)[0] == 0
    before = files_digest(out)
    shards = sorted(n for n in before if n.endswith(".tfrecord"))
    assert len(shards) == 6  # train 4, val 1, test 1
    stamps = {n: os.stat(out / n).st_mtime_ns for n in shards}
    os.remove(out / shards[1])  # as if killed while writing it
    os.remove(out / "dataset_info.json")
    assert call_main(build_folder.main, capsys, *argv)[0] == 0
    assert files_digest(out) == before
    assert {n: os.stat(out / n).st_mtime_ns for n in shards if n != shards[1]} == {
        n: t for n, t in stamps.items() if n != shards[1]}


def test_labels_from_a_csv_and_the_unlisted_files_unlabelled(music, tmp_path, capsys):
    labels = tmp_path / "tags.csv"
    rows = [f"rock/ok/{t:02d}.wav,rock;guitar" for t in range(3)] + [
        f"jazz/blue/{t:02d}.wav,jazz" for t in range(2)] + ["jazz/blue/02.wav,"]
    labels.write_text("path,tags\n" + "\n".join(rows) + "\n")
    plan = plan_folder(str(music), FolderSettings(labels=str(labels)), progress=False)
    assert plan.tag_names == ("guitar", "rock", "jazz")  # by count, ties by name
    assert plan.unlabelled == ("student",) and len(plan.splits["student"]) == 6
    labelled = {c.path: c.labels for s in ("train", "val", "test") for c in plan.splits[s]}
    assert labelled == {**{f"rock/ok/{t:02d}.wav": (1, 1, 0) for t in range(3)},
                        **{f"jazz/blue/{t:02d}.wav": (0, 0, 1) for t in range(2)},
                        "jazz/blue/02.wav": (0, 0, 0)}
    assert "labels" not in plan.settings  # where the CSV lies is not what the data is
    out = tmp_path / "records"
    code, printed, err = call_main(build_folder.main, capsys, music, "--out-dir", out,
                                   "--labels", labels, *FLAGS)
    assert code == 0, err
    assert "student 6 clips 18 segments in 1 shard(s) (unlabelled)" in " ".join(printed.split())
    info = load_info(str(out))
    tags = {c["path"].decode(): tuple(c["tags"].astype(int)) for s in ("train", "val", "test")
            for c in clip_dataset(str(out), s, info).as_numpy_iterator()}
    assert tags == labelled


@pytest.mark.parametrize("encoding, delimiter", [
    ("utf-8", ","),  # Windows line ends, as every csv.writer of the excel dialect writes
    ("utf-8-sig", ","),  # a spreadsheet's "CSV UTF-8": a byte-order mark first
    ("utf-8-sig", ";"),  # European Excel: semicolons, a cell holding one quoted
    ("utf-8", "\t"),  # tab-separated text
    ("utf-16", "\t"),  # Excel's "Unicode Text": UTF-16 with its byte-order mark, tabs
])
def test_labels_as_a_spreadsheet_saves_them(music, tmp_path, encoding, delimiter):
    import csv

    labels = tmp_path / "tags.csv"
    with open(labels, "w", encoding=encoding, newline="") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(["path", "tags"])
        writer.writerows([["rock/ok/00.wav", "rock;guitar"], ["jazz/blue/01.wav", "jazz"],
                          ["rock/vs/02.wav", ""]])
    with open(labels, encoding=encoding, newline="") as f:  # as the writer wrote it
        assert f.read().count("\r\n") == 4
    assert labels.read_bytes().startswith(b"\xef\xbb\xbf") == (encoding == "utf-8-sig")
    plan = plan_folder(str(music), FolderSettings(0.34, 0.34, labels=str(labels)),
                       progress=False)
    labelled = {c.path: c.labels for s in ("train", "val", "test") for c in plan.splits[s]}
    assert plan.tag_names == ("guitar", "jazz", "rock")
    assert labelled == {"rock/ok/00.wav": (1, 0, 1), "jazz/blue/01.wav": (0, 1, 0),
                        "rock/vs/02.wav": (0, 0, 0)}


@pytest.mark.parametrize("text,message", [
    ("path|tags\nrock/ok/00.wav|rock\n", "expected the header path,tags (its cells "
     "separated by commas, semicolons or tabs), got 'path|tags', read as comma-separated"),
    ("file;tags\nrock/ok/00.wav;rock\n", "got 'file;tags', read as semicolon-separated"),
    ("path;tags\nrock/ok/00.wav;rock;guitar\n", "line 2: expected 2 columns (path;tags), "
     "got 3; quote a cell that holds a semicolon"),
    ("path,tags\n", "lists no file"),
    ("path,tags\nrock/ok/09.wav,rock\n", "line 2: path 'rock/ok/09.wav' is not an audio file"),
    ("path,tags\n../x.wav,rock\n", "climbs out of the audio folder"),
    ("path,tags\nrock/ok/00.wav,rock\nrock/ok/00.wav,jazz\n", "line 3: 'rock/ok/00.wav' is "
                                                               "listed twice"),
    ("path,tags\nrock/ok/00.wav,rock,loud\n", "expected 2 columns"),
])
def test_bad_labels_are_one_line(music, tmp_path, capsys, text, message):
    labels = tmp_path / "tags.csv"
    labels.write_text(text)
    out = tmp_path / "records"
    code, _, err = call_main(build_folder.main, capsys, music, "--out-dir", out,
                             "--labels", labels, *FLAGS)
    one_line_error(code, err, message)
    assert not out.exists()


def test_bad_folders_and_flags_are_one_line(music, tmp_path, capsys):
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "notes.txt").write_text("not audio")
    (empty / ".hidden.wav").write_bytes(b"RIFF")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "a.mp3").write_bytes(b"not audio")
    out = tmp_path / "records"
    for argv, message in [
            ([empty], "holds no audio file"),
            ([broken, "--val-fraction", "0", "--test-fraction", "0"],
             "no clip could be decoded (1 skipped, e.g. a.mp3: not decodable"),
            ([broken], "the split leaves val empty (files: train 1, val 0, test 0; "
                       "--val-fraction 0.1 of 1 file rounds to none)"),
            ([tmp_path / "nope"], "does not exist; name a folder of audio files"),
            ([empty / "sub" / "notes.txt"], "is not a folder"),
            ([music, "--val-fraction", "0.5", "--test-fraction", "0.5"],
             "must leave a share for train"),
            ([music, "--test-fraction", "1"], "test_fraction (--test-fraction) must lie in"),
            ([music, "--val-fraction", "-0.1"], "--val-fraction: expected a number in [0, 1]"),
            ([music, "--split-by", "album"], "--split-by: invalid choice: 'album'"),
            ([], "the following arguments are required: FOLDER")]:
        code, _, err = call_main(build_folder.main, capsys, *argv, "--out-dir", out, *FLAGS)
        one_line_error(code, err, message)
        assert not out.exists()
    with pytest.raises(UserError, match="holds no audio file"):
        plan_folder(str(empty))


def test_the_direct_runner_writes_the_local_build(music, tmp_path, capsys):
    pytest.importorskip("apache_beam")
    local, beam = tmp_path / "local", tmp_path / "beam"
    argv = [music, "--split-by", "folder", "--val-fraction", "0.25", "--test-fraction", "0.25",
            "--num-audios-per-shard", "4", "--sample-rate", str(RATE), "--segment-length",
            str(RATE), "--no-progress"]
    assert call_main(build_folder.main, capsys, *argv, "--out-dir", local,
                     "--workers", "1")[0] == 0
    code, _, err = call_main(build_folder.main, capsys, *argv, "--out-dir", beam,
                             "--runner", "direct", "--beam-option", "direct_num_workers=1")
    assert code == 0, err
    assert files_digest(beam) == files_digest(local)
