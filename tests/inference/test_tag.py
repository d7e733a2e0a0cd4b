"""tag.py end to end, in-process (tag.main) and once as a real command."""

from __future__ import annotations

import csv
import json
import os
import pathlib
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

from tagger.commands import tag as tag_cli
from tests.checks import HANG_S, reference_windows, save_tagger
from tests.presets import MUSIC_NESTED as NESTED
from tests.presets import MUSIC_TOP_LEVEL as TOP_LEVEL
from tests.presets import SAMPLE_RATE as RATE
from tests.presets import SEGMENT as WINDOW
from tests.presets import TAGGER_TAGS as TAGS

ROOT = pathlib.Path(__file__).parents[2]


def run_tag(capsys, *argv):
    """(exit code, stdout, stderr lines) of tag.main(argv)."""
    try:
        code = tag_cli.main([str(a) for a in argv] + ["--no-progress"])
    except SystemExit as exit:  # argparse's usage errors
        code = exit.code
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


# The line tag.py gives for an engine timed against keras at the start, or
# read from the cache when an earlier run timed it (engine/pace_cache.py);
# its group: the engine.
PACE = re.compile(r"note: --engine (\S+) runs this model at \d+\.\d\dx the speed of --engine "
                  r"keras on this machine \(\d+ windows, (?:timed at the start|"
                  r"timed on \d{4}-\d\d-\d\d \d\d:\d\d UTC, read from the cache)\)"
                  r"(; --engine keras is faster)?")


def paced_engines(err) -> list:
    """The engines named by the pace lines of `err`; None for another line."""
    return [match.group(1) if (match := PACE.fullmatch(line)) else None for line in err]


def expected_scores(model, path, hop=None):
    windows, samples = reference_windows(path, hop=hop)
    return model.predict(windows, verbose=0), samples


@pytest.fixture(scope="module")
def json_report(cnn, music, tmp_path_factory, capsys_module):
    """The JSON report of the music folder (top level), top 3 tags."""
    path, _ = cnn
    out = tmp_path_factory.mktemp("report") / "tags.json"
    code, stdout, err = capsys_module(path, music, "--format", "json", "--top-k", "3",
                                      "--out", out)
    return code, stdout, err, json.loads(out.read_text())


@pytest.fixture(scope="module")
def capsys_module():
    """Runs tag.main and captures its output (module-scoped fixtures cannot
    use capsys)."""
    import contextlib
    import io

    def call(*argv):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = tag_cli.main([str(a) for a in argv] + ["--no-progress"])
        return code, out.getvalue(), [line for line in err.getvalue().splitlines() if line.strip()]

    return call


def test_json_lists_every_audio_file_once_and_skips_the_broken_one(json_report, music):
    code, stdout, err, report = json_report
    assert code == 1  # some input failed, the rest was tagged
    assert stdout == ""  # --out given
    assert [row["path"] for row in report] == [str(music / name) for name in TOP_LEVEL]
    skipped = [line for line in err if line.startswith("skipped")]
    assert len(skipped) == 1 and "broken.mp3" in skipped[0]
    assert "not decodable audio" in skipped[0]
    assert err[-1] == "1 of 7 inputs skipped"


