"""--engine auto (engine/auto.py): the fastest engine here whose top-5 tags
agree with keras's by 0.98 or more, else keras; measured once per model and
machine and read from the cache afterwards; one line says which and why.
It is the default of tag.py, tagger-serve and the beets plugin
($TAGGER_ENGINE names another; the suite sets keras in tests/conftest.py)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from tagger import cpu_features
from tagger.errors import UserError
from tagger.inference.engine import auto
from tagger.inference.engine.auto import Measurement, auto_line, choose_engine
from tagger.inference.engine.registry import ENGINES, Engine, EngineOptions, default_engine
from tagger.registry import Registry

CANDIDATE_LINE = re.compile(r"engine auto: (keras|keras-bf16|tflite-int8) \((.+)\)"
                            r"(, measured on .+)?")


def test_the_fastest_engine_keeping_the_tags_is_taken():
    taken = choose_engine({"keras-bf16": Measurement(2.3, 300.0, 0.996, 32),
                           "tflite-int8": Measurement(2.8, 360.0, 0.98, 32)})
    assert taken == "tflite-int8"  # 0.98 is enough
    taken = choose_engine({"keras-bf16": Measurement(2.3, 300.0, 0.996, 32),
                           "tflite-int8": Measurement(2.8, 360.0, 0.979, 32)})
    assert taken == "keras-bf16"  # faster, but not keeping the tags


def test_keras_is_taken_where_no_engine_is_both_faster_and_as_good():
    assert choose_engine({}) == "keras"
    assert choose_engine({"keras-bf16": Measurement(0.7, 90.0, 1.0, 32),  # slower
                          "tflite-int8": Measurement(3.0, 390.0, 0.90, 32)}) == "keras"


def test_the_line_says_what_was_taken_why_and_where():
    measured = {"keras-bf16": Measurement(2.32, 302.0, 0.996, 32),
                "tflite-int8": Measurement(2.09, 272.0, 0.98, 32, "2026-11-27 18:00 UTC")}
    assert auto_line("keras-bf16", measured, {}, "Intel Xeon") == (
        "engine auto: keras-bf16 (2.32x keras's speed, top-5 overlap 0.996), measured on "
        "Intel Xeon at the start and cached and on 2026-11-27 18:00 UTC, read from the cache")
    slow = {"tflite-int8": Measurement(0.8, 100.0, 0.99, 32, "2026-11-27 18:00 UTC")}
    assert auto_line("keras", slow, {"keras-bf16": "this CPU has no bfloat16 units"},
                     "AMD EPYC") == (
        "engine auto: keras (no engine faster with a top-5 overlap of 0.98 or more: "
        "tflite-int8 0.80x keras's speed, top-5 overlap 0.990), measured on AMD EPYC on "
        "2026-11-27 18:00 UTC, read from the cache; keras-bf16 not measured: this CPU has no "
        "bfloat16 units")
    assert auto_line("keras", {}, {"tflite-int8": "no audio to calibrate it on"}, "x") == (
        "engine auto: keras (no other engine measured); tflite-int8 not measured: no audio "
        "to calibrate it on")


def test_the_overlap_is_of_the_top_5_tags_tag_py_lists():
    reference = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.1]] * 2)
    swapped = np.array([[0.9, 0.8, 0.7, 0.6, 0.4, 0.5, 0.1],  # 5th and 6th swapped
                        [0.5, 0.9, 0.8, 0.7, 0.6, 0.1, 0.2]])  # the same 5, reordered
    assert auto.top5_overlap(swapped, reference) == pytest.approx(0.9)
    assert auto.top5_overlap(reference, reference) == 1.0


def test_the_windows_measured_on_are_not_those_int8_calibrates_on(music):
    from tagger.audio import audio_windows
    from tagger.inference.export.quantize import calibration_windows
    from tests.presets import SAMPLE_RATE, SEGMENT

    files = [str(music / name) for name in ("broken.mp3", "long.flac", "a.wav")]
    measured = auto.measurement_windows(files, SAMPLE_RATE, SEGMENT, limit=3)
    calibrated = calibration_windows(files, SAMPLE_RATE, SEGMENT, limit=3)
    whole = np.stack([w for _, w in audio_windows(files[1], SAMPLE_RATE, SEGMENT)])
    # one a file: of long.flac's 22, the centre of the first of two halves (its 6th),
    # where calibration takes the centre of the whole (its 12th); a.wav's first of 2
    np.testing.assert_array_equal(measured[0], whole[5])
    np.testing.assert_array_equal(calibrated[0], whole[11])
    assert measured.shape == (2, SEGMENT)
    assert auto.measurement_windows(files[:1], SAMPLE_RATE, SEGMENT).shape == (0, SEGMENT)


class Candidate:
    """A candidate engine's predictor, standing for the real one (the
    measurement is injected: building the real ones would only cost time)."""

    def __init__(self, name, reference):
        self.engine, self.note, self.warning = name, f"{name}'s own note", None
        self.embedding_layer = reference.embedding_layer


@pytest.fixture
def measured(monkeypatch, tmp_path):
    """auto.measure replaced: the calls it gets (the engines measured), each
    engine given `figures[name]`; the candidates' predictors `Candidate`s,
    each build listed in `built`, in a registry of the test's own (the
    `engines` auto is given); a cache of the test's own; bfloat16 units
    whatever the CPU."""
    monkeypatch.setenv("TAGGER_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(cpu_features, "bfloat16_verdict", lambda gpu=None: (True, "test units"))
    calls, figures, built = [], {}, []

    def measure(predictors, reference, windows, rounds=auto.ROUNDS):
        calls.append(sorted(predictors))
        assert windows.shape[1] == reference.window_samples and len(windows) > 0
        return {name: figures[name] for name in predictors}

    def candidate(name):
        def make(model, info, options):
            built.append(name)
            return Candidate(name, ENGINES.get("keras").make(model, info, options))
        return make

    engines = Registry("engine")
    engines.register("keras", ENGINES.get("keras"))
    for name in auto.CANDIDATES:
        engines.register(name, Engine(name, candidate(name),
                                      embeddings=ENGINES.get(name).embeddings))
    monkeypatch.setattr(auto, "measure", measure)
    return calls, figures, built, engines


def auto_predictor(cnn, music, engines, **options):
    from tagger.models.saved import load_tagger

    model, info = load_tagger(cnn[0])
    files = [str(music / name) for name in ("a.wav", "long.flac", "d.mp3")]
    return auto.make_predictor(model, info, EngineOptions(
        model_path=str(cnn[0]), calibration_audio=lambda: files, **options), engines)


def test_a_measurement_is_kept_and_read_back_without_measuring_again(cnn, music, measured):
    calls, figures, built, engines = measured
    figures.update({"keras-bf16": Measurement(1.5, 200.0, 0.99, 32),
                    "tflite-int8": Measurement(2.5, 300.0, 0.985, 32)})
    first = auto_predictor(cnn, music, engines)
    assert calls == [["keras-bf16", "tflite-int8"]] and built == ["keras-bf16", "tflite-int8"]
    line, own = first.note.splitlines()
    assert first.engine == "tflite-int8" and own == "tflite-int8's own note"
    assert line.startswith("engine auto: tflite-int8 (2.50x keras's speed, top-5 overlap "
                           "0.985), measured on ") and line.endswith(" at the start and cached")
    figures.clear()  # a second measurement would fail
    second = auto_predictor(cnn, music, engines)
    assert calls == [["keras-bf16", "tflite-int8"]]  # not measured again
    assert second.engine == "tflite-int8" and built[2:] == ["tflite-int8"]  # only it built
    assert re.fullmatch(r"engine auto: tflite-int8 \(2\.50x keras's speed, top-5 overlap "
                        r"0\.985\), measured on .+ on \d{4}-\d\d-\d\d \d\d:\d\d UTC, read "
                        r"from the cache", second.note.splitlines()[0])


def test_keras_is_taken_when_the_others_lose_tags(cnn, music, measured):
    from tagger.inference.engine.keras import KerasPredictor

    calls, figures, _, engines = measured
    figures.update({"keras-bf16": Measurement(1.5, 200.0, 0.95, 32),
                    "tflite-int8": Measurement(2.5, 300.0, 0.90, 32)})
    predictor = auto_predictor(cnn, music, engines)
    assert type(predictor) is KerasPredictor and predictor.embedding_layer is None
    assert predictor.note.startswith("engine auto: keras (no engine faster with a top-5 "
                                     "overlap of 0.98 or more: keras-bf16 1.50x")


def test_with_embeddings_only_engines_giving_them_are_candidates(cnn, music, measured):
    calls, figures, _, engines = measured
    figures["keras-bf16"] = Measurement(1.5, 200.0, 0.99, 32)
    predictor = auto_predictor(cnn, music, engines, embeddings=True)
    assert calls == [["keras-bf16"]]  # tflite-int8 gives no embeddings
    assert predictor.embedding_layer is not None and predictor.note.startswith(
        "engine auto: keras-bf16 (1.50x")


def test_without_audio_only_cached_measurements_count(cnn, music, measured):
    """tagger-serve has no audio: tflite-int8 cannot be calibrated, and
    keras-bf16 is taken as a run with audio measured it."""
    from tagger.models.saved import load_tagger

    calls, figures, _, engines = measured
    model, info = load_tagger(cnn[0])
    bare = EngineOptions(model_path=str(cnn[0]))
    predictor = auto.make_predictor(model, info, bare, engines)
    assert calls == [] and predictor.note == (
        "engine auto: keras (no other engine measured); keras-bf16 not measured: no audio to "
        "measure it on (a run of tag.py --engine auto on some music measures it); "
        "tflite-int8 not measured: no audio to calibrate it on")
    figures["keras-bf16"] = Measurement(1.5, 200.0, 0.99, 32)
    auto.make_predictor(model, info, EngineOptions(
        model_path=str(cnn[0]), calibration_audio=lambda: [str(music / "long.flac")],
        embeddings=True), engines)
    predictor = auto.make_predictor(model, info, bare, engines)
    assert calls == [["keras-bf16"]] and predictor.note.startswith(
        "engine auto: keras-bf16 (1.50x")


def test_an_engine_that_cannot_run_here_is_left_out(cnn, music, measured, monkeypatch):
    calls, _, _, engines = measured
    monkeypatch.setattr(cpu_features, "bfloat16_verdict",
                        lambda gpu=None: (False, "no bfloat16 units"))

    def failing(model, info, options):
        raise UserError("no interpreter\nsecond line")

    engines.unregister("tflite-int8")
    engines.register("tflite-int8", Engine("tflite-int8", failing))
    predictor = auto_predictor(cnn, music, engines)
    assert calls == [] and predictor.note == (
        "engine auto: keras (no other engine measured); keras-bf16 not measured: no "
        "bfloat16 units; tflite-int8 not measured: it cannot run here: no interpreter")


def test_the_default_engine_is_auto_unless_tagger_engine_names_another(monkeypatch):
    from tagger.commands import tag as tag_cli
    from tagger.inference.tag.config import TagConfig

    monkeypatch.delenv("TAGGER_ENGINE")
    assert default_engine() == "auto" and TagConfig(model="m", inputs=("a",)).engine == "auto"
    assert tag_cli._default_engine(tag_cli.parse_args(["m", "a"])) == "auto"
    assert tag_cli._default_engine(tag_cli.parse_args(["m", "a", "--runner", "direct",
                                                       "--out", "o.jsonl"])) == "keras"
    monkeypatch.setenv("TAGGER_ENGINE", "tflite")
    assert default_engine() == "tflite"
    monkeypatch.setenv("TAGGER_ENGINE", "fast")
    with pytest.raises(UserError, match=r"^\$TAGGER_ENGINE names the default engine: expected "
                                        r"one of keras, .*auto, got 'fast'; unset it"):
        default_engine()


@pytest.mark.slow
def test_tag_py_tags_with_auto_in_one_line(cnn, music, capsys, monkeypatch, tmp_path):
    """A real run: every candidate this machine has measured on the tiny
    model and kept, one line naming the engine taken, that engine's tags."""
    from tagger.commands import tag as tag_cli
    from tagger.inference.engine.registry import make_predictor
    from tagger.inference.engine.tagging import tag_files
    from tagger.models.saved import load_tagger
    from tests.checks import call_main

    monkeypatch.setenv("TAGGER_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("TAGGER_ENGINE")
    code, out, err = call_main(tag_cli.main, capsys, cnn[0], music / "long.flac",
                               "--format", "csv", "--no-progress", "--batch-size", "8")
    assert code == 0, err
    taken, _, where = CANDIDATE_LINE.fullmatch(err.splitlines()[0]).groups()
    names, _ = auto.candidates(EngineOptions(), audio=True, engines=ENGINES)
    assert len(list((tmp_path / "cache" / auto.FOLDER).glob("*.json"))) == len(names)
    assert (where or "").endswith("at the start and cached") == bool(names)
    model, info = load_tagger(cnn[0])
    predictor = make_predictor(taken, model, info, EngineOptions(
        model_path=str(cnn[0]), calibration_audio=lambda: [str(music / "long.flac")]))
    result, = tag_files(predictor, [str(music / "long.flac")], batch_size=8)
    _, row = out.splitlines()
    np.testing.assert_allclose(np.array(row.split(",")[4:], float), result.clip_scores,
                               atol=1e-6)
