"""tag.py --windows N: a library job scores each track from N windows by
default; the database and the files' tags record N, so a rerun with another
N tags again; a database from before --windows reads as every window; what
cannot apply is refused in one line; a file that cannot seek is said once."""

from __future__ import annotations

import shutil
import sqlite3

import numpy as np
import pytest

from tagger.commands import tag as tag_cli
from tagger.inference.library import results_db
from tagger.inference.window_choice import LIBRARY_WINDOWS, MOST_WINDOWS


def run_tag(capsys, *argv):
    code = tag_cli.main([str(a) for a in argv] + ["--no-progress"])
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


def choices(db):
    con = sqlite3.connect(db)
    try:
        return dict(con.execute("SELECT path, window_choice FROM files"))
    finally:
        con.close()


@pytest.mark.slow
def test_a_rerun_with_other_windows_tags_again_and_an_old_database_reads_as_every_window(
        cnn, music, tmp_path, capsys):
    folder = tmp_path / "lib"
    folder.mkdir()
    for name in ("long.flac", "a.wav"):
        shutil.copy(music / name, folder / name)
    db = tmp_path / "lib.sqlite"
    stored = f"{db}: 2 files tagged and stored, 0 up to date and skipped"
    code, _, err = run_tag(capsys, cnn[0], folder, "--db", db)
    assert code == 0 and err[-1] == stored
    assert set(choices(db).values()) == {LIBRARY_WINDOWS}
    code, _, err = run_tag(capsys, cnn[0], folder, "--db", db, "--windows", LIBRARY_WINDOWS)
    assert err[-1].startswith(f"{db}: 0 files tagged and stored, 2 up to date")
    code, _, err = run_tag(capsys, cnn[0], folder, "--db", db, "--windows", "3")
    assert err[-1] == stored and set(choices(db).values()) == {3}
    code, _, err = run_tag(capsys, cnn[0], folder, "--db", db, "--windows", "all")
    assert err[-1] == stored and set(choices(db).values()) == {None}
    every = {path: scores for path, scores in sqlite3.connect(db).execute(
        "SELECT path, scores FROM files")}

    # the same rows as a version 1 database holds them: no window_choice (nor
    # the window rule, engine and hop that came later)
    old = tmp_path / "old.sqlite"
    shutil.copy(db, old)
    con = sqlite3.connect(old)
    with con:
        for column in ("window_choice", "window_rule", "engine", "hop"):
            con.execute(f"ALTER TABLE files DROP COLUMN {column}")
        con.execute("PRAGMA user_version = 1")
    con.close()
    from tagger.commands import library as library_cli

    assert library_cli.main(["info", "--db", str(old)]) == 0
    assert "  2 files  0 failed  " in capsys.readouterr().out
    code, _, err = run_tag(capsys, cnn[0], folder, "--db", old, "--windows", "0")
    assert err[-1].startswith(f"{old}: 0 files tagged and stored, 2 up to date")
    con = sqlite3.connect(old)
    assert con.execute("PRAGMA user_version").fetchone() == (1,)  # no row written: as it was
    assert {path: scores for path, scores in con.execute("SELECT path, scores FROM files")} \
        == every
    con.close()
    code, _, err = run_tag(capsys, cnn[0], folder, "--db", old)  # the library's N: again
    assert err[-1] == f"{old}: 2 files tagged and stored, 0 up to date and skipped"
    assert set(choices(old).values()) == {LIBRARY_WINDOWS}
    con = sqlite3.connect(old)
    assert con.execute("PRAGMA user_version").fetchone() == (results_db.SCHEMA_VERSION,)
    con.close()


def test_the_files_tags_record_the_windows(cnn, music, tmp_path, capsys):
    from tagger.inference.library import file_tags

    shutil.copy(music / "long.flac", tmp_path / "long.flac")
    code, _, err = run_tag(capsys, cnn[0], tmp_path / "long.flac", "--write-tags",
                           "--windows", "5")
    assert code == 0, err
    kind, audio = file_tags._open(str(tmp_path / "long.flac"))
    label = file_tags.current_fields(kind, audio)["tagger_model"]
    assert label.startswith("samplecnn/cnn sha256:") and label.endswith(" windows:5 rule:2")


@pytest.mark.parametrize("argv, needle", [
    (("--windows", "4", "--taggram", "{tmp}/t"),
     "--taggram draws every window of each file, --windows scores 4 of them"),
    (("--windows", "x"), "argument --windows: expected a number of windows"),
    (("--windows", "2", "--runner", "DirectRunner", "--out", "{tmp}/o.jsonl"),
     "--windows applies without --runner"),
    (("--windows", str(MOST_WINDOWS + 1), "--db", "{tmp}/l.sqlite"),
     f"argument --windows: expected at most {MOST_WINDOWS} windows (what a results database "
     "stores; a track with N windows or fewer is scored from every one), got "
     "'9223372036854775808'"),
])
def test_windows_that_cannot_apply_is_one_line(cnn, music, tmp_path, capsys, argv, needle):
    argv = [a.format(tmp=tmp_path) for a in argv]
    try:
        code, _, err = run_tag(capsys, cnn[0], music / "a.wav", *argv)
    except SystemExit as exit_:  # argparse's own errors
        code, err = exit_.code, capsys.readouterr().err.splitlines()
    assert code == 2 and len(err) == 1 and needle in err[0], err


def test_the_most_windows_a_database_stores_score_every_window(cnn, music, tmp_path,
                                                               capsys):
    """--windows N beyond a track's windows scores every one of them; the
    largest N SQLite stores is stored as the row's N."""
    rows = {}
    for windows in (MOST_WINDOWS, "all"):
        db = tmp_path / f"{windows}.sqlite"
        code, _, err = run_tag(capsys, cnn[0], music / "a.wav", "--db", db, "--windows",
                               windows)
        assert code == 0, err
        con = sqlite3.connect(db)
        rows[windows] = con.execute("SELECT windows, scores, window_choice FROM files").fetchall()
        con.close()
    (windows, scores, choice), = rows[MOST_WINDOWS]
    assert (windows, scores, None) == rows["all"][0] and windows > 1 and choice == MOST_WINDOWS


def test_files_that_cannot_seek_are_decoded_through_and_said_once(cnn, tmp_path, capsys):
    """Raw AAC (ADTS) streams: FFmpeg's times after a seek are estimates."""
    av = pytest.importorskip("av")
    rate = 22050
    t = np.arange(30 * rate) / rate
    for name, freq in (("a.aac", 220.0), ("b.aac", 330.0)):
        with av.open(str(tmp_path / name), "w", format="adts") as out:
            stream = out.add_stream("aac", rate=rate, layout="mono")
            audio = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)[None]
            for i in range(0, audio.shape[1], 1024):
                frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio[:, i:i + 1024]),
                                                   format="fltp", layout="mono")
                frame.sample_rate = rate
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
    code, out, err = run_tag(capsys, cnn[0], tmp_path, "--windows", "2", "--format", "json")
    said = [line for line in err if "cannot be read by seeking" in line]
    assert code == 0 and len(said) == 1, err
    assert "(FFmpeg seeks in its aac stream by estimated times)" in said[0]
    assert "said once" in said[0]
    import json

    assert [r["windows"] for r in json.loads(out)] == [2, 2]
