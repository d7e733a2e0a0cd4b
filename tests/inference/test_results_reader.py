"""The one reader of a results database (tagger-library, tagger-similar): a
database in a read-only folder is read, a damaged database or row is one
line naming it, never a traceback."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from tagger.commands import library as library_cli
from tagger.commands import similar as similar_cli
from tagger.commands import tag as tag_cli
from tagger.inference.library import results_db
from tests.checks import HANG_S, one_line_error
from tests.presets import MUSIC_TOP_LEVEL as TOP_LEVEL
from tests.presets import TAGGER_TAGS as TAGS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def tagged(cnn, music, tmp_path_factory):
    """A database of the music folder's top level, with embeddings."""
    db = tmp_path_factory.mktemp("reader") / "library.sqlite"
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        tag_cli.main([cnn[0], str(music), "--db", str(db), "--embeddings", "--no-progress"])
    return db


@pytest.fixture
def copy(tagged, tmp_path):
    db = tmp_path / "copy.sqlite"
    shutil.copy(tagged, db)
    return db


def call(capsys, main, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_cut_scores_row_is_one_line_naming_it_and_a_rerun_retags_it(copy, cnn, music,
                                                                      capsys):
    victim = os.path.abspath(music / "c.ogg")
    con = sqlite3.connect(copy)
    with con:
        con.execute("UPDATE files SET scores = substr(scores, 1, 5) WHERE path = ?", (victim,))
    con.close()
    for main, argv in ((library_cli.main, ("export", "--db", copy)),
                       (similar_cli.main, ("--tags", TAGS[0], "--db", copy))):
        code, _, err = call(capsys, main, *argv)
        one_line_error(code, err, f"{str(copy)!r}: the row of {victim} is damaged (its scores "
                       f"hold 5 bytes, where {len(TAGS)} float32 values take {4 * len(TAGS)})",
                       f"tag.py --db {copy} with the same model tags that file again")
    code = tag_cli.main([cnn[0], str(music), "--db", str(copy), "--no-progress"])
    _, err = capsys.readouterr()
    assert f"{copy}: 1 file tagged and stored, 5 up to date and skipped " \
           "(--rescan redoes them)" in err.splitlines()
    code, out, _ = call(capsys, library_cli.main, "export", "--db", copy)
    assert code == 0 and len(out.splitlines()) == 1 + len(TOP_LEVEL)


@pytest.mark.parametrize("index", ["exact", "faiss"])
def test_a_cut_embedding_is_one_line_for_a_file_query(copy, music, capsys, index):
    if index == "faiss":
        pytest.importorskip("faiss")
    victim = os.path.abspath(music / "d.mp3")
    con = sqlite3.connect(copy)
    with con:
        con.execute("UPDATE files SET embedding = substr(embedding, 1, 12) WHERE path = ?",
                    (victim,))
    con.close()
    code, _, err = call(capsys, similar_cli.main, music / "a.wav", "--db", copy,
                        "--index", index)
    if index == "faiss":  # after the line that says the index is being built
        assert err.splitlines()[0].startswith("building the FAISS index of")
        err = err.split("\n", 1)[1]
    one_line_error(code, err, f"the row of {victim} is damaged (its embedding holds 12 bytes")


def _damage(db, rows=3000):
    """Grows `db` with `rows` rows of its model (so that its files table
    spans many pages), then overwrites a page in the middle with 0xff."""
    con = sqlite3.connect(db)
    fingerprint, = con.execute("SELECT fingerprint FROM models").fetchone()
    with con:
        con.executemany("INSERT INTO files VALUES (?, ?, 1, 1, 1.0, 22050, 1, 0, ?, NULL, 0, "
                        "NULL, NULL, NULL, NULL)",
                        [(f"/library/{i:05d}.mp3", fingerprint,
                          np.full(len(TAGS), 0.5, "<f4").tobytes()) for i in range(rows)])
    con.close()
    pages = os.path.getsize(db) // 4096
    with open(db, "r+b") as f:
        f.seek(4096 * (pages // 2))
        f.write(b"\xff" * 4096)


def test_a_damaged_database_is_one_line_naming_it(copy, tmp_path, capsys):
    _damage(copy)
    out = tmp_path / "tags.csv"
    for main, argv in ((library_cli.main, ("export", "--db", copy, "--out", out)),
                       (library_cli.main, ("export", "--db", copy, "--format", "jsonl")),
                       (similar_cli.main, ("--tags", TAGS[0], "--db", copy))):
        code, _, err = call(capsys, main, *argv)
        one_line_error(code, err, f"{str(copy)!r} is damaged (database disk image is malformed)",
                       "restore it from a backup")
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))


@pytest.mark.slow  # starts the commands as processes
def test_a_database_in_a_read_only_folder_is_read_and_nothing_written_beside_it(tagged,
                                                                               tmp_path):
    if os.geteuid() == 0 and shutil.which("setpriv") is None:
        pytest.skip("running as root, and no setpriv to drop the capability to write anywhere")
    folder = tmp_path / "read-only"
    folder.mkdir()
    shutil.copy(tagged, folder / "library.sqlite")
    folder.chmod(0o555)
    try:
        runs = []
        for module, argv in (("library", ["export", "--format", "jsonl"]),
                             ("similar", ["--tags", TAGS[0], "-k", "3"])):
            command = [sys.executable, "-m", f"tagger.commands.{module}", *argv, "--db",
                       str(folder / "library.sqlite")]
            if os.geteuid() == 0:  # chmod does not stop root: drop its power to override it
                command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                           *command]
            runs.append(subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                                       timeout=HANG_S))
        assert [r.returncode for r in runs] == [0, 0], [r.stderr for r in runs]
        assert len(runs[0].stdout.splitlines()) == len(TOP_LEVEL)
        assert len(runs[1].stdout.splitlines()) == 1 + 3
        assert os.listdir(folder) == ["library.sqlite"]
    finally:
        folder.chmod(0o755)


def test_read_only_opening_writes_nothing(copy):
    con = results_db.open_read_only(str(copy))
    try:
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            con.execute("DELETE FROM files")
    finally:
        con.close()
