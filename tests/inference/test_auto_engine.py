"""--engine auto (engine/auto.py): the fastest engine here whose top-5 tags
agree with keras's by 0.98 or more, else keras; measured once per model and
machine on enough audio (32 windows of 2 files or more) and read from the
cache afterwards, a smaller run's measurement serving that run only; one
line says which, why and on what audio.
It is the default of tag.py, tagger-serve and the beets plugin
($TAGGER_ENGINE names another; the suite sets keras in tests/conftest.py)."""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest

from tagger import cpu_features
from tagger.errors import UserError
from tagger.inference.engine import auto
from tagger.inference.engine.auto import Measurement, auto_line, choose_engine
from tagger.inference.engine.registry import ENGINES, Engine, EngineOptions, default_engine
from tagger.registry import Registry

CANDIDATE_LINE = re.compile(r"engine auto: (keras|keras-bf16|tflite-int8) \((.+?)\)"
                            r"(, measured on .+)?")


def test_the_fastest_engine_keeping_the_tags_is_taken():
    taken = choose_engine({"keras-bf16": Measurement(2.3, 300.0, 0.996, 32, 3, 16),
                           "tflite-int8": Measurement(2.8, 360.0, 0.98, 32, 3, 16)})
    assert taken == "tflite-int8"  # 0.98 is enough
    taken = choose_engine({"keras-bf16": Measurement(2.3, 300.0, 0.996, 32, 3, 16),
                           "tflite-int8": Measurement(2.8, 360.0, 0.979, 32, 3, 16)})
    assert taken == "keras-bf16"  # faster, but not keeping the tags


def test_keras_is_taken_where_no_engine_is_both_faster_and_as_good():
    assert choose_engine({}) == "keras"
    assert choose_engine({"keras-bf16": Measurement(0.7, 90.0, 1.0, 32, 3, 16),  # slower
                          "tflite-int8": Measurement(3.0, 390.0, 0.90, 32, 3, 16)}) == "keras"


def test_the_line_says_what_was_taken_why_and_where():
    measured = {"keras-bf16": Measurement(2.32, 302.0, 0.996, 32, 3, 16),
                "tflite-int8": Measurement(2.09, 272.0, 0.98, 32, 18, 16, "2026-11-27 18:00 UTC")}
    assert auto_line("keras-bf16", measured, {}, "Intel Xeon") == (
        "engine auto: keras-bf16 (2.32x keras's speed, top-5 overlap 0.996), measured on "
        "Intel Xeon over 32 windows of 3 files at the start and cached and over 32 windows "
        "of 18 files on 2026-11-27 18:00 UTC, read from the cache")
    slow = {"tflite-int8": Measurement(0.8, 100.0, 0.99, 32, 2, 16, "2026-11-27 18:00 UTC")}
    assert auto_line("keras", slow, {"keras-bf16": "this CPU has no bfloat16 units"},
                     "AMD EPYC") == (
        "engine auto: keras (no engine faster with a top-5 overlap of 0.98 or more: "
        "tflite-int8 0.80x keras's speed, top-5 overlap 0.990), measured on AMD EPYC over "
        "32 windows of 2 files on 2026-11-27 18:00 UTC, read from the cache; keras-bf16 not "
        "measured: this CPU has no bfloat16 units")
    small = {"keras-bf16": Measurement(1.2, 150.0, 1.0, 1, 1, 1)}
    assert auto_line("keras-bf16", small, {}, "x", auto.unkept_reason()) == (
        "engine auto: keras-bf16 (1.20x keras's speed, top-5 overlap 1.000), measured on x "
        "over 1 window of 1 file at the start, for this run only (a measurement is cached "
        "from 32 windows of 2 files or more, timed 16 a call)")
    assert auto_line("keras", {}, {"tflite-int8": "no audio to calibrate it on"}, "x") == (
        "engine auto: keras (no other engine measured); tflite-int8 not measured: no audio "
        "to calibrate it on")
    line = auto_line("keras", small, {}, "Intel(R) Xeon(R) Processor", auto.unkept_reason())
    taken, why, where = CANDIDATE_LINE.fullmatch(line).groups()  # the parse the run test reads
    assert (taken, why) == ("keras", "no engine faster with a top-5 overlap of 0.98 or more: "
                                     "keras-bf16 1.20x keras's speed, top-5 overlap 1.000")
    assert where.startswith(", measured on Intel(R) Xeon(R) Processor over 1 window")


