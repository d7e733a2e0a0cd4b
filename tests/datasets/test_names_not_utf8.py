"""The builders on audio whose file name is not valid UTF-8 (written on a
system with another encoding, `bad\\xff\\xfe`): the file is read like the
others and its records keep the name's bytes exactly; the summary and
dataset_info.json show such a name with its undecodable bytes as \\xNN
and a literal backslash as \\\\ (`fileio.path_text`), so each path maps
back to its file's bytes (`fileio.path_from_text`).

build_folder.py walks the folder; build_mtt.py reads the name from its
annotations and split lists. (build_msd.py names its audio by track id:
tests/datasets/msd/test_build_msd.py builds in a folder named so.)"""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from tagger.commands import build_folder, build_mtt
from tagger.fileio import path_from_text
from tagger.records.info import load_info
from tagger.records.reader import clip_dataset
from tests.checks import call_main, one_line_error, tone

NAME = b"bad\xff\xfe.wav"  # a copy of a.wav
BROKEN = b"broken\xe9.mp3"  # not audio
RATE = 8000
FLAGS = ["--sample-rate", str(RATE), "--segment-length", str(RATE), "--workers", "1",
         "--no-progress"]
ALL_TRAIN = ["--val-fraction", "0", "--test-fraction", "0"]  # too few files for val and test


def odd(folder, name: bytes) -> str:
    """The path of `name` in `folder`, as Python holds a name of such bytes."""
    return os.fsdecode(os.path.join(os.fsencode(str(folder)), name))


@pytest.fixture(scope="module")
def music(tmp_path_factory):
    """a.wav, c.wav and d.wav, 2 s each; NAME, a copy of a.wav; BROKEN, text."""
    import soundfile

    root = tmp_path_factory.mktemp("music")
    for n, name in enumerate(("a.wav", "c.wav", "d.wav")):
        soundfile.write(str(root / name), tone(2.0, RATE, 1, 300 + 200 * n, seed=n), RATE)
    shutil.copy(root / "a.wav", odd(root, NAME))
    with open(odd(root, BROKEN), "w") as f:
        f.write("not audio\n" * 20)
    return root


def read_records(out) -> dict:
    """{path bytes: (tags, segments)} of every clip of the records in `out`."""
    info = load_info(str(out))
    return {clip["path"]: (tuple(clip["tags"].astype(int)), clip["segments"])
            for split in info.splits
            for clip in clip_dataset(str(out), split, info).as_numpy_iterator()}


def test_build_folder_reads_the_file_and_keeps_its_name(music, tmp_path, capsys):
    from tagger.records.reader import split_audio_files

    out = tmp_path / "records"
    code, printed, err = call_main(build_folder.main, capsys, music, "--out-dir", out, *FLAGS,
                                   *ALL_TRAIN)
    assert code == 0, err
    assert printed.startswith(f"dataset 'folder' in {out}: 0 tags")
    assert "    broken\\xe9.mp3: not decodable audio (Format not recognised)" in \
        printed.splitlines()
    assert [(s["path"], s["reason"]) for s in load_info(str(out)).skipped] == [
        ("broken\\xe9.mp3", "not decodable audio (Format not recognised)")]
    clips = read_records(out)
    assert sorted(clips) == sorted([b"a.wav", b"c.wav", b"d.wav", NAME])
    np.testing.assert_array_equal(clips[NAME][1], clips[b"a.wav"][1])
    assert clips[NAME][1].shape == (2, RATE)
    found = [f for split in ("train", "val", "test")
             for f in split_audio_files(str(out), str(music), split, count=-1)]
    assert sorted(found) == sorted(odd(music, n) for n in (b"a.wav", b"c.wav", b"d.wav", NAME))



def test_build_folder_lists_skipped_and_cut_paths_that_map_back(music, tmp_path, capsys):
    """Beside BROKEN and NAME, files literally named with their escaped
    text: each skipped or cut path of dataset_info.json is its own file's."""
    folder = tmp_path / "twins"
    shutil.copytree(music, folder)
    text_twins = {BROKEN: b"broken\\xe9.mp3", NAME: b"bad\\xff\\xfe.wav"}
    for name, twin in text_twins.items():
        shutil.copy(odd(folder, name), odd(folder, twin))
    out = tmp_path / "records"
    code, _, err = call_main(build_folder.main, capsys, folder, "--out-dir", out,
                             "--max-seconds", "1.5", *FLAGS)
    assert code == 0, err
    info = load_info(str(out))
    skipped = [os.fsencode(path_from_text(s["path"])) for s in info.skipped]
    cut = [os.fsencode(path_from_text(c["path"])) for c in info.cut]
    assert sorted(skipped) == sorted([BROKEN, text_twins[BROKEN]])
    assert sorted(cut) == sorted([b"a.wav", b"c.wav", b"d.wav", NAME, text_twins[NAME]])
    assert all(os.path.exists(os.path.join(os.fsencode(str(folder)), name))
               for name in skipped + cut)


