"""tag.py on a folder holding a file whose name is not valid UTF-8 (written
on a system with another encoding): the file is tagged like the others,
the database keeps its name's bytes exactly, tagger-similar takes it as a
query, and every text output (reports, exports, rankings) shows the name
with its undecodable bytes as \\xNN and a literal backslash as \\\\, so a
file literally named with the text of another's escaped name keeps a path
text of its own (`fileio.path_text`), which maps back to the file
(`fileio.path_from_text`). (The builders: tests/datasets.)"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import sqlite3

import numpy as np
import pytest

from tagger.commands import library as library_cli
from tagger.commands import similar as similar_cli
from tagger.commands import tag as tag_cli
from tagger.fileio import path_from_text, path_text
from tagger.inference.library import results_db

NAME = b"bad\xff\xfe.wav"
SHOWN = "bad\\xff\\xfe.wav"  # as text: the two bytes that do not decode, escaped
BYTES_NAME = b"caf\xe9.wav"  # a byte that does not decode
TEXT_NAME = b"caf\\xe9.wav"  # valid UTF-8 that reads as BYTES_NAME's escaped text


def run_tag(capsys, *argv):
    code = tag_cli.main([str(a) for a in argv] + ["--no-progress"])
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


@pytest.fixture
def folder(music, tmp_path):
    """(folder, the odd name's path): a.wav, short.wav and NAME, a copy of
    a.wav (so its scores must equal a.wav's)."""
    root = tmp_path / "lib"
    root.mkdir()
    for name in ("a.wav", "short.wav"):
        shutil.copy(music / name, root / name)
    bad = os.fsdecode(os.path.join(os.fsencode(str(root)), NAME))
    shutil.copy(music / "a.wav", bad)
    return root, bad


def test_path_text_escapes_only_what_does_not_decode():
    assert path_text(os.fsdecode(b"/m/" + NAME)) == "/m/" + SHOWN
    assert path_text("/m/caf\u00e9.flac") == "/m/caf\u00e9.flac"
    assert path_text(b"/m/" + NAME) == "/m/" + SHOWN
    assert results_db.path_key(os.fsdecode(NAME)) == NAME
    assert results_db.path_key("caf\u00e9") == "caf\u00e9"
    assert results_db.path_of_key(NAME) == os.fsdecode(NAME)


def test_path_text_is_one_text_per_name_and_maps_back():
    names = [BYTES_NAME, TEXT_NAME, NAME, b"a\\b.wav", b"end\\", b"\\\\x80", "caf\u00e9".encode(),
             b"\xc3", b"\xed\xb3\xa9"]  # an encoded surrogate is not UTF-8 either
    texts = [path_text(os.fsdecode(name)) for name in names]
    assert texts[:5] == ["caf\\xe9.wav", "caf\\\\xe9.wav", SHOWN, "a\\\\b.wav", "end\\\\"]
    assert len(set(texts)) == len(names)
    assert [path_text(name) for name in names] == texts  # bytes or str: the same text
    assert [os.fsencode(path_from_text(text)) for text in texts] == names
    # A name without a backslash has the same text as before backslashes were
    # doubled, so outputs written then read back the same; an earlier text
    # holding a backslash that starts no escape is that backslash.
    assert path_from_text("old/a\\b.wav") == "old/a\\b.wav"
    assert path_from_text("x\\x41\\") == "x\\x41\\"


@pytest.fixture
def twins(music, tmp_path):
    """A folder of a.wav, short.wav, BYTES_NAME (a copy of a.wav) and
    TEXT_NAME (a copy of short.wav), and {name bytes: the file it copies}."""
    root = tmp_path / "twins"
    root.mkdir()
    copies = {b"a.wav": "a.wav", b"short.wav": "short.wav", BYTES_NAME: "a.wav",
              TEXT_NAME: "short.wav"}
    for name, source in copies.items():
        shutil.copy(music / source, os.path.join(os.fsencode(str(root)), name))
    return root, copies


def name_of(root, text: str) -> bytes:
    """The name, as bytes, of the file in `root` that the path text `text` maps to."""
    path = os.fsencode(path_from_text(text))
    assert os.path.dirname(path) == os.fsencode(str(root)) and os.path.exists(path)
    return os.path.basename(path)


@pytest.mark.slow
def test_two_names_of_one_text_keep_apart_in_the_archive_and_reports(cnn, twins, tmp_path,
                                                                    capsys):
    from tagger.inference.library.embeddings import read_embeddings

    root, copies = twins
    npz, report = tmp_path / "e.npz", tmp_path / "r.json"
    code, _, err = run_tag(capsys, cnn[0], root, "--embeddings", npz, "--format", "json",
                           "--out", report)
    assert code == 0, err
    with np.load(npz) as data:
        keys = data.files
    assert len(keys) == 8 and f"{root}/caf\\xe9.wav" in keys and f"{root}/caf\\\\xe9.wav" in keys
    embeddings = read_embeddings(str(npz))  # {path: (mean, per window)}
    assert {os.path.dirname(path) for path in embeddings} == {str(root)}
    vectors = {os.fsencode(os.path.basename(path)): mean
               for path, (mean, _) in embeddings.items()}
    windows = {os.fsencode(os.path.basename(path)): len(per_window)
               for path, (_, per_window) in embeddings.items()}
    assert set(vectors) == set(copies)
    assert (windows[BYTES_NAME], windows[TEXT_NAME]) == (2, 1)  # a.wav's and short.wav's
    assert not np.allclose(vectors[b"a.wav"], vectors[b"short.wav"], atol=1e-3)
    for name, source in copies.items():
        np.testing.assert_allclose(vectors[name], vectors[os.fsencode(source)], atol=1e-5)
    rows = {name_of(root, row["path"]): row for row in json.loads(report.read_text())}
    assert set(rows) == set(copies)
    for name, source in copies.items():
        np.testing.assert_allclose(rows[name]["scores"], rows[os.fsencode(source)]["scores"],
                                   atol=1e-5)
    csv_report = tmp_path / "r.csv"
    code, _, err = run_tag(capsys, cnn[0], root, "--format", "csv", "--out", csv_report)
    assert code == 0, err
    rows = {name_of(root, row[0]): np.array(row[1:], float)
            for row in list(csv.reader(io.StringIO(csv_report.read_text())))[1:]}
    assert set(rows) == set(copies)
    np.testing.assert_allclose(rows[BYTES_NAME], rows[b"a.wav"], atol=1e-5)
    np.testing.assert_allclose(rows[TEXT_NAME], rows[b"short.wav"], atol=1e-5)


def test_two_names_of_one_text_keep_apart_in_the_exports(cnn, twins, tmp_path, capsys):
    import pyarrow.parquet as pq

    root, copies = twins
    db = tmp_path / "lib.sqlite"
    code, _, err = run_tag(capsys, cnn[0], root, "--db", db)
    assert code == 0, err
    for fmt in ("csv", "jsonl", "parquet"):
        out = tmp_path / f"tags.{fmt}"
        assert library_cli.main(["export", "--db", str(db), "--format", fmt, "--out",
                                 str(out), "--top-k", "8"]) == 0
        if fmt == "csv":
            rows = [dict(row, scores=row["scores"].split(";"))
                    for row in csv.DictReader(io.StringIO(out.read_text()))]
        elif fmt == "jsonl":
            rows = [json.loads(line) for line in out.read_text().splitlines()]
        else:
            rows = pq.read_table(out).to_pylist()
        scores = {name_of(root, row["path"]): np.array(row["scores"], float) for row in rows}
        assert set(scores) == set(copies), fmt
        assert not np.allclose(scores[b"a.wav"], scores[b"short.wav"], atol=1e-3)
        np.testing.assert_allclose(scores[BYTES_NAME], scores[b"a.wav"], atol=1e-5)
        np.testing.assert_allclose(scores[TEXT_NAME], scores[b"short.wav"], atol=1e-5)


def test_db_embeddings_and_tags_in_the_files(cnn, folder, tmp_path, capsys):
    """The walk of --db (where a decoder thread used to die on the name and
    the run end early with status 0): every file tagged and stored, the
    name's bytes kept; a broken file with such a name is one line."""
    from mutagen.wave import WAVE

    root, bad = folder
    broken = os.fsdecode(os.path.join(os.fsencode(str(root)), b"broken\xe9.mp3"))
    with open(broken, "w") as f:
        f.write("not audio\n" * 20)
    db, npz = tmp_path / "lib.sqlite", tmp_path / "e.npz"
    code, _, err = run_tag(capsys, cnn[0], root, "--db", db, "--embeddings", npz,
                           "--write-tags")
    assert code == 1, err
    assert f"skipped {root}/broken\\xe9.mp3: not decodable audio (unknown format or " \
           "damaged file)" in err
    assert f"{db}: 3 files tagged and stored, 0 up to date and skipped" in err
    con = sqlite3.connect(db)
    stored = {path: results_db.scores_of(blob)
              for path, blob in con.execute("SELECT path, scores FROM files")}
    con.close()
    key = os.path.join(os.fsencode(str(root)), NAME)
    assert set(stored) == {str(root / "a.wav"), str(root / "short.wav"), key}
    np.testing.assert_allclose(stored[key], stored[str(root / "a.wav")], atol=1e-6)
    data = np.load(npz)
    assert sorted(data.files) == sorted(f"{root}/{n}{s}" for n in ("a.wav", "short.wav", SHOWN)
                                        for s in ("", "::windows"))
    np.testing.assert_allclose(data[f"{root}/{SHOWN}"], data[f"{root}/a.wav"], atol=1e-5)
    tags = [str(WAVE(path).tags["TXXX:tagger"].text[0]) for path in (bad, root / "a.wav")]
    assert tags[0] == tags[1] and len(tags[0].split("; ")) == 5
    code, _, err = run_tag(capsys, cnn[0], root, "--db", db)  # the rows are found again
    assert code == 0 and f"{db}: 0 files tagged and stored, 3 up to date and skipped " \
                          "(--rescan redoes them)" in err
    assert err[-1].startswith(f"{db}: 1 file that could not be tagged before, unchanged")
    assert library_cli.main(["failures", "--db", str(db), "--format", "jsonl"]) == 0
    failed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [row["path"] for row in failed] == [f"{root}/broken\\xe9.mp3"]
    assert library_cli.main(["export", "--db", str(db), "--format", "jsonl"]) == 0
    rows = {row["path"]: row for row in map(json.loads, capsys.readouterr().out.splitlines())}
    assert set(rows) == {f"{root}/{n}" for n in ("a.wav", "short.wav", SHOWN)}
    assert rows[f"{root}/{SHOWN}"]["tags"] == rows[f"{root}/a.wav"]["tags"]
    assert similar_cli.main(["--tags", "guitar", "--db", str(db)]) == 0
    assert f"{root}/{SHOWN}" in capsys.readouterr().out
    assert similar_cli.main([bad, "--db", str(db)]) == 0  # the file itself as the query
    ranked = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert [row[2] for row in ranked] == [f"{root}/a.wav", f"{root}/short.wav"]
    assert ranked[0][1] == "1.0000"  # its copy


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_reports_show_the_name_with_its_bytes_escaped(cnn, folder, tmp_path, capsys, fmt):
    root, _ = folder
    out = tmp_path / f"report.{fmt}"
    code, _, err = run_tag(capsys, cnn[0], root, "--format", fmt, "--out", out)
    assert code == 0 and err == [f"wrote {out}: {fmt} report of 3 files"]
    text = out.read_bytes().decode("utf-8")  # valid UTF-8 throughout
    if fmt == "json":
        rows = {row["path"]: row for row in json.loads(text)}
        assert rows[f"{root}/{SHOWN}"]["tags"] == rows[f"{root}/a.wav"]["tags"]
    elif fmt == "csv":
        rows = {row[0]: row[1:] for row in csv.reader(io.StringIO(text))}
        assert rows[f"{root}/{SHOWN}"] == rows[f"{root}/a.wav"]
    else:
        blocks = {block.splitlines()[0]: block.splitlines()[1:]
                  for block in text.strip().split("\n\n")}
        assert blocks[f"{root}/{SHOWN}  (7.0 s, 2 windows)"] == \
            blocks[f"{root}/a.wav  (7.0 s, 2 windows)"]


def test_taggrams_and_their_index_name_it_in_text(cnn, folder, tmp_path, capsys):
    root, _ = folder
    taggrams = tmp_path / "taggrams"
    code, _, _ = run_tag(capsys, cnn[0], root, "--taggram", taggrams)
    assert code == 0
    assert sorted(os.listdir(taggrams)) == sorted(
        ["index.csv"] + [f"{n}.{x}" for n in ("a.wav", "short.wav", SHOWN)
                         for x in ("npy", "png")])
    index = dict(list(csv.reader(io.StringIO((taggrams / "index.csv").read_text())))[1:])
    assert index[SHOWN] == f"{root}/{SHOWN}"
    np.testing.assert_allclose(np.load(taggrams / f"{SHOWN}.npy"),
                               np.load(taggrams / "a.wav.npy"), atol=1e-6)


def test_a_model_folder_holding_such_a_name_has_a_fingerprint(tmp_path):
    """A model folder (a SavedModel's) is hashed by its files' names, as
    bytes, and contents."""
    from tagger.inference.common import model_fingerprint

    model = tmp_path / "model"
    model.mkdir()
    (model / "saved_model.pb").write_bytes(b"graph")
    with open(os.path.join(os.fsencode(str(model)), NAME), "wb") as f:
        f.write(b"notes")
    digest = hashlib.sha256(NAME + b"\0notes" + b"saved_model.pb\0graph")
    assert model_fingerprint(str(model)) == digest.hexdigest()