def test_the_overlap_is_of_the_top_5_tags_tag_py_lists():
    reference = np.array([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.1]] * 2)
    swapped = np.array([[0.9, 0.8, 0.7, 0.6, 0.4, 0.5, 0.1],  # 5th and 6th swapped
                        [0.5, 0.9, 0.8, 0.7, 0.6, 0.1, 0.2]])  # the same 5, reordered
    assert auto.top5_overlap(swapped, reference) == pytest.approx(0.9)
    assert auto.top5_overlap(reference, reference) == 1.0


class Scorer:
    """A predictor scoring a window by its first `tags` samples, after a
    pause of `pause` seconds a call (wall time, no CPU)."""

    window_samples, sample_rate = 8, 8

    def __init__(self, tags, pause=0.0):
        self.tags, self.pause = tags, pause

    def __call__(self, windows):
        import time

        time.sleep(self.pause)
        return windows[:, :self.tags], None


def test_a_tagger_of_fewer_than_5_tags_is_measured_on_all_its_tags():
    """Three tags in the same order as keras's: a full overlap, so the faster
    engine is taken (over 5 tags it would read 0.6)."""
    windows = np.random.default_rng(0).random((20, 8), np.float32)
    reference = Scorer(3, pause=0.002)
    assert auto.top5_overlap(reference(windows)[0], reference(windows)[0]) == 1.0
    swapped = windows[:, [1, 0, 2, 3]]  # another order, the same 3 tags
    assert auto.top5_overlap(swapped[:, :3], windows[:, :3]) == 1.0
    measured = auto.measure({"keras-bf16": Scorer(3)}, reference, windows, 2)["keras-bf16"]
    assert measured.top5_overlap == 1.0 and measured.speed_of_keras > 1
    assert (measured.windows, measured.files, measured.batch) == (20, 2, auto.TIMED_WINDOWS)
    assert not measured.cacheable()  # 20 windows: fewer than 32
    assert choose_engine({"keras-bf16": measured}) == "keras-bf16"


def test_the_windows_measured_on_are_not_those_int8_calibrates_on(music):
    from tagger.audio import audio_windows
    from tagger.inference.export.quantize import calibration_windows
    from tests.presets import SAMPLE_RATE, SEGMENT

    files = [str(music / name) for name in ("broken.mp3", "long.flac", "a.wav")]
    measured, used = auto.measurement_windows(files, SAMPLE_RATE, SEGMENT, limit=3)
    calibrated = calibration_windows(files, SAMPLE_RATE, SEGMENT, limit=3)
    whole = np.stack([w for _, w in audio_windows(files[1], SAMPLE_RATE, SEGMENT)])
    # one a file: of long.flac's 22, the centre of the first of two halves (its 6th),
    # where calibration takes the centre of the whole (its 12th); a.wav's first of 2
    np.testing.assert_array_equal(measured[0], whole[5])
    np.testing.assert_array_equal(calibrated[0], whole[11])
    assert measured.shape == (2, SEGMENT) and used == 2
    none, used = auto.measurement_windows(files[:1], SAMPLE_RATE, SEGMENT)
    assert none.shape == (0, SEGMENT) and used == 0


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

    def measure(predictors, reference, windows, files, rounds=auto.ROUNDS):
        calls.append(sorted(predictors))
        assert windows.shape[1] == reference.window_samples and len(windows) > 0
        audio = dict(windows=len(windows), files=files,
                     batch=min(len(windows), auto.TIMED_WINDOWS))
        return {name: figures[name]._replace(**audio) for name in predictors}

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


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """Three recordings of 32 windows each: 32 windows of 2 files or more,
    enough audio for a measurement to be cached."""
    import soundfile as sf

    from tests.checks import tone
    from tests.presets import SAMPLE_RATE, SEGMENT

    folder = tmp_path_factory.mktemp("library")
    for seed in range(3):  # one window's tone 32 times
        window = tone(SEGMENT / SAMPLE_RATE, SAMPLE_RATE, 1, 300.0 + 100 * seed, seed)
        sf.write(str(folder / f"{seed}.wav"), np.tile(window, 32), SAMPLE_RATE)
    return [str(folder / f"{seed}.wav") for seed in range(3)]


@functools.cache
def loaded(path):
    """(model, info) of the tagger at `path`, loaded once for the module."""
    from tagger.models.saved import load_tagger

    return load_tagger(path)


def auto_predictor(cnn, music, engines, files=None, **options):
    model, info = loaded(str(cnn[0]))
    files = files or [str(music / name) for name in ("a.wav", "long.flac", "d.mp3")]
    return auto.make_predictor(model, info, EngineOptions(
        model_path=str(cnn[0]), calibration_audio=lambda: files, **options), engines)


