"""Attention heat maps and tag-wise contribution maps (tagger.interpret.attention_maps
and `python -m tagger.commands.attention`) on tiny attention taggers."""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest
import soundfile

from tagger.audio import load_audio
from tagger.commands import attention as cli
from tagger.errors import UserError
from tagger.interpret.attention_maps import (
    check_out_dir,
    choose_tags,
    input_names,
    make_attention_mapper,
    save_maps,
)
from tagger.models.attention import attention_model, tag_contributions
from tagger.models.saved import load_tagger, raw_audio_input
from tests.checks import ROOT as ROOT_DIR
from tests.checks import call_main, is_png, one_line_error, windows_of
from tests.presets import SEGMENT


@pytest.fixture(scope="module")
def self_attention(self_attention_model):
    model, info = load_tagger(str(self_attention_model))
    return model, info, make_attention_mapper(model, info, batch_size=64)


@pytest.fixture(scope="module")
def window_maps(self_attention, audio_files):
    return self_attention[2]([audio_files["window"]])


def test_shapes_steps_and_frames(self_attention, window_maps, audio_files):
    model, info, mapper = self_attention
    maps = window_maps
    tokens = model.get_layer("encoder1").input.shape[1]  # T + 1
    frames = model.get_layer("log_mel").output.shape[1]
    assert (maps.windows, maps.steps_per_window) == (1, tokens - 1) == (1, 336)
    assert maps.spectrogram.shape == (frames, 96) == (336, 96)
    assert maps.frames_per_step == 1 and maps.frames_per_window == frames
    assert maps.attention.shape == maps.received.shape == (1, tokens)
    assert maps.contributions.shape == (336, len(info.tag_names))
    assert maps.window_scores.shape == (1, len(info.tag_names))
    assert maps.audio_samples == maps.window_samples == 2 * SEGMENT
    assert maps.attention_over_time().shape == (336,)
    assert maps.steps_as_frames(maps.contributions).shape == (336, len(info.tag_names))
    # A file of two windows: everything doubles along time.
    double = mapper([audio_files["double"]])
    assert double.windows == 2 and double.spectrogram.shape == (2 * frames, 96)
    assert double.contributions.shape == (2 * 336, len(info.tag_names))


def test_rows_sum_to_the_number_of_heads(window_maps, self_attention, audio_files):
    heads = 2
    for maps in (window_maps, self_attention[2]([audio_files["long"]])):
        assert maps.heads == heads
        np.testing.assert_allclose(maps.attention.sum(axis=1), heads, rtol=1e-5)
        np.testing.assert_allclose(maps.received.sum(axis=1), heads, rtol=1e-5)
        assert (maps.attention >= 0).all() and (maps.received >= 0).all()


@pytest.mark.slow
def test_maps_equal_the_model_access_functions(self_attention, window_maps, audio_files):
    model, info, _ = self_attention
    _, window, to_model_input = raw_audio_input(model, info)
    audio = load_audio(str(audio_files["window"]), 22050)
    assert len(audio) == window
    x = np.asarray(to_model_input(audio[None]))
    expected = tag_contributions(model, x[0], batch_size=50)
    np.testing.assert_allclose(window_maps.contributions, expected, atol=1e-6)
    outputs = attention_model(model).predict(x, verbose=0)
    scores = outputs["encoder1_attention"][0]  # (heads, T + 1, T + 1)
    np.testing.assert_allclose(window_maps.attention[0], scores[:, 0].sum(0), atol=1e-6)
    np.testing.assert_allclose(window_maps.received[0], scores.sum(0).mean(0), atol=1e-6)
    np.testing.assert_allclose(window_maps.scores, outputs["tags"][0], atol=1e-6)
    spectrogram = keras.Model(model.input, model.get_layer("log_mel").output).predict(
        x, verbose=0)[0]
    np.testing.assert_allclose(window_maps.spectrogram, spectrogram, atol=1e-4)


def test_any_length_and_format_is_padded_to_whole_windows(self_attention, audio_files):
    mapper = self_attention[2]
    for name, seconds in (("short", 3.0), ("long", 7.0)):
        maps = mapper([audio_files[name]])
        assert maps.audio_samples == pytest.approx(seconds * 22050, abs=2)
        assert maps.windows == windows_of(maps.audio_samples, 2 * SEGMENT)
        assert maps.seconds > maps.audio_seconds
        # The padded tail of the last window is silence: its frames are flat.
        last = maps.spectrogram[-10:]
        assert np.ptp(last) < 1e-3


