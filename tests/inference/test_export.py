"""export.py: SavedModel and TFLite exports reload and score like the Keras model."""

from __future__ import annotations

import dataclasses
import json
import sys

import numpy as np
import pytest
import tensorflow as tf

from tagger.commands import export as export_cli
from tagger.inference.export.config import ExportConfig
from tagger.inference.export.formats import (
    check_waveforms,
    export,
    tflite_interpreter,
    tflite_ops,
)
from tests.presets import SAMPLE_RATE as RATE
from tests.presets import SEGMENT as WINDOW
from tests.presets import TAGGER_TAGS as TAGS


def keras_scores(kind, fixture, x):
    """The saved Keras model's own scores for raw windows `x`."""
    if kind == "cnn":
        _, model = fixture
        return model.predict(x, verbose=0)
    from tagger.models.spectrogram_input import make_log_mel

    _, model, logmel = fixture
    return model.predict(np.asarray(make_log_mel(logmel, RATE)(x)), verbose=0)


def tag_names(kind):
    return TAGS if kind == "cnn" else [f"mood {i}" for i in range(6)]


@pytest.fixture(params=["cnn", "spectrogram"])
def tagger(request):
    return request.param, request.getfixturevalue(request.param)


@pytest.mark.parametrize("litert", [True, False], ids=["litert", "tensorflow"])
def test_the_ops_of_a_tflite_model_are_listed_in_order_with_their_tensors(monkeypatch, litert):
    """What `tflite_ops` relies on in both interpreters: each op's name and
    the indices of its input and output tensors."""
    import keras

    if litert:
        pytest.importorskip("ai_edge_litert")
    else:  # TensorFlow's own interpreter, as where LiteRT is not installed
        monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    inputs = keras.Input((6, 1), batch_size=1)
    hidden = keras.layers.Conv1D(2, 3, activation="relu", name="conv")(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, name="dense")(
        keras.layers.Flatten()(hidden)))
    content = tf.lite.TFLiteConverter.from_keras_model(model).convert()
    interpreter = tflite_interpreter(content=content)
    assert type(interpreter).__module__.startswith("ai_edge_litert" if litert else "tensorflow")
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    ops = tflite_ops(interpreter)
    assert [op["op_name"] for op in ops if op["op_name"] in ("CONV_2D", "FULLY_CONNECTED")] == [
        "CONV_2D", "FULLY_CONNECTED"]
    assert all(index in names for op in ops for index in [*op["inputs"], *op["outputs"]]
               if index >= 0)
    last = ops[-1]["outputs"][0]
    assert last == interpreter.get_output_details()[0]["index"]


@pytest.mark.slow
def test_saved_model_signatures_scores_and_tags(tagger, tmp_path):
    kind, fixture = tagger
    out = tmp_path / "exported"
    result = export(ExportConfig(model=fixture[0], format="saved_model", out=str(out),
                                 verify=False))
    assert result.path == str(out) and result.window_samples == WINDOW
    x = check_waveforms(WINDOW, batch=3, seed=5)
    expected = keras_scores(kind, fixture, x)

    loaded = tf.saved_model.load(str(out))
    assert set(loaded.signatures) == {"serving_default", "serve", "serve_window", "tags",
                                      "info"}
    batch = loaded.signatures["serving_default"](waveform=tf.constant(x))["scores"]
    np.testing.assert_allclose(batch.numpy(), expected, atol=1e-5)
    np.testing.assert_allclose(loaded.serve(x)["scores"].numpy(), expected, atol=1e-5)
    one = loaded.signatures["serve_window"](waveform=tf.constant(x[1]))["scores"]
    assert one.shape == (len(expected[1]),)
    np.testing.assert_allclose(one.numpy(), expected[1], atol=1e-5)

    names = [t.decode() for t in loaded.signatures["tags"]()["tags"].numpy()]
    assert names == tag_names(kind)
    assert (out / "assets" / "tags.txt").read_text().splitlines() == tag_names(kind)
    info = loaded.signatures["info"]()
    assert int(info["sample_rate"]) == RATE and int(info["window_samples"]) == WINDOW
    extra = json.loads((out / "assets.extra" / "tagger_info.json").read_text())
    assert extra["tag_names"] == tag_names(kind) and extra["window_samples"] == WINDOW
    assert extra["input_kind"] == ("raw" if kind == "cnn" else "logmel")