def figures_of(speed_bf16, speed_int8):
    return {"keras-bf16": Measurement(speed_bf16, 200.0, 0.99, 0, 0, 0),
            "tflite-int8": Measurement(speed_int8, 300.0, 0.985, 0, 0, 0)}


def test_a_measurement_is_kept_and_read_back_without_measuring_again(cnn, music, library,
                                                                        measured):
    calls, figures, built, engines = measured
    figures.update(figures_of(1.5, 2.5))
    first = auto_predictor(cnn, music, engines, library[:2])
    assert calls == [["keras-bf16", "tflite-int8"]] and built == ["keras-bf16", "tflite-int8"]
    line, own = first.note.splitlines()
    assert first.engine == "tflite-int8" and own == "tflite-int8's own note"
    assert line.startswith("engine auto: tflite-int8 (2.50x keras's speed, top-5 overlap "
                           "0.985), measured on ") and line.endswith(
        " over 32 windows of 2 files at the start and cached")
    figures.clear()  # a second measurement would fail
    second = auto_predictor(cnn, music, engines, [library[0], str(music / "a.wav")])
    assert calls == [["keras-bf16", "tflite-int8"]]  # not measured again
    assert second.engine == "tflite-int8" and built[2:] == ["tflite-int8"]  # only it built
    assert re.fullmatch(r"engine auto: tflite-int8 \(2\.50x keras's speed, top-5 overlap "
                        r"0\.985\), measured on .+ over 32 windows of 2 files on "
                        r"\d{4}-\d\d-\d\d \d\d:\d\d UTC, read from the cache",
                        second.note.splitlines()[0])


def test_a_small_run_is_measured_for_itself_and_caches_nothing(cnn, music, library,
                                                               measured, tmp_path):
    """Two first runs on the same one-window file may measure differently:
    each takes its own choice, and neither leaves it to later runs."""
    calls, figures, _, engines = measured
    one = [str(music / "a.wav")]
    figures.update(figures_of(2.5, 1.5))
    first = auto_predictor(cnn, music, engines, one)
    figures.update(figures_of(1.5, 2.5))
    second = auto_predictor(cnn, music, engines, one)
    assert calls == [["keras-bf16", "tflite-int8"]] * 2
    assert (first.engine, second.engine) == ("keras-bf16", "tflite-int8")
    assert second.note.splitlines()[0].endswith(
        " over 1 window of 1 file at the start, for this run only (a measurement is cached "
        "from 32 windows of 2 files or more, timed 16 a call)")
    assert list((tmp_path / "cache" / auto.FOLDER).glob("*.json")) == []
    figures.update(figures_of(3.0, 1.5))  # a run on enough audio: cached
    assert auto_predictor(cnn, music, engines, library[:2]).engine == "keras-bf16"
    assert len(list((tmp_path / "cache" / auto.FOLDER).glob("*.json"))) == 2
    figures.clear()
    assert auto_predictor(cnn, music, engines, one).engine == "keras-bf16"  # read back
    assert len(calls) == 3


def test_a_run_with_more_audio_than_the_kept_measurement_measures_again(cnn, music, library,
                                                                        measured):
    calls, figures, _, engines = measured
    figures.update(figures_of(2.5, 1.5))
    assert auto_predictor(cnn, music, engines, library[:2]).engine == "keras-bf16"
    figures.update(figures_of(1.5, 2.5))
    fewer_windows = library[:2] + [str(music / "a.wav")]  # 3 files, 11 + 11 + 1 windows
    assert auto_predictor(cnn, music, engines, fewer_windows).engine == "keras-bf16"
    assert len(calls) == 1
    more = auto_predictor(cnn, music, engines, library)  # 32 windows of 3 files
    assert len(calls) == 2 and more.engine == "tflite-int8"
    assert more.note.splitlines()[0].endswith(" over 32 windows of 3 files at the start and "
                                              "cached")
    figures.clear()
    again = auto_predictor(cnn, music, engines, [str(music / "a.wav")])
    assert len(calls) == 2 and again.engine == "tflite-int8" and re.search(
        r" over 32 windows of 3 files on .+ UTC, read from the cache$",
        again.note.splitlines()[0])


