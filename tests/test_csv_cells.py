"""Every CSV the project writes keeps a cell a spreadsheet would run as a
formula as text (`tagger.csv_cells`), and reads it back as itself: the tag
report, the taggram index, the library export, the labels CSV and the
suggested files, eval.py's per-tag table."""

from __future__ import annotations

import csv
import io
import os
import types

import numpy as np

from tagger.csv_cells import csv_line, csv_text, from_text_cell, text_cell

FORMULAS = ["=1+2.wav", "+x", "-x", "@x", "'=q", "\tx", " x"]


def cells(text: str) -> list:
    return list(csv.reader(io.StringIO(text, newline="")))


def assert_safe(row):
    """No cell of `row` starts as a spreadsheet formula."""
    for cell in row:
        assert not cell or (cell[0] not in "=+-@\t\r\n" and not cell[0].isspace()), row


def test_text_cells_are_kept_as_text_and_read_back_as_themselves():
    texts = [*FORMULAS, "'", "''", "' x", "a=b", "", "x,\"y\"", "a\rb", "é", "\u3000x"]
    text = csv_line(texts)
    assert text == ("'=1+2.wav,'+x,'-x,'@x,''=q,'\tx,' x,'',''','' x,a=b,,\"x,\"\"y\"\"\","
                    "\"a\rb\",é,'\u3000x\n")
    (row,) = cells(text)
    assert_safe(row)
    assert [from_text_cell(cell) for cell in row] == texts
    assert from_text_cell("=x") == "=x" and from_text_cell("'x") == "'x"  # as saved again
    assert text_cell("x") == "x"


def test_numbers_stay_numbers_and_none_is_empty():
    assert csv_text([["a", "b"], [-1, -0.5, np.float32(0.25), np.int64(3), True, None,
                                  float("nan")]]) == "a,b\n-1,-0.5,0.25,3,True,,nan\n"


def test_tag_report_csv():
    from tagger.inference.outputs import to_csv

    results = [types.SimpleNamespace(path=name, duration=1.5, windows=1, padded=False,
                                     clip_scores=np.array([0.5, 0.25])) for name in FORMULAS]
    rows = cells(to_csv(results, ["=sum", "-5 dB"]))
    assert rows[0] == ["path", "duration", "windows", "padded", "'=sum", "'-5 dB"]
    assert [row[0] for row in rows[1:]] == ["'" + name for name in FORMULAS]
    assert rows[1][1:] == ["1.500", "1", "0", "0.500000", "0.250000"]
    for row in rows:
        assert_safe(row)
    assert [from_text_cell(row[0]) for row in rows[1:]] == FORMULAS


def test_taggram_index(tmp_path):
    from tagger import fileio
    from tagger.inference.tag.taggram import is_index, taggram_names, write_index

    paths = [str(tmp_path / name) for name in FORMULAS]
    names = taggram_names(paths)
    write_index(str(tmp_path), names)
    assert is_index(str(tmp_path / "index.csv"))
    rows = cells((tmp_path / "index.csv").read_text())
    assert rows[1][0] == "'=1+2.wav"
    for row in rows:
        assert_safe(row)
    assert {fileio.path_from_text(from_text_cell(path)): from_text_cell(name)
            for name, path in rows[1:]} == names


def test_library_export_and_failures(tmp_path, capsys):
    from tagger.commands import library as library_cli
    from tagger.inference.library.results_db import ResultsWriter

    model, db = tmp_path / "model.keras", tmp_path / "library.sqlite"
    model.write_bytes(b"a model")
    tags = ["=sum", "+x", "-x", "@x"]
    writer = ResultsWriter(str(db), str(model), tags, 16000, 16000, embeddings=False)
    for name, error in (("a.wav", None), ("b.wav", "=HYPERLINK(\"x\")")):
        path = tmp_path / name
        path.write_bytes(b"x")
        result = types.SimpleNamespace(path=str(path), read_stat=os.stat(path), duration=1.0,
                                       file_sample_rate=16000, windows=1, padded=False,
                                       clip_scores=np.array([0.9, 0.8, 0.7, 0.6]),
                                       embeddings=None, error=error)
        writer.add_failure(result) if error else writer.add(result)
    writer.close()
    assert library_cli.main(["export", "--db", str(db), "--format", "csv", "--top-k", "2",
                             "--all-scores"]) == 0
    rows = cells(capsys.readouterr().out)
    assert rows[0][-4:] == ["score:=sum", "score:+x", "score:-x", "score:@x"]
    assert rows[1][8:10] == ["'=sum;+x", "0.900000;0.800000"]
    assert from_text_cell(rows[1][8]).split(";") == tags[:2]
    assert library_cli.main(["failures", "--db", str(db)]) == 0
    failures = cells(capsys.readouterr().out)
    assert failures[1][-1] == "'=HYPERLINK(\"x\")"
    assert from_text_cell(failures[1][-1]) == "=HYPERLINK(\"x\")"
    for row in rows + failures:
        assert_safe(row)


def test_labels_and_suggested_files_read_back_by_the_labels_reader(tmp_path):
    from tagger.datasets.labels_csv import labels_text, read_labels
    from tagger.training.suggest import suggestions

    labels = tmp_path / "labels.csv"
    labels.write_text(labels_text([(name, ["=sum", "-x"]) for name in FORMULAS]))
    suggested = tmp_path / "suggested.csv"
    picked, text = suggestions(FORMULAS, np.full((len(FORMULAS), 1), 0.5),
                               np.eye(len(FORMULAS)), len(FORMULAS))
    suggested.write_text(text)
    for path in (labels, suggested):
        rows = cells(path.read_text())
        for row in rows:
            assert_safe(row)
    assert read_labels(str(labels), FORMULAS) == {name: {"=sum", "-x"} for name in FORMULAS}
    assert read_labels(str(suggested), FORMULAS) == {name: set() for name in picked}
    assert sorted(picked) == sorted(FORMULAS)


def test_eval_per_tag_table():
    import pandas as pd

    from tagger.csv_cells import frame_text

    per_tag = pd.DataFrame([("=sum", 1.0, 1.0, 2, 2, True), ("-x", 1.0, 1.0, 2, 2, True)],
                           columns=["tag", "roc_auc", "pr_auc", "positives", "negatives",
                                    "few_clips"])  # as `evaluation.metrics.tag_metrics` has it
    rows = cells(frame_text(per_tag))
    assert rows[0] == ["tag", "roc_auc", "pr_auc", "positives", "negatives", "few_clips"]
    assert rows[1:] == [["'=sum", "1.0", "1.0", "2", "2", "True"],
                        ["'-x", "1.0", "1.0", "2", "2", "True"]]
    read = pd.read_csv(io.StringIO(frame_text(per_tag)))
    assert [from_text_cell(tag) for tag in read.tag] == ["=sum", "-x"]