def test_json_windows_padding_rates_and_scores_equal_the_models(json_report, music, cnn):
    _, model = cnn
    _, _, _, report = json_report
    rates = {"a.wav": 22050, "b.flac": 44100, "c.ogg": 16000, "d.mp3": 16000,
             "long.flac": 22050, "short.wav": 22050}
    for row in report:
        name = os.path.basename(row["path"])
        scores, samples = expected_scores(model, row["path"])
        assert row["windows"] == len(scores) == max(1, samples // WINDOW), name
        assert row["padded"] == (name == "short.wav")
        assert row["duration"] == pytest.approx(samples / RATE, abs=1e-3)
        assert row["sample_rate"] == rates[name]
        clip = scores.mean(axis=0)
        best = np.argsort(-clip)[:3]
        assert row["tags"] == [TAGS[i] for i in best], name
        np.testing.assert_allclose(row["scores"], clip[best], atol=1e-5)
        assert row["scores"] == sorted(row["scores"], reverse=True)
    by_name = {os.path.basename(r["path"]): r for r in report}
    assert by_name["long.flac"]["windows"] == 22 and by_name["short.wav"]["windows"] == 1


def test_csv_has_every_tag_in_model_order(cnn, music, tmp_path, capsys):
    path, model = cnn
    code, out, err = run_tag(capsys, path, music / "a.wav", music / "long.flac",
                             "--format", "csv")
    assert code == 0 and err == []
    rows = list(csv.reader(out.splitlines()))
    assert rows[0] == ["path", "duration", "windows", "padded", *TAGS]
    assert [r[0] for r in rows[1:]] == [str(music / "a.wav"), str(music / "long.flac")]
    for row in rows[1:]:
        scores, samples = expected_scores(model, row[0])
        assert int(row[2]) == len(scores) and row[3] == "0"
        assert float(row[1]) == pytest.approx(samples / RATE, abs=1e-3)
        np.testing.assert_allclose([float(v) for v in row[4:]], scores.mean(axis=0),
                                   atol=2e-6)


def test_threshold_lists_every_tag_above_it(cnn, music, capsys):
    path, model = cnn
    file = music / "c.ogg"
    clip = expected_scores(model, file)[0].mean(axis=0)
    threshold = float(np.sort(clip)[-4] - 1e-4)  # exactly four tags pass
    code, out, _ = run_tag(capsys, path, file, "--format", "json",
                           "--threshold", threshold)
    row = json.loads(out)[0]
    assert code == 0 and len(row["tags"]) == 4
    assert row["tags"] == [TAGS[i] for i in np.argsort(-clip)[:4]]
    assert min(row["scores"]) >= threshold
    code, out, _ = run_tag(capsys, path, file, "--format", "json",
                           "--threshold", threshold, "--top-k", "2")
    assert json.loads(out)[0]["tags"] == row["tags"][:2]
    code, out, _ = run_tag(capsys, path, file, "--threshold", "1.0")
    assert code == 0 and "no tag scores 1 or more" in out


def test_table_marks_padded_clips(cnn, music, capsys):
    path, _ = cnn
    code, out, err = run_tag(capsys, path, music / "short.wav", music / "a.wav")
    assert code == 0 and err == []
    lines = out.splitlines()
    short = next(line for line in lines if "short.wav" in line)
    full = next(line for line in lines if "a.wav" in line)
    assert short.endswith("*") and "(0.5 s, 1 window)" in short
    assert not full.endswith("*") and "2 windows" in full
    assert lines[-1].startswith("* shorter than one model window")
    assert sum(1 for line in lines if line.startswith("  ")) == 10  # 5 tags per file


@pytest.mark.slow
def test_recursive_and_hop_overlap(cnn, music, capsys):
    path, model = cnn
    code, out, _ = run_tag(capsys, path, music, "--format", "json", "--recursive",
                           "--hop", "0.5")
    assert code == 1
    report = json.loads(out)
    assert [r["path"] for r in report] == [str(music / n) for n in TOP_LEVEL + NESTED]
    hop = int(round(0.5 * RATE))
    for row in report:
        scores, samples = expected_scores(model, row["path"], hop=hop)
        expected = 1 if samples < WINDOW else (samples - WINDOW) // hop + 1
        assert row["windows"] == expected == len(scores)
        clip = scores.mean(axis=0)
        np.testing.assert_allclose(row["scores"], np.sort(clip)[::-1][:5], atol=1e-5)
    by_name = {os.path.relpath(r["path"], music): r["windows"] for r in report}
    assert by_name["long.flac"] == (60 * RATE - WINDOW) // hop + 1 == 115
    # Without --recursive the subfolder is not searched.
    code, out, _ = run_tag(capsys, path, music / "sub", "--format", "json")
    assert code == 0 and len(json.loads(out)) == 2


@pytest.mark.slow
def test_taggram_and_embeddings(cnn, music, tmp_path, capsys):
    path, model = cnn
    taggrams, npz = tmp_path / "taggrams", tmp_path / "emb.npz"
    code, _, _ = run_tag(capsys, path, music, "--recursive", "--taggram", taggrams,
                         "--embeddings", npz, "--batch-size", "5", "--workers", "3")
    assert code == 1
    names = sorted(p.name for p in taggrams.iterdir())
    stems = ["a.wav", "b.flac", "c.ogg", "d.mp3", "long.flac", "short.wav",
             "sub__a.wav", "sub__e.aiff"]  # the two a.wav do not collide
    assert names == sorted([s + ".npy" for s in stems] + [s + ".png" for s in stems]
                           + ["index.csv"])
    index = dict(list(csv.reader((taggrams / "index.csv").read_text().splitlines()))[1:])
    assert index["sub__a.wav"] == str(music / "sub" / "a.wav")
    embed = keras.Model(model.inputs, model.get_layer("head_relu").output)
    data = np.load(npz)
    assert len(data.files) == 2 * len(stems)
    for stem in stems:
        file = index[stem]
        windows, _ = reference_windows(file)
        grid = np.load(taggrams / f"{stem}.npy")
        assert grid.shape == (len(windows), len(TAGS)) and grid.dtype == np.float32
        np.testing.assert_allclose(grid, model.predict(windows, verbose=0), atol=1e-5)
        assert (taggrams / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        vectors = embed.predict(windows, verbose=0)
        assert data[file + "::windows"].shape == vectors.shape == (len(windows), 64)
        np.testing.assert_allclose(data[file + "::windows"], vectors, atol=1e-4)
        np.testing.assert_allclose(data[file], vectors.mean(axis=0), atol=1e-4)
    assert not [p for p in tmp_path.rglob("*.tmp")]


def test_log_mel_input_model_gets_its_front_end(spectrogram, music, capsys):
    path, model, logmel = spectrogram
    from tagger.models.spectrogram_input import make_log_mel

    code, out, _ = run_tag(capsys, path, music / "d.mp3", "--format", "json",
                           "--top-k", "6")
    row = json.loads(out)[0]
    windows, _ = reference_windows(music / "d.mp3")
    features = np.asarray(make_log_mel(logmel, RATE)(windows))  # (windows, frames, mels)
    clip = model.predict(features, verbose=0).mean(axis=0)
    assert code == 0 and row["windows"] == 3
    assert row["tags"] == [f"mood {i}" for i in np.argsort(-clip)]
    np.testing.assert_allclose(row["scores"], np.sort(clip)[::-1], atol=1e-5)


def test_model_without_tag_names(cnn, music, tmp_path, capsys):
    _, model = cnn
    path = save_tagger(model, None, tmp_path / "bare.keras")
    code, out, err = run_tag(capsys, path, music / "a.wav", "--format", "csv")
    assert code == 0
    assert err == ["warning: the model carries no tag names (not saved by train.py); "
                   "using tag_0..tag_7"]
    assert out.splitlines()[0].endswith(",".join(f"tag_{i}" for i in range(8)))


def test_user_errors_are_one_line_with_exit_2(cnn, music, tmp_path, capsys):
    path, _ = cnn
    empty = tmp_path / "empty"
    (empty / "deeper").mkdir(parents=True)
    (tmp_path / "other.keras").write_text("not a model")
    whole = pathlib.Path(path).read_bytes()
    (tmp_path / "cut.keras").write_bytes(whole[:len(whole) // 2])  # a download cut short
    cases = [
        ((tmp_path / "missing.keras", music), "model file"),
        ((tmp_path / "other.keras", music), "it is not a .keras zip archive"),
        ((tmp_path / "cut.keras", music), "it is not a .keras zip archive"),
        ((music / "a.wav", music), "not a saved Keras model"),
        ((path, empty), "add --recursive"),
        ((path, tmp_path / "nothing_here"), "no audio files found"),
        ((path, music, "--top-k", "0"), "--top-k"),
        ((path, music, "--hop", "0"), "--hop"),
        ((path, music, "--format", "xml"), "--format"),
        ((path, music, "--out", tmp_path / "no" / "dir" / "x.json"), "does not exist"),
    ]
    for argv, needle in cases:
        code, out, err = run_tag(capsys, *argv)
        assert code == 2, argv
        assert len(err) == 1 and needle in err[0], (argv, err)
        assert "Traceback" not in err[0]


def test_outputs_are_replaced_whole(cnn, music, tmp_path, capsys):
    path, _ = cnn
    out = tmp_path / "report.csv"
    earlier = "path,duration,windows,padded,guitar\nold.wav,1.000,1,0,0.5\n"  # tag.py's own
    out.write_text(earlier)
    code, _, _ = run_tag(capsys, tmp_path / "missing.keras", music, "--out", out)
    assert code == 2 and out.read_text() == earlier
    code, _, _ = run_tag(capsys, path, music / "a.wav", "--out", out, "--format", "csv")
    assert code == 0 and out.read_text().startswith("path,duration")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.csv"]


def test_only_bad_inputs_exit_1_with_an_empty_report(cnn, music, tmp_path, capsys):
    path, _ = cnn
    code, out, err = run_tag(capsys, path, music / "broken.mp3", music / "notes.txt",
                             tmp_path / "gone.wav", "--format", "json")
    assert code == 1 and json.loads(out) == []
    assert err[0] == f"skipped {tmp_path / 'gone.wav'}: not found"  # before any decoding
    assert sorted(err[1:3]) == [  # then in the order the decoders finish
        f"skipped {music / 'broken.mp3'}: not decodable audio (unknown format or "
        "damaged file)",
        f"skipped {music / 'notes.txt'}: not decodable audio (unknown format or "
        "damaged file)"]
    assert err[3:] == ["3 of 3 inputs skipped"]


@pytest.mark.slow
def test_command_line(cnn, music):
    """One real process: exit code, stdout JSON, and exactly one stderr line per
    skipped file (the MP3 decoder's own notes hidden)."""
    path, _ = cnn
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, str(ROOT / "tag.py"), path, str(music), "--format", "json",
         "--no-progress"], capture_output=True, text=True, env=env, timeout=HANG_S)
    assert done.returncode == 1, done.stderr
    assert len(json.loads(done.stdout)) == len(TOP_LEVEL)
    assert done.stderr.splitlines() == [
        f"skipped {music / 'broken.mp3'}: not decodable audio (unknown format or "
        "damaged file)", "1 of 7 inputs skipped"]


@pytest.fixture
def odd_folder(music, tmp_path):
    """A folder holding one good file and paths that must never be opened:
    a named pipe, link loops (to a file name and to a folder), a broken link."""
    import shutil

    folder = tmp_path / "odd"
    (folder / "deeper").mkdir(parents=True)
    shutil.copy(music / "a.wav", folder / "good.wav")
    os.mkfifo(folder / "pipe.wav")
    os.symlink("loop_b.mp3", folder / "loop_a.mp3")
    os.symlink("loop_a.mp3", folder / "loop_b.mp3")
    os.symlink("..", folder / "deeper" / "up")  # a folder loop: walked once
    os.symlink("nowhere.flac", folder / "gone.flac")
    return folder


def test_paths_that_are_not_regular_files_are_skipped_with_a_reason(
        cnn, odd_folder, capsys):
    import signal

    path, _ = cnn
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("tag.py hung on a special file"))
    signal.alarm(120)
    try:
        code, out, err = run_tag(capsys, path, odd_folder, odd_folder / "loop_a.mp3",
                                 "/dev/zero", "--recursive", "--format", "json")
    finally:
        signal.alarm(0)
    assert code == 1
    assert [row["path"] for row in json.loads(out)] == [str(odd_folder / "good.wav")]
    assert sorted(err[:-1]) == sorted([
        f"skipped {odd_folder / 'gone.flac'}: broken symlink",
        f"skipped {odd_folder / 'loop_a.mp3'}: symlink loop",
        f"skipped {odd_folder / 'loop_b.mp3'}: symlink loop",
        f"skipped {odd_folder / 'pipe.wav'}: not a regular file (a FIFO)",
        f"skipped {odd_folder / 'loop_a.mp3'}: symlink loop",
        "skipped /dev/zero: not a regular file (a character device)"])
    assert err[-1] == "6 of 7 inputs skipped"


def test_special_files_handed_to_the_pipeline_are_never_opened(cnn, odd_folder):
    """The decoders check too (a library caller may pass any path)."""
    import signal

    from tagger.inference.engine.keras import KerasPredictor
    from tagger.inference.engine.tagging import tag_files
    from tagger.models.saved import load_tagger

    model, info = load_tagger(cnn[0])
    files = [str(odd_folder / "pipe.wav"), "/dev/zero", str(odd_folder / "good.wav")]
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("a decoder opened a pipe"))
    signal.alarm(120)
    try:
        results = sorted(tag_files(KerasPredictor(model, info), files), key=lambda r: r.index)
    finally:
        signal.alarm(0)
    assert [r.error for r in results] == [
        "not a regular file (a FIFO)", "not a regular file (a character device)", None]