def test_a_kept_measurement_of_as_many_files_as_a_run_can_give_is_not_measured_again():
    """The files a measurement reads its 32 windows from, ceil(32 / n) a
    file: a run of 20 files measures on 16 of them, so a kept measurement
    of 16 files is all that run's audio could give (not measured again)."""
    assert [auto.files_measured(n) for n in (1, 2, 3, 9, 20, 31, 32, 40)] == [
        1, 2, 3, 8, 16, 16, 32, 32]


def test_an_entry_of_the_earlier_format_is_measured_again(cnn, music, library, measured):
    """An entry kept before the files and the batch were (here measured on
    one window) neither decides a run nor stops one."""
    from tagger import timing_cache

    calls, figures, _, engines = measured
    for name in auto.CANDIDATES:
        timing_cache.keep_timing(auto.FOLDER, auto.cache_fields(name, str(cnn[0])),
                                 {"speed_of_keras": 3.0 if name == "keras-bf16" else 1.1,
                                  "realtime": 300.0, "top5_overlap": 1.0, "windows": 1.0},
                                 "the measurement")
    figures.update(figures_of(1.5, 2.5))
    small = auto_predictor(cnn, music, engines, [str(music / "a.wav")])
    assert calls == [["keras-bf16", "tflite-int8"]] and small.engine == "tflite-int8"
    assert "for this run only" in small.note
    assert auto_predictor(cnn, music, engines, library).engine == "tflite-int8"
    found = auto.kept_measurement(auto.cache_fields("tflite-int8", str(cnn[0])))
    assert (found.windows, found.files, found.batch, found.speed_of_keras) == (32, 3, 16, 2.5)


def test_keras_is_taken_when_the_others_lose_tags(cnn, music, measured):
    from tagger.inference.engine.keras import KerasPredictor

    calls, figures, _, engines = measured
    figures.update({"keras-bf16": Measurement(1.5, 200.0, 0.95, 32, 3, 16),
                    "tflite-int8": Measurement(2.5, 300.0, 0.90, 32, 3, 16)})
    predictor = auto_predictor(cnn, music, engines)
    assert type(predictor) is KerasPredictor and predictor.embedding_layer is None
    assert predictor.engine == "keras"  # what a results database records
    assert predictor.note.startswith("engine auto: keras (no engine faster with a top-5 "
                                     "overlap of 0.98 or more: keras-bf16 1.50x")


def test_with_embeddings_only_engines_giving_them_are_candidates(cnn, music, measured):
    calls, figures, _, engines = measured
    figures["keras-bf16"] = Measurement(1.5, 200.0, 0.99, 32, 3, 16)
    predictor = auto_predictor(cnn, music, engines, embeddings=True)
    assert calls == [["keras-bf16"]]  # tflite-int8 gives no embeddings
    assert predictor.embedding_layer is not None and predictor.note.startswith(
        "engine auto: keras-bf16 (1.50x")


def test_without_audio_only_cached_measurements_count(cnn, music, library, measured):
    """tagger-serve has no audio: tflite-int8 cannot be calibrated, and
    keras-bf16 is taken as a run with audio measured it."""
    calls, figures, _, engines = measured
    model, info = loaded(str(cnn[0]))
    bare = EngineOptions(model_path=str(cnn[0]))
    predictor = auto.make_predictor(model, info, bare, engines)
    assert calls == [] and predictor.note == (
        "engine auto: keras (no other engine measured); keras-bf16 not measured: no audio to "
        "measure it on (a run of tag.py --engine auto on some music measures it); "
        "tflite-int8 not measured: no audio to calibrate it on")
    figures["keras-bf16"] = Measurement(1.5, 200.0, 0.99, 32, 3, 16)
    auto.make_predictor(model, info, EngineOptions(
        model_path=str(cnn[0]), calibration_audio=lambda: library, embeddings=True), engines)
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
    """A real run on one file: every candidate this machine has measured on
    the tiny model for this run only (too little audio to keep), one line
    naming the engine taken, that engine's tags."""
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
    assert list((tmp_path / "cache" / auto.FOLDER).glob("*.json")) == []
    assert ("over 11 windows of 1 file at the start, for this run only" in (where or "")
            ) == bool(names)
    model, info = load_tagger(cnn[0])
    predictor = make_predictor(taken, model, info, EngineOptions(
        model_path=str(cnn[0]), calibration_audio=lambda: [str(music / "long.flac")]))
    assert predictor.engine == taken
    result, = tag_files(predictor, [str(music / "long.flac")], batch_size=8)
    _, row = out.splitlines()
    np.testing.assert_allclose(np.array(row.split(",")[4:], float), result.clip_scores,
                               atol=1e-6)
