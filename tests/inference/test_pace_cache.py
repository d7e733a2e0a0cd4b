"""tag.py's timing of an engine against keras is done once per model,
engine, settings and machine, and read from the cache afterwards
(engine/pace_cache.py)."""

from __future__ import annotations

import json
import os
import re

import pytest

from tagger.commands import tag as tag_cli
from tagger.inference.engine import keras_pace
from tests.checks import read_only_path

TIMED_NOW = re.compile(r"note: --engine (\S+) runs this model at (\d+\.\d\d)x the speed of "
                       r"--engine keras on this machine \(\d+ windows, timed at the start\)"
                       r"; --engine keras is faster")


@pytest.fixture
def timings(monkeypatch, tmp_path):
    """The calls of the timing function, in a cache of the test's own; each
    says the engine runs at 0.62x keras's speed."""
    monkeypatch.setenv("TAGGER_HOME", str(tmp_path / "cache"))
    calls = []

    def timed(predictor, model, info, batch_size=keras_pace.WINDOWS, rounds=keras_pace.ROUNDS):
        calls.append(batch_size)
        return 0.62, max(1, min(batch_size, keras_pace.WINDOWS))

    monkeypatch.setattr(keras_pace, "pace_against_keras", timed)
    return calls


def run_tag(capsys, *argv):
    code = tag_cli.main([str(a) for a in argv] + ["--no-progress", "--format", "csv"])
    _, err = capsys.readouterr()
    return code, [line for line in err.splitlines() if line.strip()]


@pytest.mark.slow
def test_a_second_run_reads_the_timing_from_the_cache(cnn, music, timings, capsys):
    first = run_tag(capsys, cnn[0], music / "a.wav", "--engine", "xla")
    assert first[0] == 0 and len(timings) == 1 and TIMED_NOW.fullmatch(first[1][-1]), first
    second = run_tag(capsys, cnn[0], music / "a.wav", "--engine", "xla")
    assert second[0] == 0 and len(timings) == 1, second  # not timed again
    line, = [line for line in second[1] if "the speed of --engine keras" in line]
    assert re.fullmatch(r"note: --engine xla runs this model at 0\.62x the speed of --engine "
                        r"keras on this machine \(16 windows, timed on \d{4}-\d\d-\d\d "
                        r"\d\d:\d\d UTC, read from the cache\); --engine keras is faster", line)


@pytest.fixture(scope="module")
def predictor(cnn):
    """(keras predictor, model, info) of `cnn`, standing for an engine's."""
    from tagger.inference.engine.keras import KerasPredictor
    from tagger.models.saved import load_tagger

    model, info = load_tagger(cnn[0])
    return KerasPredictor(model, info), model, info


def lines_of(predictor, model_path, engine="xla", batch_size=16):
    from tagger.inference.engine.pace_cache import pace_lines

    scorer, model, info = predictor
    return pace_lines(engine, scorer, model, info, str(model_path), batch_size)


def test_the_key_is_the_models_bytes_the_engine_the_windows_and_the_cpu(
        cnn, predictor, timings, tmp_path, monkeypatch):
    from tagger.inference.engine import pace_cache

    model_file = tmp_path / "model.keras"
    model_file.write_bytes(open(cnn[0], "rb").read())
    lines_of(predictor, cnn[0])
    assert len(timings) == 1
    lines_of(predictor, model_file)  # the same bytes elsewhere: the same model
    assert len(timings) == 1
    model_file.write_bytes(model_file.read_bytes() + b"\0")  # retrained in place
    lines_of(predictor, model_file)
    assert len(timings) == 2
    lines_of(predictor, cnn[0], engine="tflite")
    assert len(timings) == 3
    lines_of(predictor, cnn[0], batch_size=4)  # 4 windows a call, not 16
    assert len(timings) == 4
    lines_of(predictor, cnn[0], batch_size=64)  # 16 windows a call, as with 16
    assert len(timings) == 4
    monkeypatch.setattr("tagger.cpu_features.cpu_model_and_flags",
                        lambda: ("Another CPU @ 3.00GHz", frozenset({"avx2", "fma"})))
    lines_of(predictor, cnn[0])
    assert len(timings) == 5
    lines_of(predictor, cnn[0])
    assert len(timings) == 5
    entries = sorted(os.listdir(os.path.join(os.environ["TAGGER_HOME"], pace_cache.FOLDER)))
    assert len(entries) == 5 and all(name.endswith(".json") for name in entries)


@pytest.mark.parametrize("damage", [b"", b'{"pace": 0.6', b"[0.62]", "pace", "timed"],
                         ids=["empty", "truncated", "not_an_object", "pace_nan", "no_date"])
def test_a_damaged_entry_is_timed_again_and_rewritten(cnn, predictor, timings, damage):
    first = lines_of(predictor, cnn[0])
    folder = os.path.join(os.environ["TAGGER_HOME"], "pace")
    entry, = [os.path.join(folder, name) for name in os.listdir(folder)]
    if isinstance(damage, bytes):
        written = damage
    else:  # one field of a sound entry spoiled
        record = json.loads(open(entry, encoding="utf-8").read())
        record.pop(damage) if damage == "timed" else record.update(pace=float("nan"))
        written = json.dumps(record).encode()
    with open(entry, "wb") as file:
        file.write(written)
    again = lines_of(predictor, cnn[0])
    assert len(timings) == 2 and again == first and len(again) == 1
    assert TIMED_NOW.fullmatch(again[0])
    assert json.loads(open(entry, encoding="utf-8").read())["pace"] == 0.62
    read = lines_of(predictor, cnn[0])
    assert len(timings) == 2 and "read from the cache" in read[0]


@pytest.mark.slow
@pytest.mark.parametrize("blocked", ["read_only", "home_is_a_file", "entry_is_a_folder"])
def test_a_cache_that_cannot_be_written_leaves_the_run_going(cnn, music, timings, capsys,
                                                             monkeypatch, blocked):
    home = os.environ["TAGGER_HOME"]
    reason = None  # of a cache folder that cannot be written
    if blocked == "read_only":
        home = read_only_path("tagger-home")  # skips where /sys accepts new files
        monkeypatch.setenv("TAGGER_HOME", home)
        reason = "permission denied"
    elif blocked == "home_is_a_file":
        open(home, "w").close()
        reason = f"{home} is a file, not a folder"
    else:  # an entry written, then a folder in its place
        assert run_tag(capsys, cnn[0], music / "a.wav", "--engine", "xla")[0] == 0
        entry, = [os.path.join(home, "pace", name) for name in os.listdir(home + "/pace")]
        os.remove(entry)
        os.mkdir(entry)
    timed = len(timings)
    for run in (1, 2):
        code, err = run_tag(capsys, cnn[0], music / "a.wav", "--engine", "xla")
        assert code == 0 and len(timings) == timed + run, err
        assert len(err) == 2 and TIMED_NOW.fullmatch(err[0]), err
        assert err[1].startswith("warning: the timing against keras was not kept in "), err
        assert err[1].endswith("; the next run times it again"), err
        if reason is not None:
            assert err[1] == (f"warning: the timing against keras was not kept in "
                              f"{os.path.join(home, 'pace')} ({reason}; set TAGGER_HOME to a "
                              "folder you may write to); the next run times it again")