def test_nan_audio_is_skipped_and_json_stays_valid(cnn, music, tmp_path, capsys):
    import soundfile as sf

    path, _ = cnn
    x = np.sin(np.arange(3 * RATE) / 10.0).astype(np.float32) * 0.3
    x[RATE] = np.nan
    sf.write(tmp_path / "nan.wav", x, RATE, subtype="FLOAT")
    x[RATE] = np.inf
    sf.write(tmp_path / "inf.wav", x, RATE, subtype="FLOAT")
    out = tmp_path / "tags.json"
    code, _, err = run_tag(capsys, path, tmp_path / "nan.wav", tmp_path / "inf.wav",
                           music / "a.wav", "--format", "json", "--out", out)
    assert code == 1
    assert sorted(err[:2]) == [
        f"skipped {tmp_path / name}: the audio holds NaN or infinite samples"
        for name in ("inf.wav", "nan.wav")]
    report = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(c))
    assert [row["path"] for row in report] == [str(music / "a.wav")]


def test_non_finite_scores_never_reach_a_report():
    from tagger.inference import outputs
    from tagger.inference.engine.tagging import FileResult

    result = FileResult(index=0, path="x.wav", windows=1, samples=10, sample_rate=10,
                        window_samples=10, hop_samples=10,
                        clip_scores=np.array([0.5, np.nan], np.float32))
    with pytest.raises(ValueError):
        outputs.to_json([result], ["a", "b"])