def test_concat_length_is_the_sum(self_attention, window_maps, audio_files):
    mapper = self_attention[2]
    double = mapper([audio_files["double"]])
    joined = mapper([audio_files["window"], audio_files["double"]])
    assert joined.name == "window+double"
    assert joined.audio_samples == window_maps.audio_samples + double.audio_samples
    assert joined.windows == window_maps.windows + double.windows == 3
    assert len(joined.contributions) == len(window_maps.contributions) + \
        len(double.contributions)
    # Windows are aligned with the file boundary here, so each part's maps
    # are the parts' own maps.
    np.testing.assert_allclose(joined.contributions[:336], window_maps.contributions,
                               atol=1e-6)
    np.testing.assert_allclose(joined.contributions[336:], double.contributions, atol=1e-6)


def test_transformer_steps_cover_four_frames(transformer_model, audio_files):
    model, info = load_tagger(str(transformer_model))
    maps = make_attention_mapper(model, info)([audio_files["window"]])
    assert maps.frames_per_step == 4
    assert maps.steps_per_window == 29 and maps.frames_per_window == 116
    assert maps.windows == 2  # one-segment windows over a two-segment file
    assert maps.contributions.shape == (58, len(info.tag_names))
    np.testing.assert_allclose(maps.attention.sum(axis=1), 2, rtol=1e-5)
    spread = maps.steps_as_frames(maps.attention_over_time())
    assert spread.shape == (232,)
    np.testing.assert_array_equal(spread[:4], maps.attention[0, 1])


def test_maps_and_figures_go_to_any_gfile_path(window_maps):
    import tensorflow as tf

    paths = save_maps(window_maps, "ram://maps/out", ["piano"])
    assert len(paths) == 7 and all(p.startswith("ram://maps/out/window_") for p in paths)
    assert all(tf.io.gfile.exists(p) for p in paths)
    with tf.io.gfile.GFile("ram://maps/out/window_contributions.npy", "rb") as f:
        np.testing.assert_array_equal(np.load(f), window_maps.contributions)


def test_choose_tags(window_maps):
    top = choose_tags(window_maps, top_k=3)
    scores = window_maps.scores
    assert len(top) == 3
    assert [scores[window_maps.tag_index(t)] for t in top] == sorted(scores, reverse=True)[:3]
    assert choose_tags(window_maps, ["piano", "drums"]) == ["piano", "drums"]
    with pytest.raises(UserError, match="unknown tag 'kazoo'"):
        choose_tags(window_maps, ["kazoo"])


def run_cli(capsys, *argv):
    return call_main(cli.main, capsys, *argv)


def test_cli_writes_arrays_and_figures(self_attention_model, audio_files, tmp_path, capsys):
    out_dir = tmp_path / "maps"
    code, out, err = run_cli(capsys, self_attention_model, audio_files["short"], "--out",
                             out_dir, "--tags", "piano,drums", "--concat",
                             audio_files["window"], audio_files["short"], "--no-progress")
    assert code == 0, err
    assert len(out.strip().splitlines()) == 2
    for name in ("short", "window+short"):
        for kind in ("attention", "contributions"):
            assert is_png(out_dir / f"{name}_{kind}.png")
        meta = json.loads((out_dir / f"{name}_maps.json").read_text())
        assert meta["shown_tags"] == ["piano", "drums"]
        contributions = np.load(out_dir / f"{name}_contributions.npy")
        attention = np.load(out_dir / f"{name}_attention.npy")
        spectrogram = np.load(out_dir / f"{name}_spectrogram.npy")
        received = np.load(out_dir / f"{name}_received.npy")
        assert contributions.shape == (meta["windows"] * 336, len(meta["tag_names"]))
        assert attention.shape == received.shape == (meta["windows"], 337)
        assert spectrogram.shape == (meta["windows"] * 336, 96)
    joined = json.loads((out_dir / "window+short_maps.json").read_text())
    short = json.loads((out_dir / "short_maps.json").read_text())
    assert joined["audio_seconds"] == pytest.approx(2 * SEGMENT / 22050 + short["audio_seconds"])
    assert joined["windows"] == 2 and short["windows"] == 1
    check_out_dir(str(out_dir), ["short", "window+short"])  # our own maps: a rerun replaces them
    (out_dir / "long_attention.png").write_bytes(b"mine")  # a user's file of a map's name
    with pytest.raises(UserError, match="long_attention.png' exists and is not a map"):
        check_out_dir(str(out_dir), ["short", "long"])
    check_out_dir(str(out_dir), ["long"], overwrite=True)


