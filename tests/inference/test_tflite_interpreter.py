"""The TFLite engines say which interpreter runs them; tag.py --help
explains every engine."""

from __future__ import annotations

import sys

import pytest

from tagger.inference.engine.registry import ENGINES


@pytest.mark.slow
def test_without_litert_a_warning_names_tensorflows_interpreter(cnn, monkeypatch):
    from tagger.inference.engine.tflite import TFLitePredictor
    from tagger.models.saved import load_tagger

    model, info = load_tagger(cnn[0])
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    predictor = TFLitePredictor(model, info, "tflite")
    assert predictor.interpreter == "TensorFlow"
    assert "runs on TensorFlow's TFLite interpreter" in predictor.warning
    assert "pip install ai-edge-litert" in predictor.warning


def test_help_explains_every_engine(capsys):
    from tagger.commands import tag as tag_cli

    with pytest.raises(SystemExit):
        tag_cli.parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for engine in ENGINES:
        assert f"{engine}:" in text, engine
    assert "int8 weights and activations" in text and "TensorFlow's own interpreter" in text