def test_an_empty_result_never_replaces_an_earlier_report(cnn, music, tmp_path, capsys):
    path, _ = cnn
    out = tmp_path / "report.json"
    out.write_text('[{"path": "earlier.mp3"}]\n')
    code, stdout, err = run_tag(capsys, path, music / "broken.mp3", "--format", "json",
                                "--out", out)
    assert code == 1 and stdout == ""
    assert err == [f"skipped {music / 'broken.mp3'}: not decodable audio (unknown format "
                   "or damaged file)",
                   f"1 of 1 inputs skipped; nothing was tagged, so {out} was left as it was"]
    assert out.read_text() == '[{"path": "earlier.mp3"}]\n'
    code, _, err = run_tag(capsys, path, music / "broken.mp3", "--out", tmp_path / "new.csv")
    assert code == 1 and err[-1].endswith("so " + str(tmp_path / "new.csv") + " was not written")
    assert not (tmp_path / "new.csv").exists()


def test_taggram_of_a_padded_file_shades_the_padding(cnn, music):
    from tagger.inference.engine.keras import KerasPredictor
    from tagger.inference.engine.tagging import tag_files
    from tagger.inference.tag.taggram import taggram_figure
    from tagger.models.saved import load_tagger

    model, info = load_tagger(cnn[0])
    files = [str(music / "short.wav"), str(music / "a.wav")]
    short, full = sorted(tag_files(KerasPredictor(model, info), files), key=lambda r: r.index)
    axes = taggram_figure(short, TAGS).axes[0]
    spans = [p.get_x() for p in axes.patches], [p.get_x() + p.get_width() for p in axes.patches]
    assert spans == ([pytest.approx(0.5)], [pytest.approx(WINDOW / RATE)])  # 0.5 s of audio
    assert axes.get_xlim() == pytest.approx((0.0, WINDOW / RATE))
    assert "zero padding" in axes.get_title()
    assert len(taggram_figure(full, TAGS).axes[0].patches) == 0  # nothing padded


