"""Outputs never destroy inputs: every file a command writes where the user
says is checked by one mechanism (destination.check_destination) before any work."""

from __future__ import annotations

import json
import os
import sqlite3

import pytest

from tagger import destination
from tagger.commands import tag as tag_cli
from tagger.errors import UserError


def run_tag(capsys, *argv):
    code = tag_cli.main([str(a) for a in argv] + ["--no-progress"])
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


def one_line(code, err, needle):
    assert code == 2 and len(err) == 1 and needle in err[0], err


@pytest.fixture
def song(music, tmp_path):
    import shutil

    path = tmp_path / "song.wav"
    shutil.copy(music / "a.wav", path)
    return path


def test_an_input_is_never_an_output(cnn, song, tmp_path, capsys):
    model, _ = cnn
    before = song.read_bytes()
    for flag in ("--out", "--embeddings", "--db"):
        for given in (song, tmp_path / "." / "song.wav"):
            code, _, err = run_tag(capsys, model, song, flag, given, "--overwrite")
            one_line(code, err, "is the input")
    link = tmp_path / "link.wav"
    link.symlink_to(song)
    code, _, err = run_tag(capsys, model, song, "--out", link, "--overwrite")
    one_line(code, err, "is the input")
    code, _, err = run_tag(capsys, model, song, "--out", model, "--overwrite")
    one_line(code, err, "is the input")
    assert song.read_bytes() == before


def test_an_output_the_folder_walk_would_read_is_refused(cnn, music, tmp_path, capsys):
    model, _ = cnn
    code, _, err = run_tag(capsys, model, music, "--out", music / "new.wav")
    one_line(code, err, "inside the input folder")
    assert not (music / "new.wav").exists()
    code, _, err = run_tag(capsys, model, music, "--out", music / "sub" / "new.mp3",
                           "--recursive")
    one_line(code, err, "inside the input folder")


def test_a_file_that_is_not_ours_needs_overwrite(cnn, music, tmp_path, capsys):
    model, _ = cnn
    for flag, name in (("--out", "notes.json"), ("--embeddings", "vectors.npz"),
                       ("--db", "library.sqlite")):
        foreign = tmp_path / name
        foreign.write_text("my own notes\n")
        code, _, err = run_tag(capsys, model, music / "a.wav", flag, foreign)
        one_line(code, err, "--overwrite")
        assert foreign.read_text() == "my own notes\n"
    (tmp_path / "taggrams").mkdir()
    (tmp_path / "taggrams" / "index.csv").write_text("my,own\n")
    code, _, err = run_tag(capsys, model, music / "a.wav", "--taggram", tmp_path / "taggrams")
    one_line(code, err, "--overwrite")


def test_our_own_outputs_are_replaced_and_overwrite_replaces_atomically(cnn, music, tmp_path,
                                                                        capsys):
    model, _ = cnn
    # a suffix that names no format: each report format is written to it in turn
    out, npz, db = tmp_path / "tags.txt", tmp_path / "vectors.npz", tmp_path / "lib.sqlite"
    for path in (out, npz, db):
        path.write_text("someone else's\n")
    code, _, err = run_tag(capsys, model, music / "a.wav", "--format", "json", "--out", out,
                           "--embeddings", npz, "--overwrite")
    assert code == 0 and json.loads(out.read_text())[0]["path"] == str(music / "a.wav")
    assert err == [f"wrote {out}: json report of 1 file"]  # one line naming what was written
    code, _, _ = run_tag(capsys, model, music / "a.wav", "--db", db, "--overwrite")
    assert code == 0
    con = sqlite3.connect(db)
    assert con.execute("SELECT COUNT(*) FROM files").fetchone() == (1,)
    con.close()
    for fmt in ("table", "csv", "json"):  # every report format of ours is replaced
        code, _, _ = run_tag(capsys, model, music / "a.wav", "--format", fmt, "--out", out,
                             "--embeddings", npz, "--db", db, "--rescan")  # npz: every file
        assert code == 0
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("lib.sqlite")) \
        == ["tags.txt", "vectors.npz"]  # no temporary left behind


def test_two_outputs_may_not_share_a_file(cnn, music, tmp_path, capsys):
    model, _ = cnn
    same = tmp_path / "x.out"
    code, _, err = run_tag(capsys, model, music / "a.wav", "--out", same, "--db", same)
    one_line(code, err, "name the same file")


