"""A model trained on the synthetic dataset says so in one line wherever
tag.py and the Python API show its tags: the table's last line, a JSON
field, the taggram's title, stderr beside a CSV report, a warning from the
API; never inside the CSV's rows. A model of real data says nothing."""

from __future__ import annotations

import csv
import io
import json
import warnings

import pytest

from tagger.commands import tag as tag_cli
from tagger.models.saved import read_saved_info, synthetic_note

FILES = ("a.wav", "short.wav")


@pytest.fixture(scope="module")
def note(synthetic_cnn):
    text = synthetic_note(read_saved_info(synthetic_cnn))
    assert text and "\n" not in text
    return text


def run_tag(capsys, *argv):
    code = tag_cli.main([str(a) for a in argv] + ["--no-progress"])
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


def test_table_ends_with_the_note(synthetic_cnn, cnn, music, note, capsys):
    code, out, err = run_tag(capsys, synthetic_cnn, *(music / n for n in FILES))
    assert code == 0 and err == []  # on stdout, with the report
    lines = out.splitlines()
    assert lines[-1] == f"note: {note}" and out.count(note) == 1
    assert lines[-2].startswith("* shorter than one model window")
    code, out, err = run_tag(capsys, cnn[0], *(music / n for n in FILES))
    assert code == 0 and "note" not in out and err == []


def test_json_carries_a_note_field(synthetic_cnn, cnn, music, note, capsys):
    code, out, err = run_tag(capsys, synthetic_cnn, *(music / n for n in FILES),
                             "--format", "json")
    rows = json.loads(out)
    assert code == 0 and err == [] and [row["note"] for row in rows] == [note, note]
    assert list(rows[0])[0] == "path"  # still recognised as a report of ours
    code, out, _ = run_tag(capsys, cnn[0], music / "a.wav", "--format", "json")
    assert "note" not in json.loads(out)[0]


def test_csv_rows_hold_data_only_and_stderr_says_it(synthetic_cnn, music, note, tmp_path,
                                                     capsys):
    code, out, err = run_tag(capsys, synthetic_cnn, *(music / n for n in FILES),
                             "--format", "csv")
    table = list(csv.reader(io.StringIO(out)))
    assert code == 0 and len(table) == 1 + len(FILES) and note not in out
    assert err == [f"note: {note}"]
    db = tmp_path / "lib.sqlite"  # no report at all: stderr says it too
    code, out, err = run_tag(capsys, synthetic_cnn, music / "a.wav", "--db", db)
    assert code == 0 and out == "" and err[0] == f"note: {note}"


def test_taggram_title_carries_the_note(synthetic_cnn, music, note, tmp_path, capsys,
                                        monkeypatch):
    from tagger.inference.tag import taggram

    titles = []
    real = taggram.taggram_figure

    def seen(*args, **kwargs):
        figure = real(*args, **kwargs)
        titles.append(figure.axes[0].get_title())
        return figure

    monkeypatch.setattr(taggram, "taggram_figure", seen)
    code, _, _ = run_tag(capsys, synthetic_cnn, music / "a.wav", "--taggram",
                         tmp_path / "taggrams")
    assert code == 0 and len(titles) == 1
    title_lines = titles[0].splitlines()
    assert title_lines[0] == "a.wav" and len(title_lines) >= 2
    assert " ".join(title_lines[1:]) == f"note: {note}"  # wrapped, every word kept


def test_the_api_warns_once_per_model_at_the_callers_line(synthetic_cnn, cnn, music, note):
    from tagger import top_tags
    from tagger.inference.api import SyntheticModelWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = top_tags(str(music / "a.wav"), model=synthetic_cnn, k=3)
        top_tags(str(music / "short.wav"), model=synthetic_cnn, k=3)  # loaded: said already
        top_tags(str(music / "a.wav"), model=cnn[0], k=3)  # a model of real data: nothing
    said = [w for w in caught if issubclass(w.category, SyntheticModelWarning)]
    assert len(said) == 1 and len(first) == 3
    assert str(said[0].message) == f"{synthetic_cnn}: {note}"
    assert said[0].filename == __file__