def highlighted(figure) -> list[str]:
    """The tags a taggram picture highlights: red tick labels, one marker each."""
    axes = figure.axes[0]
    red = [label.get_text() for label in axes.get_yticklabels()
           if label.get_color() == "tab:red" and label.get_fontweight() == "bold"]
    markers = [line for line in axes.lines if line.get_marker() == ">"]
    assert len(markers) == len(red)
    return red


@pytest.mark.parametrize("selection", ["threshold", "top-k", "threshold above all"])
def test_taggram_highlights_the_tags_the_report_lists(cnn, music, tmp_path, capsys,
                                                      monkeypatch, selection):
    from tagger.inference.tag import taggram

    files = [music / n for n in ("a.wav", "c.ogg", "long.flac")]
    code, out, _ = run_tag(capsys, cnn[0], *files, "--format", "json", "--top-k", "3")
    first = {row["path"]: row["scores"] for row in json.loads(out)}[str(files[0])]
    flags = {"threshold": ("--threshold", f"{(first[1] + first[2]) / 2:.6f}"),
             "top-k": ("--top-k", "2"), "threshold above all": ("--threshold", "0.99")}
    drawn = {}
    real = taggram.taggram_figure

    def seen(result, *args, **kwargs):
        figure = real(result, *args, **kwargs)
        drawn[result.path] = highlighted(figure)
        return figure

    monkeypatch.setattr(taggram, "taggram_figure", seen)
    code, out, _ = run_tag(capsys, cnn[0], *files, *flags[selection], "--format", "json",
                           "--taggram", tmp_path / "taggrams")
    listed = {row["path"]: row["tags"] for row in json.loads(out)}
    assert code == 0 and set(drawn) == set(listed) == {str(f) for f in files}
    for path, tags in listed.items():
        assert sorted(drawn[path]) == sorted(tags), path
    counts = [len(listed[str(f)]) for f in files]
    if selection == "top-k":
        assert counts == [2, 2, 2]
    elif selection == "threshold above all":
        assert counts == [0, 0, 0]
    else:  # the threshold lies between a.wav's second and third highest scores
        assert counts[0] == 2


