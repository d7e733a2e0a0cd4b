"""tagger-similar: exact "more like this" over a results database."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sqlite3

import numpy as np
import pytest

from tagger.commands import similar as similar_cli
from tagger.commands import tag as tag_cli
from tagger.inference.library import results_db, similar
from tests.presets import MUSIC_TOP_LEVEL as TOP_LEVEL
from tests.presets import TAGGER_TAGS as TAGS


@pytest.fixture(scope="module")
def library(cnn, music, tmp_path_factory):
    """The music folder (top level) tagged with embeddings into a database."""
    db = tmp_path_factory.mktemp("similar") / "library.sqlite"
    with contextlib.redirect_stderr(io.StringIO()):
        tag_cli.main([cnn[0], str(music), "--db", str(db), "--embeddings", "--no-progress"])
    return db


def stored(db, column):
    con = sqlite3.connect(db)
    rows = con.execute(f"SELECT path, {column} FROM files ORDER BY path").fetchall()
    con.close()
    return {path: np.frombuffer(blob, "<f4") for path, blob in rows}


def run(capsys, *argv):
    try:
        code = similar_cli.main([str(a) for a in argv])
    except SystemExit as exit:  # argparse's usage errors
        code = exit.code
    out, err = capsys.readouterr()
    return code, out, err


def test_a_file_in_the_library_ranks_the_rest_by_cosine(library, music, capsys):
    vectors = stored(library, "embedding")
    query = os.path.abspath(music / "a.wav")
    q = vectors[query] / np.linalg.norm(vectors[query])
    expected = sorted(((float(v @ q / np.linalg.norm(v)), p) for p, v in vectors.items()
                       if p != query), reverse=True)[:3]
    got = similar.by_file(str(library), str(music / "a.wav"), k=3)
    assert [p for p, _ in got] == [p for _, p in expected]
    np.testing.assert_allclose([s for _, s in got], [s for s, _ in expected], atol=1e-5)
    code, out, _ = run(capsys, music / "a.wav", "--db", library, "-k", "2")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3 and lines[1].endswith(expected[0][1])


def test_a_file_not_in_the_library_is_tagged_on_the_fly(library, music, tmp_path, capsys):
    copy = tmp_path / "copy.wav"
    shutil.copy(music / "a.wav", copy)
    code, out, err = run(capsys, copy, "--db", library, "-k", "1")
    assert code == 0 and "is not in the database" in err
    path, score = out.splitlines()[1].split()[2], float(out.splitlines()[1].split()[1])
    assert path == os.path.abspath(music / "a.wav") and score > 0.9999


def test_a_query_not_in_the_library_is_scored_from_its_windows_as_the_rows_are(
        library, music, tmp_path, capsys):
    """The library's rows are means over LIBRARY_WINDOWS windows (tag.py
    --db's default): a query tagged on the fly is scored from as many, not
    every one."""
    from tagger.inference.library.results_reader import ResultsReader
    from tagger.inference.window_choice import LIBRARY_WINDOWS

    copy = tmp_path / "copy.flac"
    shutil.copy(music / "long.flac", copy)  # 22 windows
    original = os.path.abspath(music / "long.flac")
    with ResultsReader(str(library)) as reader:
        model = reader.choose_model()
        assert reader.window_choice(model) == LIBRARY_WINDOWS
    every = similar.embed(model, str(copy))
    stored_vector = stored(library, "embedding")[original]
    assert every @ stored_vector / np.linalg.norm(every) / np.linalg.norm(stored_vector) < 0.9999
    code, out, err = run(capsys, copy, "--db", library, "-k", "1")
    assert code == 0 and err.strip().endswith(f"from {LIBRARY_WINDOWS} windows, as the "
                                              "library's files")
    _, score, path = out.splitlines()[1].split()
    assert path == original and float(score) > 0.99999


def test_a_query_not_in_the_library_is_scored_on_the_libraries_hop(cnn, music, tmp_path,
                                                                  capsys):
    """A library tagged with --hop: the query's windows are on that grid
    too, so a copy of a file scores as its row does."""
    db = tmp_path / "hop.sqlite"
    with contextlib.redirect_stderr(io.StringIO()):
        tag_cli.main([cnn[0], str(music / "long.flac"), str(music / "a.wav"), "--db", str(db),
                      "--embeddings", "--hop", "0.5", "--no-progress"])
    (hop,), = sqlite3.connect(db).execute("SELECT DISTINCT hop FROM files").fetchall()
    copy = tmp_path / "copy.flac"
    shutil.copy(music / "long.flac", copy)
    code, out, err = run(capsys, copy, "--db", db, "-k", "1")
    assert code == 0 and err.strip().endswith(f"windows {hop} samples apart"), err
    _, score, path = out.splitlines()[1].split()
    assert path == os.path.abspath(music / "long.flac") and float(score) > 0.99999


def test_a_query_not_in_the_library_is_embedded_by_the_engine_of_its_embeddings(
        library, music, tmp_path, monkeypatch):
    """The engine the rows record (most of them), or keras where a database
    written before it was recorded says nothing, said in the line; one the
    tagger cannot run for embeddings is one line. (Each engine asked for is
    run as keras here: what is checked is which one is asked for.)"""
    from tagger.errors import UserError
    from tagger.inference.engine import registry
    from tagger.inference.window_choice import LIBRARY_WINDOWS

    with contextlib.closing(sqlite3.connect(library)) as con:
        model = dict(zip(("path", "fingerprint"), con.execute(
            "SELECT path, fingerprint FROM models").fetchone()))
    asked = []

    def recorded(name, *args, **kwargs):
        asked.append(name)
        return make_predictor("keras", *args, **kwargs)

    make_predictor = registry.make_predictor
    monkeypatch.setattr(registry, "make_predictor", recorded)
    db = tmp_path / "bf16.sqlite"
    shutil.copy(library, db)
    with contextlib.closing(sqlite3.connect(db)) as con, con:
        con.execute("UPDATE files SET engine = 'keras-bf16' WHERE rowid % 3 != 0")
    copy = tmp_path / "copy.wav"
    shutil.copy(music / "a.wav", copy)
    lines = []
    found = similar.by_file(str(db), str(copy), k=1, log=lines.append)
    assert asked == ["keras-bf16"] and found[0][0] == os.path.abspath(music / "a.wav")
    assert lines == [f"{copy} is not in the database (or changed): tagging it with "
                     f"{model['path']} (engine keras-bf16) from {LIBRARY_WINDOWS} windows, "
                     "as the library's files"]

    with contextlib.closing(sqlite3.connect(db)) as con, con:  # as version 2 wrote it
        for column in ("window_rule", "engine", "hop"):
            con.execute(f"ALTER TABLE files DROP COLUMN {column}")
        con.execute("PRAGMA user_version = 2")
    lines.clear()
    similar.by_file(str(db), str(copy), k=1, log=lines.append)
    assert asked[1:] == [similar.ASSUMED_ENGINE] == ["keras"]
    assert "(engine keras, assumed: the database does not record the engine of its " \
           "embeddings) from" in lines[0]

    for engine in ("tflite-int8", "nonesuch"):
        with pytest.raises(UserError, match=f"came from engine '{engine}', which this tagger "
                                            "cannot run for embeddings"):
            similar.embed(model, str(copy), engine=engine)


def test_a_tag_query_ranks_by_the_mean_of_those_scores(library, capsys):
    scores = stored(library, "scores")
    columns = [TAGS.index("guitar"), TAGS.index("rock")]
    expected = sorted(scores, key=lambda p: -scores[p][columns].mean())
    got = similar.by_tags(str(library), ["guitar", "rock"], k=len(TOP_LEVEL))
    assert [p for p, _ in got] == expected
    code, _, err = run(capsys, "--tags", "guitar,banjo", "--db", library)
    assert code == 2 and "unknown tag(s) ['banjo']" in err and len(err.splitlines()) == 1
    code, _, err = run(capsys, "--db", library)
    assert code == 2 and "QUERY file or --tags" in err
    code, _, err = run(capsys, "--tags", "guitar", "--db", library, "--index", "exact")
    assert code == 2 and "--index applies to a QUERY file only" in err
    assert len(err.splitlines()) == 1


def test_files_that_could_not_be_tagged_are_never_listed(library, music, capsys):
    """The library's broken.mp3 has a failure row; no search meets it."""
    con = sqlite3.connect(library)
    failed = [path for path, in con.execute("SELECT path FROM failures")]
    con.close()
    assert failed == [os.path.abspath(music / "broken.mp3")]
    every = len(TOP_LEVEL) + 5
    by_tags = similar.by_tags(str(library), ["guitar"], k=every)
    by_file = similar.by_file(str(library), str(music / "a.wav"), k=every, index="exact")
    assert sorted(p for p, _ in by_tags) == sorted(stored(library, "scores"))
    assert len(by_file) == len(TOP_LEVEL) - 1 and failed[0] not in dict(by_file)
    code, out, err = run(capsys, music / "broken.mp3", "--db", library)  # as a query
    assert code == 2 and "broken.mp3': not decodable audio" in err and len(err.splitlines()) == 2