@pytest.mark.slow
def test_tflite_scores_and_tags(tagger, tmp_path):
    kind, fixture = tagger
    out = tmp_path / "model.tflite"
    result = export(ExportConfig(model=fixture[0], format="tflite", out=str(out)))
    assert result.max_difference < 1e-5  # the export's own check
    assert not result.select_tf_ops  # the STFT converts to built-in ops
    x = check_waveforms(WINDOW, batch=3, seed=7)
    interpreter = tflite_interpreter(str(out))
    assert type(interpreter).__module__.startswith("ai_edge_litert")  # LiteRT, not tf.lite
    runner = interpreter.get_signature_runner("serve")
    for batch in (x, x[:1]):  # the batch dimension is dynamic
        np.testing.assert_allclose(runner(waveform=batch)["scores"],
                                   keras_scores(kind, fixture, batch), atol=1e-5)
    assert (tmp_path / "model.tflite.tags.txt").read_text().splitlines() == tag_names(kind)


@pytest.mark.slow
def test_int8_engine_quantises_activations_and_scores_near_keras(cnn):
    """Full integer quantisation, calibrated on windows like the ones it
    scores: int8 kernels in the graph, float32 in and out, scores within 0.05
    of Keras."""
    from tagger.inference.engine.tflite import TFLitePredictor
    from tagger.models.saved import load_tagger

    model, info = load_tagger(cnn[0])
    calibration = check_waveforms(WINDOW, batch=8, seed=3)
    int8 = TFLitePredictor(model, info, "tflite-int8", calibration=calibration)
    interpreter = tflite_interpreter(content=int8.content)
    ops = tflite_ops(interpreter)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    convolutions = [op for op in ops if op["op_name"] == "CONV_2D"]
    assert convolutions  # the layers that carry the FLOPs, with int8 weights
    assert all(tensors[op["inputs"][1]]["dtype"] == np.int8 for op in convolutions)
    assert {op["op_name"] for op in ops} >= {"QUANTIZE", "DEQUANTIZE"}
    x = check_waveforms(WINDOW, batch=3, seed=9)
    scores, _ = int8(x)
    assert scores.dtype == np.float32 and scores.shape == (3, len(TAGS))
    assert np.abs(scores - keras_scores("cnn", cnn, x)).max() < 0.05
    with pytest.raises(ValueError, match="calibration windows go with int8"):
        TFLitePredictor(model, info, "tflite-int8")
    with pytest.raises(ValueError, match="calibration must be"):
        TFLitePredictor(model, info, "tflite-int8", calibration=calibration[:, :100])


@pytest.mark.slow
def test_int8_engine_of_a_log_mel_model_quantises_the_convolutions_over_the_image(spectrogram):
    """A log-mel tagger's int8: the convolution over the log-mel image has
    int8 weights (in the inference form's stacked taps); the log-mel front
    end (its FFT, its mel product) and the rest stay float32; the scores
    stay near Keras's, with the same top tags."""
    from tagger.inference.engine.tflite import TFLitePredictor
    from tagger.models.saved import load_tagger

    model, info = load_tagger(spectrogram[0])
    int8 = TFLitePredictor(model, info, "tflite-int8",
                           calibration=check_waveforms(WINDOW, batch=8, seed=3))
    interpreter = tflite_interpreter(content=int8.content)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    kinds = {}  # op -> dtypes of its weights (the second input)
    for op in tflite_ops(interpreter):
        if op["op_name"] in ("CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL", "RFFT2D"):
            weights = tensors[op["inputs"][1]] if len(op["inputs"]) > 1 else None
            name = tensors[op["outputs"][0]]["name"]
            kinds.setdefault(op["op_name"], []).append(
                ("front" if "_inference" in name else "log_mel" if "log_mel" in name
                 else "rest", weights["dtype"] if weights else None))
    front = [dtype for where, dtype in kinds["CONV_2D"] if where == "front"]
    assert front and all(dtype == np.int8 for dtype in front)
    assert all(dtype == np.float32 for where, dtype in kinds["CONV_2D"] if where != "front")
    assert all(dtype == np.float32 for _, dtype in kinds.get("FULLY_CONNECTED", []))
    assert "RFFT2D" in kinds  # the STFT, float
    x = check_waveforms(WINDOW, batch=3, seed=9)
    scores, _ = int8(x)
    expected = keras_scores("spectrogram", spectrogram, x)
    assert np.abs(scores - expected).max() < 0.05
    assert [set(np.argsort(-row)[:3]) for row in scores] == \
        [set(np.argsort(-row)[:3]) for row in expected]


