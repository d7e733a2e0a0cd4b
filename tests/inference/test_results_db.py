"""tag.py --db: results streamed into SQLite, reruns that skip what is done,
a SIGKILLed run that resumes, and tagger-library export."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest

from tagger.commands import library as library_cli
from tagger.commands import tag as tag_cli
from tagger.inference import window_choice
from tagger.inference.library import results_db
from tests.checks import HANG_S, tone
from tests.presets import MUSIC_TOP_LEVEL as TOP_LEVEL
from tests.presets import TAGGER_TAGS as TAGS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_tag(capsys, *argv):
    code = tag_cli.main([str(a) for a in argv] + ["--no-progress"])
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


def query(db, sql):
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def rows(db):
    return query(db, "SELECT path, size, mtime_ns, duration, windows, padded, scores, "
                     "embedding, model, window_choice FROM files ORDER BY path")


@pytest.fixture(scope="module")
def tagged_db(cnn, music, tmp_path_factory):
    """The music folder (top level) tagged into a database, with embeddings."""
    import contextlib

    db = tmp_path_factory.mktemp("db") / "library.sqlite"
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()) as out:
        code = tag_cli.main([cnn[0], str(music), "--db", str(db), "--embeddings",
                             "--no-progress"])
    return db, code, out.getvalue(), err.getvalue().splitlines()


def test_one_row_per_file_with_the_models_scores(tagged_db, cnn, music):
    """Each from the library's windows (`LIBRARY_WINDOWS` of long.flac's
    22, every window of the others), which its row records."""
    from tagger.inference.window_choice import LIBRARY_WINDOWS, choose
    from tests.checks import reference_windows
    from tests.presets import SAMPLE_RATE, SEGMENT

    db, code, out, err = tagged_db
    assert code == 1 and out == ""  # broken.mp3 is skipped; nothing per file on stdout
    assert f"{db}: 6 files tagged and stored, 0 up to date and skipped" in err
    got = rows(db)
    assert [r[0] for r in got] == sorted(os.path.abspath(music / n) for n in TOP_LEVEL)
    fingerprint = results_db.model_fingerprint(cnn[0])
    _, model = cnn
    for path, size, mtime, _, windows, padded, scores, embedding, fp, choice in got:
        stat = os.stat(path)
        assert (size, mtime, fp) == (stat.st_size, stat.st_mtime_ns, fingerprint)
        windows_, samples = reference_windows(path)
        chosen = choose(samples, LIBRARY_WINDOWS, SEGMENT, SEGMENT, 0, SAMPLE_RATE)
        assert (chosen is None) == (not path.endswith("long.flac"))
        windows_ = windows_ if chosen is None else windows_[chosen]
        assert windows == len(windows_) and padded == (samples < windows_.shape[1])
        assert choice == LIBRARY_WINDOWS
        expected = model.predict(windows_, verbose=0).mean(axis=0)
        np.testing.assert_allclose(results_db.scores_of(scores), expected, atol=1e-5)
        assert len(np.frombuffer(embedding, "<f4")) > 0
    # the window rule and the engine (the suite's TAGGER_ENGINE) of every row
    assert query(db, "SELECT DISTINCT window_rule, engine FROM files") == [
        (window_choice.RULE, "keras")]
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert con.execute("PRAGMA application_id").fetchone() == (results_db.APPLICATION_ID,)
    con.close()


@pytest.mark.slow
def test_a_rerun_skips_what_is_up_to_date_and_rescan_redoes_it(cnn, music, tmp_path, capsys):
    import shutil

    folder = tmp_path / "lib"
    folder.mkdir()
    for name in ("a.wav", "short.wav", "c.ogg"):
        shutil.copy(music / name, folder / name)
    db = tmp_path / "lib.sqlite"
    code, _, err = run_tag(capsys, cnn[0], folder, "--db", db)
    assert code == 0 and err[-1] == f"{db}: 3 files tagged and stored, 0 up to date and skipped"
    first = {r[0]: r for r in rows(db)}
    code, _, err = run_tag(capsys, cnn[0], folder, "--db", db)
    assert err[-1] == (f"{db}: 0 files tagged and stored, 3 up to date and skipped "
                       "(--rescan redoes them)")
    os.utime(folder / "a.wav", ns=(1, 1))  # a changed file is tagged again
    code, _, err = run_tag(capsys, cnn[0], folder, "--db", db)
    assert err[-1].startswith(f"{db}: 1 file tagged and stored, 2 up to date")
    code, _, err = run_tag(capsys, cnn[0], folder, "--db", db, "--embeddings")  # need vectors
    assert err[-1].startswith(f"{db}: 3 files tagged and stored, 0 up to date")
    code, _, err = run_tag(capsys, cnn[0], folder, "--db", db, "--rescan")
    assert err[-1] == f"{db}: 3 files tagged and stored, 0 up to date and skipped"
    second = {r[0]: r for r in rows(db)}
    assert first.keys() == second.keys()
    for path in first:  # scored again: equal up to the float32 rounding of the CPU's sums
        np.testing.assert_allclose(results_db.scores_of(second[path][6]),
                                   results_db.scores_of(first[path][6]), rtol=1e-6)


@pytest.mark.slow
def test_a_rerun_with_another_engine_says_which_files_it_skipped(cnn, music, tmp_path, capsys):
    """Files up to date are skipped whatever the engine; an engine chosen
    (not auto's) that differs from the one a skipped row records is said,
    with how many files each engine scored; --rescan tags them again; a
    file tagged again for --write-tags is not counted as skipped."""
    import shutil

    db, folder = tmp_path / "lib.sqlite", tmp_path / "copies"  # copies: --write-tags
    folder.mkdir()
    for name in ("a.wav", "c.ogg"):
        shutil.copy(music / name, folder / name)
    code, _, err = run_tag(capsys, cnn[0], folder, "--db", db, "--engine", "keras")
    assert code == 0 and err[-1].startswith(f"{db}: 2 files tagged and stored")
    code, _, err = run_tag(capsys, cnn[0], folder, "--db", db, "--engine", "keras")
    assert err[-1].endswith("2 up to date and skipped (--rescan redoes them)")  # nothing more
    code, _, err = run_tag(capsys, cnn[0], folder, "--db", db, "--engine", "xla")
    assert code == 0 and err[-2:] == [
        f"{db}: 0 files tagged and stored, 2 up to date and skipped (--rescan redoes them)",
        f"{db}: of the files up to date, 2 by keras (another engine than xla, this run's; "
        "--rescan tags them again with it)"]
    code, _, err = run_tag(capsys, cnn[0], folder, "--db", db, "--engine", "xla", "--rescan")
    assert err[-1] == f"{db}: 2 files tagged and stored, 0 up to date and skipped"
    assert {engine for engine, in query(db, "SELECT engine FROM files")} == {"xla"}
    code, _, err = run_tag(capsys, cnn[0], folder, "--db", db, "--engine", "keras",
                           "--write-tags")  # the copies hold no tags yet: tagged again
    assert code == 0 and not any("another engine" in line for line in err), err
    assert {engine for engine, in query(db, "SELECT engine FROM files")} == {"keras"}


def test_a_rerun_with_another_hop_tags_again(cnn, music, tmp_path, capsys):
    """A row records its windows' step (`hop`, samples; NULL: the model's
    window): a rerun with another --hop tags the file again, the same
    --hop skips it, and --hop of the window is the default's."""
    from tagger.inference.engine.registry import EngineOptions, make_predictor
    from tagger.models.saved import load_tagger

    predictor = make_predictor("keras", *load_tagger(cnn[0]), EngineOptions())
    window = predictor.window_samples / predictor.sample_rate
    db, song = tmp_path / "lib.sqlite", music / "long.flac"
    code, _, err = run_tag(capsys, cnn[0], song, "--db", db)
    assert code == 0 and query(db, "SELECT hop FROM files") == [(None,)]
    for hop, tagged, stored in (("0.5", 1, predictor.sample_rate // 2), ("0.5", 0, None),
                                (str(window), 1, None), (None, 0, None)):
        code, _, err = run_tag(capsys, cnn[0], song, "--db", db,
                               *(("--hop", hop) if hop else ()))
        assert code == 0 and err[-1].startswith(f"{db}: {tagged} file"), (hop, err)
        if stored is not None:
            assert query(db, "SELECT hop FROM files") == [(stored,)]
    assert query(db, "SELECT hop FROM files") == [(None,)]


def failure_rows(db):
    return query(db, "SELECT path, size, mtime_ns, ctime_ns, error FROM failures ORDER BY path")


def test_a_file_that_cannot_be_tagged_is_stored_and_tried_again_once_it_changes(
        cnn, music, tmp_path, capsys):
    import shutil

    folder = tmp_path / "lib"
    folder.mkdir()
    for name in ("a.wav", "short.wav", "broken.mp3"):
        shutil.copy(music / name, folder / name)
    broken, db = folder / "broken.mp3", tmp_path / "lib.sqlite"
    reason = "not decodable audio (unknown format or damaged file)"
    stored_line = (f"{db}: 1 file that could not be tagged stored with the reason "
                   f"(tagger-library failures --db {db} lists them; a rerun tries a file "
                   "again once it changes)")
    code, _, err = run_tag(capsys, cnn[0], folder, "--db", db)
    assert code == 1 and f"skipped {broken}: {reason}" in err and stored_line in err
    info = os.stat(broken)
    assert failure_rows(db) == [(str(broken), info.st_size, info.st_mtime_ns,
                                 info.st_ctime_ns, reason)]
    assert [r[0] for r in rows(db)] == [str(folder / "a.wav"), str(folder / "short.wav")]
    code, _, err = run_tag(capsys, cnn[0], folder, "--db", db)  # not decoded again
    assert code == 0 and not [line for line in err if line.startswith("skipped")]
    assert err[-2:] == [f"{db}: 0 files tagged and stored, 2 up to date and skipped "
                        "(--rescan redoes them)",
                        f"{db}: 1 file that could not be tagged before, unchanged since, "
                        "not tried again (--rescan tries them; tagger-library failures lists "
                        "them)"]
    broken.chmod(0o600)  # its change time moves (permissions fixed, say): tried again
    code, _, err = run_tag(capsys, cnn[0], folder, "--db", db)
    assert code == 1 and f"skipped {broken}: {reason}" in err
    assert failure_rows(db)[0][3] == os.stat(broken).st_ctime_ns
    code, _, err = run_tag(capsys, cnn[0], folder, "--db", db, "--rescan")  # all tried
    assert code == 1 and f"skipped {broken}: {reason}" in err
    shutil.copy(music / "d.mp3", broken)  # mended: its row of scores replaces the failure
    (folder / "a.wav").write_text("damaged since\n" * 40)  # and the other way round
    code, _, err = run_tag(capsys, cnn[0], folder, "--db", db)
    assert code == 1 and f"skipped {folder / 'a.wav'}: {reason}" in err
    assert [r[0] for r in failure_rows(db)] == [str(folder / "a.wav")]
    assert [r[0] for r in rows(db)] == [str(broken), str(folder / "short.wav")]


@pytest.mark.parametrize("partial", ["short.wav", "broken.mp3"])
def test_a_file_that_changes_while_it_is_decoded_is_tagged_again(cnn, music, tmp_path, capsys,
                                                                 monkeypatch, partial):
    """A file still being copied in: decoded as it is (scored, or failing),
    then the copy finishes (music/a.wav) before the row is written."""
    import shutil

    from tagger.inference.engine import tagging
    from tests.checks import reference_windows

    folder = tmp_path / "lib"
    folder.mkdir()
    path, db = folder / "song.wav", tmp_path / "lib.sqlite"
    shutil.copy(music / partial, path)

    def copy_finishing_meanwhile(decode):
        def decoding(*args, **kwargs):
            try:
                return (yield from decode(*args, **kwargs))
            finally:
                shutil.copy(music / "a.wav", path)
                os.utime(path, ns=(1, 2_000_000_000))
        return decoding

    decoders = {name: getattr(tagging, name) for name in ("audio_windows", "read_chosen")}
    for name, decode in decoders.items():  # every window, or --db's windows
        monkeypatch.setattr(tagging, name, copy_finishing_meanwhile(decode))
    code, _, err = run_tag(capsys, cnn[0], folder, "--db", db)
    assert (f"{path} changed while it was tagged: not stored in {db}, the next run tags it "
            "again") in err
    assert code == (1 if partial == "broken.mp3" else 0)
    assert (f"{db}: 1 file changed while it was tagged, not stored; the next run tags it "
            "again") in err
    assert rows(db) == [] and failure_rows(db) == []

    for name, decode in decoders.items():
        monkeypatch.setattr(tagging, name, decode)
    code, _, err = run_tag(capsys, cnn[0], folder, "--db", db)
    assert code == 0 and err[-1] == f"{db}: 1 file tagged and stored, 0 up to date and skipped"
    (row,) = rows(db)
    info = os.stat(path)
    assert row[:3] == (str(path), info.st_size, 2_000_000_000)
    windows, _ = reference_windows(str(path))
    np.testing.assert_allclose(results_db.scores_of(row[6]),
                               cnn[1].predict(windows, verbose=0).mean(axis=0), atol=1e-5)


def test_library_lists_the_failures_and_export_says_they_are_not_in_it(tagged_db, music,
                                                                       capsys, tmp_path):
    db = tagged_db[0]
    fingerprint = rows(db)[0][8]
    code, out, err = export(capsys, "failures", "--db", db)
    assert code == 0 and err == ""
    assert list(csv.reader(io.StringIO(out))) == [
        ["path", "size", "mtime", "model", "error"],
        [str(music / "broken.mp3"), str(os.path.getsize(music / "broken.mp3")),
         str(os.stat(music / "broken.mp3").st_mtime_ns / 1e9), fingerprint,
         "not decodable audio (unknown format or damaged file)"]]
    code, out, err = export(capsys, "export", "--db", db)
    assert code == 0 and len(out.splitlines()) == 1 + len(TOP_LEVEL)
    assert "broken.mp3" not in out
    assert err == (f"1 file of model {fingerprint[:12]} could not be tagged and is not in the "
                   f"export: tagger-library failures --db {db} lists it\n")
    code, out, _ = export(capsys, "info", "--db", db)
    assert code == 0 and out.startswith(f"{fingerprint[:12]}  6 files  1 failed  8 tags")
    listing = tmp_path / "failed.jsonl"
    for _ in range(2):  # the second replaces the first: recognised as ours
        code, _, err = export(capsys, "failures", "--db", db, "--format", "jsonl", "--out",
                              listing)
        assert code == 0 and err == f"wrote {listing}: 1 failed file of model " \
                                    f"{fingerprint[:12]} as jsonl\n"
    assert json.loads(listing.read_text())["error"].startswith("not decodable audio")
    for argv, needle in ((("failures", "--top-k", "3"), "--top-k does not apply to failures "
                                                        "(only to export)"),
                         (("info", "--out", tmp_path / "x"), "--out does not apply to info"),
                         (("info", "--format", "csv"), "--format does not apply to info"),
                         (("export", "--overwrite"), "--overwrite applies with --out only")):
        with pytest.raises(SystemExit) as done:
            library_cli.main([str(a) for a in argv] + ["--db", str(db)])
        err = capsys.readouterr().err
        assert done.value.code == 2 and needle in err and len(err.splitlines()) == 1


def test_a_database_from_before_the_failures_table(tagged_db, cnn, music, tmp_path, capsys):
    import shutil

    db = tmp_path / "old.sqlite"
    shutil.copy(tagged_db[0], db)
    con = sqlite3.connect(db)
    with con:
        con.execute("DROP TABLE failures")
    con.close()
    code, out, _ = export(capsys, "info", "--db", db)
    assert code == 0 and "  6 files  0 failed  " in out
    code, out, _ = export(capsys, "failures", "--db", db)
    assert code == 0 and out == "path,size,mtime,model,error\n"
    code, _, err = run_tag(capsys, cnn[0], music, "--db", db)  # the table comes
    assert code == 1 and [r[0] for r in failure_rows(db)] == [str(music / "broken.mp3")]


def test_a_version_1_database_is_read_as_it_is_and_upgraded_at_the_first_row(
        tagged_db, cnn, music, tmp_path, capsys):
    import shutil

    from tagger.inference.library.results_reader import ResultsReader

    db = tmp_path / "old.sqlite"
    shutil.copy(tagged_db[0], db)
    as_version(db, 1)
    old_rows = query(db, "SELECT * FROM files ORDER BY path")
    before = db.read_bytes()
    with ResultsReader(db) as reader:
        (model,) = reader.models()
        assert len(list(reader.scored(model))) == len(TOP_LEVEL)
        assert reader.window_choice(model) is None  # every window, as version 1 scored
    code, out, _ = export(capsys, "export", "--db", db)
    assert code == 0 and len(out.splitlines()) == 1 + len(TOP_LEVEL)
    assert db.read_bytes() == before  # reading changed nothing: an older tagger still reads it
    code, _, err = run_tag(capsys, cnn[0], music, "--db", db, "--windows", "all")
    assert err[0].startswith(f"{db}: 0 files tagged and stored, 6 up to date")  # every window
    assert query(db, "PRAGMA user_version") == [(1,)] and db.read_bytes() == before
    code, _, err = run_tag(capsys, cnn[0], music / "sub" / "a.wav", "--db", db)
    assert code == 0 and err[-1] == f"{db}: 1 file tagged and stored, 0 up to date and skipped"
    assert query(db, "PRAGMA user_version") == [(results_db.SCHEMA_VERSION,)]
    now = query(db, "SELECT * FROM files ORDER BY path")
    assert [row for row in now if row[0] != str(music / "sub" / "a.wav")] == \
        [(*row, None, None, None, None) for row in old_rows]  # every window, as scored
    assert [row[-4:] for row in now if row[0] == str(music / "sub" / "a.wav")] == [
        (window_choice.LIBRARY_WINDOWS, window_choice.RULE, "keras", None)]


def as_version(db, version: int) -> None:
    """The database `db` as tag.py of schema `version` wrote it: without the
    columns later versions added (`results_db.ADDED_COLUMNS`)."""
    con = sqlite3.connect(db)
    with con:
        for added in range(results_db.SCHEMA_VERSION, version, -1):
            for column in results_db.ADDED_COLUMNS[added]:
                con.execute(f"ALTER TABLE files DROP COLUMN {column.split()[0]}")
        con.execute(f"PRAGMA user_version = {version}")
    con.close()


def test_rows_of_the_earlier_window_rule_are_tagged_again_once(tagged_db, cnn, music,
                                                                tmp_path, capsys):
    """A version 2 database holds N and no rule: its rows of N windows are
    the earlier rule's (the first and last 10 s left out), which a run at
    that N tags again, once."""
    import shutil

    db = tmp_path / "v2.sqlite"
    shutil.copy(tagged_db[0], db)
    as_version(db, 2)
    long_flac = str(music / "long.flac")  # 22 windows: N of them chosen by a rule
    code, _, err = run_tag(capsys, cnn[0], long_flac, "--db", db)
    assert code == 0 and err[-1] == f"{db}: 1 file tagged and stored, 0 up to date and skipped"
    assert query(db, "SELECT path, window_choice, window_rule, engine FROM files WHERE "
                     "window_rule IS NOT NULL") == [
        (long_flac, window_choice.LIBRARY_WINDOWS, window_choice.RULE, "keras")]
    assert query(db, "PRAGMA user_version") == [(results_db.SCHEMA_VERSION,)]
    writer = results_db.ResultsWriter(db, cnn[0], TAGS, 16000, 16000, embeddings=False,
                                      windows=window_choice.LIBRARY_WINDOWS)
    try:  # once: the row is now of this rule
        assert writer.current_scores(long_flac) is not None
        assert writer.current_scores(str(music / "c.ogg")) is None  # still the earlier rule's
    finally:
        writer.close()


def test_the_engine_auto_took_is_the_engine_recorded():
    """What a row records: the engine that scored it (the predictor's, for
    `--engine auto` the one it took), else the engine asked for."""
    from tagger.inference.engine.predictor import Predictor
    from tagger.inference.tag.run import engine_name

    class Made(Predictor):
        engine = "keras-bf16"

    assert engine_name(Made(), "auto") == "keras-bf16"
    assert engine_name(Predictor(), "xla") == "xla"


def test_flags_that_need_db_or_write_tags(cnn, music, capsys, tmp_path):
    db = tmp_path / "lib.sqlite"
    chooses = "to a table or JSON report, --write-tags and --taggram only"
    for argv, needle in (((music / "a.wav", "--rescan"), "--rescan applies with --db"),
                         ((music / "a.wav", "--embeddings"), "--embeddings without a PATH"),
                         ((music / "a.wav", "--dry-run"), "--dry-run applies with --write-tags"),
                         ((music / "a.wav", "--db", db, "--format", "json"),
                          "--format applies to a report only (with --db and no --out none is "
                          "made); leave it out or add --out PATH"),
                         ((music / "a.wav", "--format", "csv", "--top-k", "3"),
                          f"--top-k applies {chooses} (a CSV report holds every tag's score)"),
                         ((music / "a.wav", "--out", tmp_path / "t.csv", "--threshold", "0.5"),
                          f"--threshold applies {chooses} (a CSV report"),
                         ((music / "a.wav", "--db", db, "--top-k", "2", "--threshold", "0.5"),
                          f"--top-k, --threshold apply {chooses} (with --db and no --out"),
                         ((music / "a.wav", "--overwrite"), "--overwrite applies with --out, "
                          "--embeddings PATH, --db or --taggram only")):
        code, _, err = run_tag(capsys, cnn[0], *argv)
        assert code == 2 and len(err) == 1 and needle in err[0], err
    assert os.listdir(tmp_path) == []  # refused before anything is written


def test_an_embeddings_archive_beside_a_db_keeps_every_file(cnn, music, tmp_path, capsys):
    """--embeddings PATH with --db: a rerun that would skip files up to
    date in the database leaves the archive already there as it was (one
    line), and --rescan, which tags them all, writes it whole again."""
    import shutil

    from tagger.inference.library.embeddings import read_embeddings

    folder = tmp_path / "lib"
    folder.mkdir()
    for name in ("a.wav", "c.ogg"):
        shutil.copy(music / name, folder / name)
    db, archive = tmp_path / "lib.sqlite", tmp_path / "vectors.npz"
    code, _, _ = run_tag(capsys, cnn[0], folder, "--db", db, "--embeddings", archive)
    names = {os.path.basename(path) for path in read_embeddings(str(archive))}
    assert code == 0 and names == {"a.wav", "c.ogg"}
    written = archive.read_bytes()
    code, _, err = run_tag(capsys, cnn[0], folder, "--db", db, "--embeddings", archive)
    assert code == 2 and len(err) == 1, err
    assert f"--embeddings {archive} is there already" in err[0] and "--rescan" in err[0]
    assert archive.read_bytes() == written
    code, _, err = run_tag(capsys, cnn[0], folder, "--db", db, "--embeddings", archive,
                           "--rescan")
    assert code == 0 and err[-1].startswith(f"{db}: 2 files tagged and stored")
    assert {os.path.basename(path) for path in read_embeddings(str(archive))} == names
    plain = tmp_path / "plain.sqlite"  # rows without embeddings: none is skipped, nothing lost
    run_tag(capsys, cnn[0], folder, "--db", plain)
    code, _, err = run_tag(capsys, cnn[0], folder, "--db", plain, "--embeddings", archive)
    assert code == 0 and err[-1].startswith(f"{plain}: 2 files tagged and stored")
    assert {os.path.basename(path) for path in read_embeddings(str(archive))} == names


def test_the_step_a_row_records_is_none_for_the_predictors_own(cnn, tmp_path):
    """`--hop` of the predictor's own step (its window, or the grid its
    front end steps on, as the musicnn package's) is recorded as the
    default, NULL; another step as itself."""
    from tagger.inference.tag.config import TagConfig
    from tagger.inference.tag.run import _database

    class Predictor:
        tag_names, sample_rate, window_samples, hop_samples, engine = TAGS, 16000, 300, 100, None

    config = TagConfig(model=cnn[0], inputs=("x.wav",), db=str(tmp_path / "lib.sqlite"),
                       engine="keras")
    for hop, recorded in ((None, None), (100, None), (300, 300)):
        writer = _database(config, Predictor(), hop)
        assert writer.hop == recorded
        writer.close()


def export(capsys, *argv):
    code = library_cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_export_csv_jsonl_with_tags_chosen_at_export(tagged_db, capsys, tmp_path):
    db = tagged_db[0]
    code, out, _ = export(capsys, "export", "--db", db, "--format", "csv", "--top-k", "2")
    table = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(table) == 6
    stored = {r[0]: results_db.scores_of(r[6]) for r in rows(db)}
    for row in table:
        scores = stored[row["path"]]
        best = [TAGS[i] for i in np.argsort(-scores, kind="stable")[:2]]
        assert row["tags"].split(";") == best
    code, out, _ = export(capsys, "export", "--db", db, "--format", "jsonl", "--threshold",
                          "0.5", "--all-scores")
    lines = [json.loads(line) for line in out.splitlines()]
    for line in lines:
        assert all(s >= 0.5 for s in line["scores"])
        assert set(line["all_scores"]) == set(TAGS)
        assert line["tags"] == [t for t in sorted(TAGS, key=lambda t: -line["all_scores"][t])
                                if line["all_scores"][t] >= 0.5]
    out_path = tmp_path / "tags.csv"
    code, _, err = export(capsys, "export", "--db", db, "--out", out_path)
    assert code == 0 and err.startswith(f"wrote {out_path}: 6 files of model ")
    code, _, _ = export(capsys, "export", "--db", db, "--out", out_path)  # ours: replaced
    assert code == 0
    code, _, err = export(capsys, "export", "--db", db, "--out", db)
    assert code == 2 and "is the input" in err
    code, _, err = export(capsys, "info", "--db", db)
    assert code == 0


def test_export_parquet_or_one_line_without_pyarrow(tagged_db, capsys, tmp_path, monkeypatch):
    db = tagged_db[0]
    out = tmp_path / "tags.parquet"
    import pyarrow.parquet as pq  # a main requirement

    code, _, _ = export(capsys, "export", "--db", db, "--format", "parquet", "--out", out,
                        "--top-k", "3", "--all-scores")
    table = pq.read_table(out).to_pylist()
    assert code == 0 and len(table) == 6 and all(len(r["tags"]) == 3 for r in table)
    assert f"score:{TAGS[0]}" in table[0]
    code, _, err = export(capsys, "export", "--db", db, "--format", "parquet", "--out", out)
    assert code == 0 and len(pq.read_table(out).to_pylist()[0]["tags"]) == 5, err  # ours: replaced
    foreign = tmp_path / "foreign.parquet"
    pq.write_table(pq.read_table(out).replace_schema_metadata(None), foreign)
    code, _, err = export(capsys, "export", "--db", db, "--format", "parquet", "--out", foreign)
    assert code == 2 and "pass --overwrite" in err and len(err.splitlines()) == 1
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    code, _, err = export(capsys, "export", "--db", db, "--format", "parquet", "--out",
                          tmp_path / "x.parquet")
    assert code == 2 and "pyarrow (in requirements.txt)" in err and len(err.splitlines()) == 1


def test_not_a_database_is_one_line(tmp_path, capsys):
    (tmp_path / "x.sqlite").write_text("hello")
    code, _, err = export(capsys, "export", "--db", tmp_path / "x.sqlite")
    assert code == 2 and "not a results database" in err
    code, _, err = export(capsys, "export", "--db", tmp_path / "none.sqlite")
    assert code == 2 and "not found" in err
    code, _, err = export(capsys, "export", "--db", tmp_path)
    assert code == 2 and err.strip().endswith(
        f"--db {str(tmp_path)!r} is a folder; give the database file tag.py --db wrote"), err


@pytest.mark.slow
def test_a_sigkilled_run_resumes_and_tags_each_file_once(cnn, tmp_path):
    import soundfile as sf

    folder = tmp_path / "many"
    folder.mkdir()
    count = 120
    for i in range(count):
        sf.write(str(folder / f"{i:04d}.wav"), tone(0.3, 22050, 1, 200 + 5 * i, i), 22050)
    db = tmp_path / "lib.sqlite"
    argv = [sys.executable, os.path.join(ROOT, "tag.py"), cnn[0], str(folder), "--db", str(db),
            "--no-progress", "--batch-size", "1", "--workers", "1"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + HANG_S
    done = 0
    while time.monotonic() < deadline and process.poll() is None:
        try:
            con = sqlite3.connect(db, timeout=1)
            done = con.execute("SELECT COUNT(*) FROM files").fetchone()[0]
            con.close()
        except sqlite3.Error:
            done = 0
        if done >= 10:
            break
        time.sleep(0.05)
    assert process.poll() is None, process.stderr.read().decode()[-2000:]
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    kept = len(rows(db))
    assert 10 <= kept < count
    finished = subprocess.run(argv, capture_output=True, text=True, timeout=HANG_S)
    assert finished.returncode == 0, finished.stderr[-2000:]
    tagged = count - kept
    assert (f"{db}: {tagged} files tagged and stored, {kept} up to date and skipped"
            in finished.stderr)
    got = rows(db)
    assert len(got) == count and len({r[0] for r in got}) == count
