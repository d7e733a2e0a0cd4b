"""A tagging engine registered by name is a choice of tag.py's --engine and
runs there like the built-in ones; tagger-serve offers it too."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tagger.inference.engine.predictor import Predictor
from tagger.inference.engine.registry import ENGINES, Engine, register_engine
from tests.checks import call_main


class ConstantPredictor(Predictor):
    """Two tags scoring 0.25 and 0.75 on every window of 1000 samples at 8 kHz."""

    sample_rate, window_samples, tag_names = 8000, 1000, ["low", "high"]

    def __call__(self, windows):
        return np.tile(np.float32([0.25, 0.75]), (len(windows), 1)), None


@pytest.fixture
def constant_engine():
    made = []
    register_engine(Engine("constant", lambda model, info, options:
                           made.append(options) or ConstantPredictor()))
    yield made
    ENGINES.unregister("constant")


def test_a_registered_engine_tags_through_tag_py(constant_engine, cnn, music, capsys):
    from tagger.commands import tag as tag_cli

    code, out, err = call_main(tag_cli.main, capsys, cnn[0], music / "a.wav", "--engine",
                               "constant", "--format", "csv", "--no-progress")
    assert code == 0 and err == ""
    header, row = out.splitlines()
    assert header == "path,duration,windows,padded,low,high"
    assert row.split(",")[1:] == ["7.000", "56", "0", "0.250000", "0.750000"]
    assert [options.model_path for options in constant_engine] == [str(cnn[0])]
    code, _, err = call_main(tag_cli.main, capsys, cnn[0], music / "a.wav", "--engine",
                             "constant", "--embeddings", "e.npz")
    assert code == 2 and "--embeddings needs --engine keras, xla, keras-bf16 or auto (" in err


def test_a_registered_engine_is_a_choice_of_tagger_serve(constant_engine):
    from tagger.commands import serve

    assert serve.parse_args(["model.keras", "--engine", "constant"]).engine == "constant"


class SlowPredictor(ConstantPredictor):
    """ConstantPredictor taking a quarter of a second a call: slower than
    Keras on the tiny CNN."""

    def __call__(self, windows):
        time.sleep(0.25)
        return super().__call__(windows)


def test_every_engine_but_keras_and_auto_is_timed_against_keras():
    """tag.py times the engines registered with paced=True against keras
    (tests/inference/test_pace_cache.py runs it with --engine xla)."""
    from tagger.inference.engine import tflite as tflite_engine
    from tagger.inference.engine.registry import engine_named

    assert {name for name in ENGINES if engine_named(name).paced} == {
        "xla", "keras-bf16", *tflite_engine.ENGINES}


@pytest.mark.parametrize("slow", [True, False])
def test_a_paced_engine_is_timed_against_keras_in_one_line(cnn, music, capsys, slow,
                                                           monkeypatch, tmp_path):
    """An engine registered with paced=True gets one line saying how its
    speed compares with the keras engine's on this machine, naming keras as
    the faster engine when it is."""
    from tagger.commands import tag as tag_cli

    monkeypatch.setenv("TAGGER_HOME", str(tmp_path))  # both predictors are "paced": timed anew

    predictor = SlowPredictor() if slow else ConstantPredictor()
    predictor.sample_rate, predictor.window_samples = 22050, 59049  # the CNN's
    register_engine(Engine("paced", lambda model, info, options: predictor, paced=True))
    try:
        code, out, err = call_main(tag_cli.main, capsys, cnn[0], music / "a.wav", "--engine",
                                   "paced", "--batch-size", "4", "--no-progress")
    finally:
        ENGINES.unregister("paced")
    assert code == 0, err
    line, = err.splitlines()
    pace = float(line.split(" at ")[1].split("x ")[0])
    assert line == (f"note: --engine paced runs this model at {pace:.2f}x the speed of "
                    "--engine keras on this machine (4 windows, timed at the start)"
                    + ("; --engine keras is faster" if slow else ""))
    assert pace < 1 if slow else pace > 1