def test_build_folder_labels_name_it_by_its_bytes(music, tmp_path, capsys):
    labels = tmp_path / "tags.csv"
    labels.write_bytes(b"path,tags\n" + NAME + b",rock;loud\nc.wav,jazz\n")
    code, _, err = call_main(build_folder.main, capsys, music, "--out-dir", tmp_path / "tagged",
                             "--labels", labels, *FLAGS, *ALL_TRAIN)  # naming it by its bytes
    assert code == 0, err
    assert load_info(str(tmp_path / "tagged")).tag_names == ("jazz", "loud", "rock")
    assert {path: tags for path, (tags, _) in read_records(tmp_path / "tagged").items()} == {
        NAME: (0, 1, 1), b"c.wav": (1, 0, 0), b"a.wav": (0, 0, 0), b"d.wav": (0, 0, 0)}
    labels.write_bytes(b"path,tags\nc.wav,r\xf6ck\n")  # a tag is text: UTF-8 only
    code, _, err = call_main(build_folder.main, capsys, music, "--out-dir", tmp_path / "no",
                             "--labels", labels, *FLAGS)
    one_line_error(code, err, f"--labels {str(labels)!r} line 2: the tags of 'c.wav' are not "
                              "UTF-8 text")


def mtt_folder(music, root, rows) -> str:
    """An MTT-layout data dir: mp3/ holds `music`'s files (named .mp3), the
    annotations list `rows` of (clip id, guitar, rock, path bytes)."""
    (root / "mp3").mkdir(parents=True)
    for name in os.listdir(music):
        stem = os.fsencode(name).rpartition(b".")[0]
        shutil.copy(os.path.join(music, name), odd(root / "mp3", stem + b".mp3"))
    (root / "annotations_final.csv").write_bytes(
        b'"clip_id"\t"guitar"\t"rock"\t"mp3_path"\n' + b"".join(
            b'"%d"\t"%d"\t"%d"\t"%s"\n' % row for row in rows))
    return str(root)


def test_build_mtt_reads_an_annotated_name_and_keeps_it(music, tmp_path, capsys):
    bad = NAME.replace(b".wav", b".mp3")
    data = mtt_folder(music, tmp_path / "mtt", [
        (1, 1, 0, b"a.mp3"), (2, 0, 1, bad), (3, 1, 1, b"c.mp3"), (4, 1, 0, b"d.mp3"),
        (5, 1, 0, b"dead\xe9.mp3")])  # named, not there: skipped
    out = tmp_path / "records"
    code, printed, err = call_main(build_mtt.main, capsys, "--data-dir", data, "--out-dir", out,
                                   "--top-k", "2", *FLAGS)
    assert code == 0, err
    assert "    dead\\xe9.mp3: file not found" in printed.splitlines()
    info = load_info(str(out))
    assert info.tag_names == ("guitar", "rock")
    assert info.skipped == [{"split": "test", "clip_id": 5, "path": "dead\\xe9.mp3",
                             "reason": "file not found"}]
    clips = read_records(out)
    assert {path: tags for path, (tags, _) in clips.items()} == {
        b"a.mp3": (1, 0), bad: (0, 1), b"c.mp3": (1, 1), b"d.mp3": (1, 0)}
    np.testing.assert_array_equal(clips[bad][1], clips[b"a.mp3"][1])

    lists = tmp_path / "lists"  # split lists naming it by its bytes
    lists.mkdir()
    for name, paths in (("train.txt", [b"a.mp3", bad]), ("valid.txt", [b"c.mp3"]),
                        ("test.txt", [b"d.mp3", b"dead\xe9.mp3"])):
        (lists / name).write_bytes(b"\n".join(paths) + b"\n")
    listed = tmp_path / "listed"
    code, _, err = call_main(build_mtt.main, capsys, "--data-dir", data, "--out-dir", listed,
                             "--top-k", "2", "--split", lists, *FLAGS)
    assert code == 0, err
    shards = sorted(n for n in os.listdir(out) if n.endswith(".tfrecord"))
    assert len(shards) == 3  # train, val, test
    assert [(listed / n).read_bytes() for n in shards] == [(out / n).read_bytes()
                                                           for n in shards]

    csv = tmp_path / "mtt" / "annotations_final.csv"  # elsewhere the file is UTF-8 text
    csv.write_bytes(csv.read_bytes().replace(b'"rock"', b'"r\xf6ck"'))
    code, _, err = call_main(build_mtt.main, capsys, "--data-dir", data, "--out-dir",
                             tmp_path / "no", *FLAGS)
    one_line_error(code, err, f"{str(csv)!r} is not a text file; expected the tab-separated")