def test_each_input_has_a_file_stem_of_its_own():
    names, stems = input_names([("x/a b.flac",), ("y/a_b.flac",), ("z/a b.wav",),
                                ("a.wav", "b c.ogg")])
    assert names == ["a b", "a_b", "a b-2", "a+b c"]
    assert stems == ["a_b", "a_b-2", "a_b-2-2", "a+b_c"]


def test_cli_errors(self_attention_model, se_dir, audio_files, tmp_path, capsys):
    model = self_attention_model
    good = audio_files["window"]
    code, _, err = run_cli(capsys, model, tmp_path / "missing.wav", "--out", tmp_path)
    one_line_error(code, err, "missing.wav: file not found")
    text = tmp_path / "notes.wav"
    text.write_text("these are not audio samples\n" * 20)
    code, _, err = run_cli(capsys, model, good, text, "--out", tmp_path / "maps")
    one_line_error(code, err, "notes.wav: not decodable audio")
    assert not (tmp_path / "maps").exists()  # every file is checked before any work
    empty = tmp_path / "empty.wav"
    soundfile.write(str(empty), np.zeros(0, np.float32), 22050)
    code, _, err = run_cli(capsys, model, empty, "--out", tmp_path)
    one_line_error(code, err, "empty.wav: no audio samples")
    code, _, err = run_cli(capsys, se_dir / "model.keras", good, "--out", tmp_path)
    one_line_error(code, err, "has no attention layers", "samplecnn_se_multi",
                   "self_attention or transformer")
    code, _, err = run_cli(capsys, tmp_path / "nope.keras", good)
    one_line_error(code, err, "not found")
    code, _, err = run_cli(capsys, model, good, "--tags", "kazoo")
    one_line_error(code, err, "unknown tag(s) ['kazoo']")
    code, _, err = run_cli(capsys, model)
    one_line_error(code, err, "give at least one audio file or --concat A B")
    code, _, err = run_cli(capsys, model, "--concat", good)
    one_line_error(code, err, "--concat")
    code, _, err = run_cli(capsys, model, good, "--tags", "piano", "--top-k", "2")
    one_line_error(code, err, "--top-k applies without --tags only")
    code, _, err = run_cli(capsys, model, good, "--tags", ",")
    one_line_error(code, err, "--tags names no tag")
    code, _, err = run_cli(capsys, model, good, "--out", text)  # a file, not a folder
    one_line_error(code, err, "exists and is not a folder")
    mine = tmp_path / "mine" / "window_maps.json"
    mine.parent.mkdir()
    mine.write_text("{}")
    code, _, err = run_cli(capsys, model, good, "--out", mine.parent)
    one_line_error(code, err, "window_maps.json' exists and is not a map tagger-attention wrote",
                   "--overwrite")
    assert mine.read_text() == "{}" and len(list(mine.parent.iterdir())) == 1


@pytest.mark.slow  # a fresh interpreter: TensorFlow's start-up dominates
def test_real_command_line(self_attention_model, audio_files, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tagger.commands.attention", str(self_attention_model),
         str(audio_files["long"]), "--out", str(tmp_path), "--top-k", "3", "--no-progress"],
        capture_output=True, text=True, cwd=ROOT_DIR)
    assert result.returncode == 0, result.stderr
    assert "long: 7.0 s in 2 window(s)" in result.stdout
    meta = json.loads((tmp_path / "long_maps.json").read_text())
    assert len(meta["shown_tags"]) == 3
    assert is_png(tmp_path / "long_contributions.png")


def test_attention_rows_print_their_scale(window_maps):
    from tagger.interpret.plots import plot_attention

    figure = plot_attention(window_maps)
    values = window_maps.attention_over_time()
    notes = [text.get_text() for text in figure.axes[1].texts]
    assert notes == [f"{np.nanmin(values):.3g}..{np.nanmax(values):.3g}"]