def int8_layers_of_convolutions(content):
    """{layer: the dtypes of its CONV_2D weights} of the int8 flatbuffer
    `content`, by the inference form's layer each convolution belongs to
    (`<layer>_inference` in its tensor's name; "rest" for the others)."""
    import re

    interpreter = tflite_interpreter(content=content)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    found = {}
    for op in tflite_ops(interpreter):
        if op["op_name"] == "CONV_2D":
            layer = re.search(r"/(\w+?)_inference(_\d+)?/", tensors[op["outputs"][0]]["name"])
            found.setdefault(layer.group(1) if layer else "rest", set()).add(
                np.dtype(tensors[op["inputs"][1]]["dtype"]).name)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("family, int8", [
    ("pons_vgg", {"conv1"}),  # the 3 x 3 over the image; conv2..5 read 4 channels
    ("pons_musicnn", {f"timbral{i}_conv" for i in (1, 2)}
     | {f"temporal{i}_conv" for i in (1, 2, 3)}),
], ids=["pons_vgg", "pons_musicnn"])
def test_int8_of_a_log_mel_model_quantises_only_the_convolutions_of_one_input_channel(
        family, int8):
    """Of the musicnn package's VGG, int8 is the first convolution only (the
    one over the log-mel image); its other four, rewritten too by the
    inference form (conv, batch norm, pooling reordered), stay float32. Of
    its Musicnn, all five front-end filters; the mid-end stays float32."""
    from tagger.inference.export.formats import ServingModel, tflite_bytes
    from tagger.models import build_model
    from tests.models.test_pons import TINY_MUSICNN, TINY_VGG

    args = TINY_VGG if family == "pons_vgg" else TINY_MUSICNN
    serving = ServingModel(build_model(family, num_tags=3, **args), None)
    content, _ = tflite_bytes(serving, "int8", check_waveforms(serving.window_samples, 4, 3))
    layers = int8_layers_of_convolutions(content)
    assert {layer for layer, dtypes in layers.items() if "int8" in dtypes} == int8
    assert all(dtypes == {"float32"} for layer, dtypes in layers.items() if layer not in int8)
    if family == "pons_vgg":
        assert set(layers) == {f"conv{i}" for i in range(1, 6)}


@pytest.mark.slow
def test_dynamic_engine_warns_that_it_quantises_a_spectrogram_models_front_end(cnn,
                                                                              spectrogram):
    """tflite-dynamic quantises a log-mel model's front end with the rest
    (MTT_musicnn's top-5 tags moved on 28% of recorded windows): its
    predictor says so, naming tflite-int8; not for the sample-level CNN."""
    from tagger.inference.engine.tflite import QUANTISED_FRONT_END, TFLitePredictor
    from tagger.models.saved import load_tagger

    assert TFLitePredictor(*load_tagger(spectrogram[0]), "tflite-dynamic").warning == \
        QUANTISED_FRONT_END["tflite-dynamic"]
    assert "--engine tflite-int8 keeps the front end float32" in \
        QUANTISED_FRONT_END["tflite-dynamic"]
    assert TFLitePredictor(*load_tagger(cnn[0]), "tflite-dynamic").warning is None


def test_int8_scope_follows_the_family_and_the_input(cnn):
    """Full int8 for the sample-level CNN and for a waveform model without
    a family; the convolutions over the log-mel image only for a
    spectrogram family, also one that takes raw audio (a log_mel layer
    inside)."""
    from tagger.config import LogMelConfig
    from tagger.inference.export.quantize import FRONT_END, FULL, int8_scope
    from tagger.models import build_model, family
    from tagger.models.saved import load_tagger

    spec = family("self_attention")
    model = build_model("self_attention", num_tags=3, segments=1, **spec.tiny,
                        logmel=LogMelConfig(n_mels=16, n_fft=512, hop_length=1024))
    assert len(model.inputs[0].shape) == 2  # raw audio in
    cnn_model, cnn_info = load_tagger(cnn[0])
    named = dataclasses.replace(cnn_info, model="self_attention")
    assert int8_scope(model, named) == int8_scope(model, None) == FRONT_END
    assert int8_scope(cnn_model, cnn_info) == int8_scope(cnn_model, None) == FULL
    # a tagger on several bodies: FULL where every body's family is int8 throughout
    for others, scope in (([{"model": "samplecnn"}], FULL), ([{"model": "musicnn"}], FRONT_END),
                          ([{"name": "a body saved before families were kept"}], FRONT_END)):
        joined = dataclasses.replace(cnn_info, base_model={"name": "first", "also": others})
        assert int8_scope(cnn_model, joined) == scope, others