def test_no_embeddings_is_one_line(cnn, music, tmp_path, capsys):
    db = tmp_path / "plain.sqlite"
    with contextlib.redirect_stderr(io.StringIO()):
        tag_cli.main([cnn[0], str(music / "a.wav"), "--db", str(db), "--no-progress"])
    code, _, err = run(capsys, music / "a.wav", "--db", db)
    assert code == 2 and "--embeddings" in err and len(err.splitlines()) == 1
    assert results_db.is_results_db(str(db))


def test_the_faiss_index_agrees_with_the_exact_search_and_follows_the_db(library, music,
                                                                          tmp_path, capsys):
    pytest.importorskip("faiss")
    db = tmp_path / "copy.sqlite"
    shutil.copy(library, db)
    exact = similar.by_file(str(db), str(music / "a.wav"), k=4, index="exact")
    lines = []
    approx = similar.by_file(str(db), str(music / "a.wav"), k=4, index="faiss",
                             log=lines.append)
    assert [p for p, _ in approx] == [p for p, _ in exact] and len(lines) == 1
    np.testing.assert_allclose([s for _, s in approx], [s for _, s in exact], atol=1e-5)
    similar.by_file(str(db), str(music / "a.wav"), k=4, index="faiss", log=lines.append)
    assert len(lines) == 1  # the index kept beside the database is reused
    con = sqlite3.connect(db)
    with con:
        con.execute("DELETE FROM files WHERE path = ?", (exact[0][0],))
    con.close()
    again = similar.by_file(str(db), str(music / "a.wav"), k=4, index="faiss",
                            log=lines.append)
    assert len(lines) == 2 and exact[0][0] not in [p for p, _ in again]  # rebuilt


def test_faiss_missing_is_one_line(library, music, capsys, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "faiss", None)
    code, _, err = run(capsys, music / "a.wav", "--db", library, "--index", "faiss")
    assert code == 2 and "pip install faiss-cpu" in err and len(err.splitlines()) == 1