def test_a_folder_that_does_not_exist_says_so(cnn, tmp_path, capsys):
    model, _ = cnn
    code, _, err = run_tag(capsys, model, tmp_path / "Musik")
    one_line(code, err, f"{str(tmp_path / 'Musik')!r} does not exist")


def test_check_destination_rules(tmp_path):
    mine = tmp_path / "mine.txt"
    mine.write_text("ours\n")
    ours = lambda path: open(path).read() == "ours\n"  # noqa: E731
    destination.check_destination(str(mine), "--out", kind="ours", recognise=ours)
    other = tmp_path / "other.txt"
    other.write_text("theirs\n")
    with pytest.raises(UserError, match="is not ours; pass --overwrite"):
        destination.check_destination(str(other), "--out", kind="ours", recognise=ours)
    destination.check_destination(str(other), "--out", kind="ours", recognise=ours, overwrite=True)
    (tmp_path / "empty").write_text("")
    destination.check_destination(str(tmp_path / "empty"), "--out", kind="ours", recognise=ours)
    with pytest.raises(UserError, match="is the input"):
        destination.check_destination(str(other), "--out", kind="ours", overwrite=True,
                                      inputs=[str(tmp_path / ".." / tmp_path.name / "other.txt")])
    deep = tmp_path / "a" / "b.wav"
    walked = [(str(tmp_path), False, lambda name: name.endswith(".wav"))]
    assert destination.input_clash(str(deep), (), walked) is None  # not searched without recursion
    assert destination.input_clash(str(tmp_path / "b.wav"), (), walked) == str(tmp_path)
    assert destination.input_clash(str(tmp_path / "b.json"), (), walked) is None


def test_eval_reports_are_checked_before_evaluating(cnn, tmp_path, capsys):
    from tagger.commands import eval as eval_cli

    model, _ = cnn
    foreign = tmp_path / "results.json"
    foreign.write_text('{"mine": 1}\n')
    code = eval_cli.main([model, "--data-dir", str(tmp_path / "nodata"), "--out-json",
                          str(foreign), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "--overwrite" in err and foreign.read_text() == '{"mine": 1}\n'
    code = eval_cli.main([model, "--data-dir", str(tmp_path), "--per-tag-csv", model,
                          "--overwrite", "--no-progress"])
    assert code == 2 and "is the input" in capsys.readouterr().err


def test_excitation_tables_are_recognised(tmp_path):
    import numpy as np
    import pandas as pd

    from tagger.interpret.excitation_run import is_excitation_table
    from tagger.interpret.excitations import save_table

    table = pd.DataFrame({"clip_id": range(3000), "depth": 0,
                          "ex": [np.full(64, i, np.float32) for i in range(3000)]})  # 800 KB
    save_table(table, str(tmp_path / "t.pkl"))
    assert (tmp_path / "t.pkl").stat().st_size > 2 * 2**16 and is_excitation_table(
        str(tmp_path / "t.pkl"))
    save_table(pd.DataFrame({"scores": [0.5]}), str(tmp_path / "mine.pkl"))  # a user's frame
    assert not is_excitation_table(str(tmp_path / "mine.pkl"))
    (tmp_path / "song.wav").write_bytes(b"RIFF....WAVE")
    assert not is_excitation_table(str(tmp_path / "song.wav"))


def test_export_never_replaces_its_model_or_a_foreign_file(cnn, tmp_path, capsys):
    from tagger.commands import export as export_cli

    model, _ = cnn
    before = os.path.getsize(model)
    code = export_cli.main([model, "--format", "tflite", "--out", model, "--overwrite"])
    assert code == 2 and "is the model being exported" in capsys.readouterr().err
    assert os.path.getsize(model) == before
    foreign = tmp_path / "song.tflite"
    foreign.write_bytes(b"not a model at all")
    code = export_cli.main([model, "--format", "tflite", "--out", str(foreign), "--overwrite"])
    assert code == 2 and "not a TFLite model" in capsys.readouterr().err
    notes = tmp_path / "new.tflite.tags.txt"  # where the tag names of new.tflite would go
    notes.write_text("my notes")
    code = export_cli.main([model, "--format", "tflite", "--out", str(tmp_path / "new.tflite")])
    assert code == 2 and "new.tflite.tags.txt' exists" in capsys.readouterr().err
    assert notes.read_text() == "my notes" and not (tmp_path / "new.tflite").exists()
    folder = tmp_path / "folder"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"x")
    code = export_cli.main([model, "--out", str(folder), "--overwrite"])
    assert code == 2 and "not a SavedModel export.py wrote" in capsys.readouterr().err