@pytest.mark.slow
def test_int8_that_finds_nothing_to_quantise_says_so_and_exports_nothing(tmp_path, capsys):
    """A model int8 quantises nothing of (Won et al.'s sample-level CNN: a
    waveform family int8 is not measured for, so no full int8, and no
    convolution over a log-mel image): the engine runs it in float32 and
    says so in its warning; export.py writes nothing, in one line."""
    from tagger.inference.engine.tflite import TFLitePredictor
    from tagger.inference.export.quantize import NOTHING_QUANTISED
    from tagger.models import build_model
    from tagger.models.saved import save_tagger
    from tagger.models.tagger_metadata import TaggerMetadata

    model = build_model("sample_level", num_tags=3, n_channels=4)
    info = TaggerMetadata(model="sample_level", model_args={"n_channels": 4},
                          tag_names=("a", "b", "c"), sample_rate=16000, segment_length=59049,
                          window_segments=1, input_kind="raw", logmel=None)
    calibration = check_waveforms(59049, batch=2, seed=3)
    predictor = TFLitePredictor(model, info, "tflite-int8", calibration=calibration)
    assert predictor.warning == f"{NOTHING_QUANTISED}: it runs in float32, as --engine tflite does"
    path = str(tmp_path / "sample_level.keras")
    save_tagger(model, info, path)
    import soundfile as sf

    sf.write(str(tmp_path / "cal.wav"), np.tile(calibration[0], 2), 16000)
    out = tmp_path / "m.tflite"
    code, err = export_lines(capsys, path, "--format", "tflite", "--out", out,
                             "--quantization", "int8", "--calibration-audio",
                             tmp_path / "cal.wav")
    assert code == 2 and len(err) == 1, err
    assert err[0].endswith(f"{NOTHING_QUANTISED}; nothing was written: export it without "
                           "--quantization, or with --quantization fp16 or dynamic")
    assert not out.exists()