@pytest.mark.slow  # four TFLite conversions: about 30 s
def test_tflite_engines_score_like_keras(cnn, music, capsys):
    path, _ = cnn

    def scores(*flags):
        code, out, err = run_tag(capsys, path, music / "a.wav", music / "short.wav",
                                 "--format", "csv", *flags)
        assert code == 0 and paced_engines(err) == list(flags[1:]), err  # one for a paced engine
        return np.array([row[4:] for row in csv.reader(out.splitlines()[1:])], np.float64)

    keras_scores = scores()
    np.testing.assert_allclose(scores("--engine", "tflite"), keras_scores, atol=1e-5)
    dynamic = scores("--engine", "tflite-dynamic")  # int8 weights: close, not equal
    assert np.abs(dynamic - keras_scores).max() < 0.05
    half = scores("--engine", "tflite-fp16")  # float16 weights: closer still
    assert np.abs(half - keras_scores).max() < 0.01
    full = scores("--engine", "tflite-int8")  # int8 activations too, ranges from the files
    assert np.abs(full - keras_scores).max() < 0.05
    assert not np.array_equal(full, dynamic)
    code, _, err = run_tag(capsys, path, music / "a.wav", "--engine", "tflite",
                           "--embeddings", "x.npz")
    assert code == 2 and len(err) == 1
    assert "--embeddings needs --engine keras, xla, keras-bf16 or auto (" in err[0]