def test_cli_refuses_to_overwrite_and_reports_in_one_line(cnn, tmp_path, capsys):
    path, _ = cnn
    out = tmp_path / "model.tflite"
    out.write_bytes(b"keep me")
    assert export_cli.main([path, "--format", "tflite", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite" in err[0] and out.read_bytes() == b"keep me"
    assert export_cli.main([str(tmp_path / "none.keras")]) == 2
    assert "not found" in capsys.readouterr().err
    assert export_cli.main([path, "--format", "saved_model", "--out", str(tmp_path / "sm"),
                            "--no-verify"]) == 0
    stdout = capsys.readouterr().out
    assert f"wrote {tmp_path / 'sm'} (saved_model)" in stdout and "59049 samples" in stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.tflite", "sm"]


def export_lines(capsys, *argv):
    code = export_cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, [line for line in captured.err.splitlines() if line.strip()]


def test_overwrite_replaces_only_what_an_export_writes(cnn, tmp_path, capsys):
    """The destination is checked before any export, so the refusals run on
    a folder laid out as an earlier export; one real export then replaces it
    and writes only what the check lets --overwrite replace."""
    from tagger.inference.export.formats import check_destination

    path, _ = cnn
    out = tmp_path / "sm"
    (out / "variables").mkdir(parents=True)
    (out / "assets").mkdir()
    (out / "saved_model.pb").write_bytes(b"an earlier export")
    (out / "assets" / "tags.txt").write_text("guitar\n")
    earlier = sorted(p.name for p in out.iterdir())
    # a folder with the user's own files: refused, nothing deleted
    (out / "notes.txt").write_text("mine")
    code, err = export_lines(capsys, path, "--out", out, "--overwrite", "--no-verify")
    assert code == 2 and len(err) == 1 and "notes.txt" in err[0], err
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == sorted(earlier + ["notes.txt"])
    assert (out / "saved_model.pb").read_bytes() == b"an earlier export"
    music = tmp_path / "music"
    music.mkdir()
    (music / "song.mp3").write_bytes(b"not really")
    code, err = export_lines(capsys, path, "--out", music, "--overwrite", "--no-verify")
    assert code == 2 and len(err) == 1 and "song.mp3" in err[0]
    assert [p.name for p in music.iterdir()] == ["song.mp3"]
    # an earlier export alone: replaced
    (out / "notes.txt").unlink()
    assert export_lines(capsys, path, "--out", out, "--overwrite", "--no-verify")[0] == 0
    written = sorted(p.name for p in out.iterdir())
    assert set(written) <= {"saved_model.pb", "fingerprint.pb", "variables", "assets",
                            "assets.extra"} and "saved_model.pb" in written
    assert (out / "saved_model.pb").read_bytes() != b"an earlier export"
    assert (out / "assets" / "tags.txt").read_text().splitlines() == TAGS
    check_destination(str(out), "saved_model", True, path)  # a real export is replaceable


def test_outputs_in_the_way_are_one_line(cnn, tmp_path, capsys):
    path, _ = cnn
    a_file = tmp_path / "a_file"
    a_file.write_text("keep")
    folder = tmp_path / "folder.tflite"
    folder.mkdir()
    cases = [
        (("--out", a_file, "--overwrite"), "is a file, not a SavedModel folder"),
        (("--format", "tflite", "--out", folder, "--overwrite"), "is a folder"),
        (("--out", a_file / "sm"), "a part of the path is a file"),
        (("--format", "tflite", "--out", a_file / "deeper" / "m.tflite"),
         "a part of the path is a file"),
    ]
    for argv, needle in cases:
        code, err = export_lines(capsys, path, *argv, "--no-verify")
        assert code == 2 and len(err) == 1 and needle in err[0], (argv, err)
    assert a_file.read_text() == "keep" and folder.is_dir() and not any(folder.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "folder.tflite"]


@pytest.mark.parametrize("fmt, name", [("saved_model", "sm"), ("tflite", "m.tflite")])
def test_a_read_only_out_is_one_line(cnn, capsys, fmt, name):
    import os

    from tests.checks import read_only_path

    path, _ = cnn
    out = read_only_path(name)
    code, err = export_lines(capsys, path, "--format", fmt, "--out", out, "--no-verify")
    assert code == 2 and len(err) == 1 and f"'{out}'" in err[0], err
    assert "permission denied" in err[0], err
    assert not os.path.exists(out)


@pytest.mark.slow
def test_cli_int8_export_is_calibrated_on_the_named_audio(cnn, music, tmp_path, capfd):
    """--quantization int8: int8 convolution weights, float32 in and out,
    scores near Keras; the calibration audio is found in the folder (the
    broken file and the notes passed over), and nothing native is printed."""
    out = tmp_path / "int8.tflite"
    code, err = export_lines(capfd, cnn[0], "--format", "tflite", "--out", out,
                             "--quantization", "int8", "--calibration-audio", music)
    assert code == 0 and err == [], err
    interpreter = tflite_interpreter(str(out))
    ops = tflite_ops(interpreter)
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    convolutions = [op for op in ops if op["op_name"] == "CONV_2D"]
    assert convolutions and all(tensors[op["inputs"][1]]["dtype"] == np.int8
                                for op in convolutions)
    from tagger.inference.export.quantize import calibration_windows
    from tagger.inference.inputs import find_audio

    # scored on windows of the audio it was calibrated on
    x = calibration_windows(find_audio([music]).files, RATE, WINDOW)[:4]
    assert len(x) == 4
    scores = interpreter.get_signature_runner("serve")(waveform=x)["scores"]
    assert scores.dtype == np.float32
    assert np.abs(scores - keras_scores("cnn", cnn, x)).max() < 0.05
    assert (tmp_path / "int8.tflite.tags.txt").read_text().splitlines() == tag_names("cnn")


@pytest.mark.slow
@pytest.mark.parametrize("quantization, stored", [("fp16", np.float16), ("dynamic", np.int8)])
def test_quantized_exports_store_smaller_weights_and_score_near_keras(cnn, tmp_path,
                                                                      quantization, stored):
    result = export(ExportConfig(model=cnn[0], format="tflite", out=str(tmp_path / "q.tflite"),
                                 quantization=quantization))
    assert result.quantization == quantization
    interpreter = tflite_interpreter(str(tmp_path / "q.tflite"))
    assert stored in {t["dtype"] for t in interpreter.get_tensor_details()}
    assert result.max_difference < 0.05  # the export's own check against Keras


@pytest.mark.parametrize("argv, fragment", [
    (["--quantization", "int8"], "add --calibration-audio"),
    (["--calibration-audio", "x.wav"], "goes with --quantization int8 only"),
    (["--format", "saved_model", "--quantization", "fp16"], "--format tflite only"),
])
def test_quantization_flags_that_do_not_fit_are_one_line(cnn, tmp_path, capsys, argv, fragment):
    if "--format" not in argv:
        argv = ["--format", "tflite", *argv]
    code, err = export_lines(capsys, cnn[0], "--out", tmp_path / "m", *argv)
    assert code == 2 and len(err) == 1 and fragment in err[0]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_int8_export_of_a_log_mel_model_is_verified_and_audio_free_folders_are_refused(
        cnn, spectrogram, music, tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("no audio here\n")
    out = tmp_path / "m.tflite"
    code, err = export_lines(capsys, cnn[0], "--format", "tflite", "--out", out,
                             "--quantization", "int8", "--calibration-audio", tmp_path / "notes")
    assert code == 2 and len(err) == 1 and "no decodable audio found" in err[0]
    assert not out.exists()
    result = export(ExportConfig(model=spectrogram[0], format="tflite", out=str(out),
                                 quantization="int8", calibration_audio=(str(music),)))
    assert result.quantization == "int8" and result.max_difference < 0.05  # verified
    assert out.exists()


@pytest.mark.parametrize("kind, fragment", [
    ("nan", "holds NaN or Inf samples"), ("inf", "holds NaN or Inf samples"),
    ("silent", "calibration audio is silent"), ("short", "calibration audio is too short"),
])
def test_int8_export_refuses_calibration_audio_that_cannot_set_ranges(cnn, tmp_path, capsys,
                                                                      kind, fragment):
    """NaN/Inf, silent or too-short calibration audio is one line, and
    nothing is written (before: a traceback from the delegate, or a
    'verified' export at 0.3)."""
    import soundfile as sf

    samples = 0.3 * np.sin(np.arange(3 * WINDOW) / 7.0)
    if kind in ("nan", "inf"):
        samples[WINDOW + 5] = np.nan if kind == "nan" else np.inf
    elif kind == "silent":
        samples[:] = 0.0
    else:
        samples = samples[:RATE // 100]  # 0.01 s
    (tmp_path / "cal").mkdir()
    sf.write(str(tmp_path / "cal" / "x.wav"), samples.astype(np.float32), RATE,
             subtype="FLOAT")
    out = tmp_path / "m.tflite"
    code, err = export_lines(capsys, cnn[0], "--format", "tflite", "--out", out,
                             "--quantization", "int8", "--calibration-audio", tmp_path / "cal")
    assert code == 2 and len(err) == 1 and fragment in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cal"]


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["tflite", "saved_model"])
def test_an_export_above_the_score_bound_fails_and_writes_nothing(cnn, tmp_path, capsys, fmt,
                                                                 monkeypatch):
    out = tmp_path / "m"
    extra = ["--quantization", "dynamic"] if fmt == "tflite" else []
    if fmt == "saved_model":
        # A float32 SavedModel may give the Keras scores bit for bit (no bound
        # is then exceeded): its verification reads scores moved by 1e-6.
        from tagger.inference.export import formats as export_module

        real = export_module.saved_model_scores
        monkeypatch.setattr(export_module, "saved_model_scores",
                            lambda path, x: real(path, x) + 1e-6)
    code, err = export_lines(capsys, cnn[0], "--format", fmt, "--out", out, *extra,
                             "--max-score-difference", "1e-12")
    assert code == 2 and len(err) == 1 and "above the bound 1e-12" in err[0], err
    assert "nothing was written" in err[0] and list(tmp_path.iterdir()) == []
    code, _ = export_lines(capsys, cnn[0], "--format", fmt, "--out", out, *extra)
    assert code == 0 and out.exists()