def test_int8_engine_without_decodable_audio_is_one_line(cnn, music, capsys):
    code, out, err = run_tag(capsys, cnn[0], music / "broken.mp3", "--engine", "tflite-int8")
    assert code == 2 and out == "" and len(err) == 1
    assert "none of the inputs could be decoded" in err[0]


@pytest.mark.slow
def test_xla_engine_scores_like_keras_and_reuses_one_compiled_batch(cnn, music, capsys):
    path, model = cnn

    def scores(*flags):
        code, out, err = run_tag(capsys, path, music / "a.wav", music / "short.wav",
                                 "--format", "csv", "--batch-size", "3", *flags)
        assert code == 0 and paced_engines(err) == list(flags[1:]), err
        return np.array([row[4:] for row in csv.reader(out.splitlines()[1:])], np.float64)

    from tagger.inference.engine.keras import KerasPredictor
    from tagger.models.saved import load_tagger

    np.testing.assert_allclose(scores("--engine", "xla"), scores(), atol=1e-5)
    predictor = KerasPredictor(*load_tagger(path), embeddings=True, jit_compile=True)
    windows = np.random.default_rng(0).standard_normal((5, WINDOW)).astype(np.float32)
    full, embeddings = predictor(windows)
    part, part_embeddings = predictor(windows[:2])  # padded to the 5 rows compiled
    assert part.shape == (2, len(TAGS)) and part_embeddings.shape[0] == 2
    np.testing.assert_allclose(part, full[:2], atol=1e-6)
    np.testing.assert_allclose(full, model.predict(windows, verbose=0), atol=1e-5)
    assert predictor._call.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_a_read_only_out_is_one_line(cnn, music, capsys, fmt):
    from tests.checks import read_only_path

    path, _ = cnn
    out = read_only_path(f"tags.{fmt}")
    code, stdout, err = run_tag(capsys, path, music / "a.wav", "--format", fmt, "--out", out)
    assert code == 2 and len(err) == 1 and f"'{out}'" in err[0], err
    assert "permission denied" in err[0] and "Traceback" not in err[0], err
    assert stdout == "" and not os.path.exists(out)


def test_calibration_windows_spread_over_files_and_within_each(music):
    from tagger.audio import audio_windows
    from tagger.inference.export.quantize import calibration_windows

    files = [str(music / name) for name in ("broken.mp3", "a.wav", "long.flac", "d.mp3")]
    windows = calibration_windows(files, RATE, WINDOW, limit=8)
    # the broken file passed over; at most ceil(8 / 4) = 2 from each: a.wav's 2, then 2
    # of long.flac's 22 (its 6th and 17th: the centres of two equal parts of it), then 2
    # of d.mp3's 3 (its first and last)
    assert windows.shape == (6, WINDOW) and windows.dtype == np.float32
    whole = {name: np.stack([w for _, w in audio_windows(str(music / name), RATE, WINDOW)])
             for name in ("a.wav", "long.flac", "d.mp3")}
    np.testing.assert_array_equal(windows[:2], whole["a.wav"])
    np.testing.assert_array_equal(windows[2:4], whole["long.flac"][[5, 16]])
    np.testing.assert_allclose(windows[4:], whole["d.mp3"][[0, 2]], atol=3e-6)  # resampled
    np.testing.assert_array_equal(calibration_windows(files, RATE, WINDOW, limit=8), windows)
    one = calibration_windows([str(music / "long.flac")], RATE, WINDOW, limit=5)
    np.testing.assert_array_equal(one, whole["long.flac"][[2, 6, 11, 15, 19]])
    assert calibration_windows([str(music / "broken.mp3")], RATE, WINDOW).shape == (0, WINDOW)
