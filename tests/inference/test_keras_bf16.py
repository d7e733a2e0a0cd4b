"""The keras-bf16 engine: the model in mixed bfloat16, its scores close to
float32's, a choice wherever the other engines are, one line on a CPU
without bfloat16 units, timed against keras like the other engines."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tagger import cpu_features
from tagger.commands import tag as tag_cli
from tagger.inference.engine import keras_pace
from tagger.inference.engine.registry import EngineOptions, make_predictor

NOTE = ("--engine keras-bf16: the model in mixed bfloat16 (this CPU has AVX-512 BF16 "
        "instructions; the front end and the tag scores float32; --engine keras gives "
        "float32's exact scores)")
SLOWER = ("warning: --engine keras-bf16 will be slower than float32 here: this CPU has "
          "neither AMX-BF16 matrix units nor AVX-512 BF16 instructions; use --engine keras, "
          "or --engine tflite-int8 for speed")


@pytest.fixture(scope="module")
def loaded(cnn):
    from tagger.models.saved import load_tagger

    return load_tagger(cnn[0])


@pytest.fixture(scope="module")
def windows(loaded):
    """Eight windows of tones in noise for the tiny CNN."""
    from tagger.models.saved import raw_audio_input

    _, window, _ = raw_audio_input(*loaded)
    rng = np.random.default_rng(0)
    t = np.arange(window) / 22050
    tones = [0.3 * np.sin(2 * np.pi * (110 * (k + 1)) * t) for k in range(8)]
    return (np.stack(tones) + 0.05 * rng.standard_normal((8, window))).astype(np.float32)


def test_the_model_computes_in_bfloat16_but_its_scores_layer(loaded):
    import keras

    from tagger.inference.engine.keras_bf16 import bfloat16_model

    model, _ = loaded
    copy = bfloat16_model(model)
    policies = {layer.name: layer.dtype_policy.name for layer in copy.layers
                if not isinstance(layer, keras.layers.InputLayer)}
    assert policies.pop("tags") == "float32" and copy.outputs[0].dtype == "float32"
    assert set(policies.values()) == {"mixed_bfloat16"} and len(policies) > 10
    for ours, theirs in zip(copy.weights, model.weights):  # float32 variables, the same values
        assert ours.dtype == "float32"
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))


@pytest.fixture(scope="module")
def musicnn():
    """(model, info) of an untrained package Musicnn at a sixteenth of its
    filters, its LogMel front end inside, as MTT_musicnn is saved."""
    import dataclasses

    import keras

    from tagger.models import build_model
    from tagger.models.pons_musicnn import LOGMEL, SAMPLE_RATE, SEGMENT_LENGTH
    from tagger.models.tagger_metadata import TaggerMetadata

    keras.utils.set_random_seed(0)
    sizes = dict(timbral_filters=13, temporal_filters=3, midend_channels=4, dense_units=12)
    model = build_model("pons_musicnn", num_tags=5, **sizes)
    info = TaggerMetadata(model="pons_musicnn", model_args=sizes,
                          tag_names=[f"tag {i}" for i in range(5)], sample_rate=SAMPLE_RATE,
                          segment_length=SEGMENT_LENGTH, window_segments=1, input_kind="raw",
                          logmel=dataclasses.asdict(LOGMEL))
    return model, info


def test_a_front_end_inside_the_model_stays_float32(musicnn):
    from tagger.inference.engine.keras_bf16 import bfloat16_model
    from tagger.layers import LogMel

    model, info = musicnn
    copy = bfloat16_model(model)
    front, = [layer for layer in copy.layers if isinstance(layer, LogMel)]
    assert front.dtype_policy.name == "float32" and front.output.dtype == "float32"
    assert copy.get_layer("tags").dtype_policy.name == "float32"
    convolutions = [layer for layer in copy.layers if "Conv" in type(layer).__name__]
    assert convolutions and {c.dtype_policy.name for c in convolutions} == {"mixed_bfloat16"}
    window = int(model.inputs[0].shape[1])
    audio = 0.3 * np.random.default_rng(1).standard_normal((4, window)).astype(np.float32)
    theirs, _ = make_predictor("keras", model, info)(audio)
    ours, _ = make_predictor("keras-bf16", model, info)(audio)
    assert 0 < np.abs(ours - theirs).max() < 0.02


def test_a_nested_body_computes_in_bfloat16_too():
    """A tagger of two bodies (train.py --from A --from B) holds the second
    as a nested model: its layers are rebuilt in bfloat16 as well."""
    import keras

    from tagger.inference.engine.keras_bf16 import bfloat16_model

    inputs = keras.Input((8,))
    inner = keras.Input((8,))
    body = keras.Model(inner, keras.layers.Dense(4, name="inner_dense")(inner), name="body_2")
    joined = keras.layers.Concatenate()([keras.layers.Dense(4)(inputs), body(inputs)])
    model = keras.Model(inputs, keras.layers.Dense(3, activation="sigmoid", name="tags")(joined))
    copy = bfloat16_model(model)
    assert copy.get_layer("body_2").get_layer("inner_dense").dtype_policy.name == \
        "mixed_bfloat16"
    assert copy.get_layer("tags").dtype_policy.name == "float32"
    x = np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32)
    assert np.abs(np.asarray(copy(x)) - np.asarray(model(x))).max() < 0.02


def test_scores_and_embeddings_are_close_to_float32s(loaded, windows):
    model, info = loaded
    options = EngineOptions(embeddings=True)
    f32_scores, f32_vectors = make_predictor("keras", model, info, options)(windows)
    bf16 = make_predictor("keras-bf16", model, info, options)
    scores, vectors = bf16(windows)
    assert scores.dtype == vectors.dtype == np.float32
    assert scores.shape == f32_scores.shape == (8, len(bf16.tag_names))
    assert vectors.shape == f32_vectors.shape
    difference = np.abs(scores - f32_scores).max()
    # bfloat16 (8 bits of mantissa) moves the scores, a little: a float32 run
    # gives 0, a model computing in float16 or unloaded weights far more
    assert 1e-5 < difference < 0.02, difference
    assert np.abs(vectors - f32_vectors).max() < 0.05 * np.abs(f32_vectors).max()
    top = np.argsort(-f32_scores, axis=1)[:, :3]
    assert (np.argsort(-scores, axis=1)[:, :3] == top).mean() >= 0.9


def run_tag(capsys, *argv):
    code = tag_cli.main([str(a) for a in argv] + ["--no-progress", "--format", "csv"])
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line.strip()]


@pytest.fixture
def cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("TAGGER_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def bf16_cpu(monkeypatch):
    """This CPU, said to have AVX-512 BF16 (and no AMX), and no GPU."""
    monkeypatch.setattr(cpu_features, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    monkeypatch.setattr(cpu_features, "gpu_capability", lambda: None)


GPU_NOTE = ("--engine keras-bf16: the model in mixed bfloat16 (this GPU (compute capability "
            "8.6) has bfloat16 tensor cores; the front end and the tag scores float32; "
            "--engine keras gives float32's exact scores)")
GPU_SLOWER = ("--engine keras-bf16 will be slower than float32 here: this GPU (compute "
              "capability 7.5) has no bfloat16 tensor cores (they start at 8.0); use --engine "
              "keras, or --engine tflite-int8 for speed")


@pytest.mark.parametrize("cpu_flags, gpu, note, warning", [
    ({"avx512f", "avx512_bf16"}, None, NOTE, None),
    ({"avx2", "fma", "avx512f"}, None, None, SLOWER.removeprefix("warning: ")),
    ({"avx2", "fma", "avx512f"}, (8, 6), GPU_NOTE, None),  # the CPU's flags do not count
    ({"avx512f", "avx512_bf16", "amx_bf16"}, (7, 5), None, GPU_SLOWER),
])
def test_the_precision_line_judges_the_device_the_model_runs_on(monkeypatch, cpu_flags, gpu,
                                                                note, warning):
    from tagger.inference.engine.keras_bf16 import precision_line

    monkeypatch.setattr(cpu_features, "cpu_flags", lambda: set(cpu_flags))
    assert precision_line(gpu) == (note, warning)


@pytest.mark.parametrize("gpus, details, capability", [
    ([], None, None),
    (["GPU:0"], {"compute_capability": (7, 5), "device_name": "Tesla T4"}, (7, 5)),
    (["GPU:0"], {}, ()),
])
def test_the_gpu_capability_is_tensorflows_first_gpus(monkeypatch, gpus, details, capability):
    import tensorflow as tf

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: gpus)
    monkeypatch.setattr(tf.config.experimental, "get_device_details", lambda device: details)
    assert cpu_features.gpu_capability() == capability


def test_on_a_gpu_the_engine_warns_from_the_gpus_capability_not_the_cpus(loaded, monkeypatch):
    model, info = loaded
    monkeypatch.setattr(cpu_features, "cpu_flags", lambda: {"avx2", "fma", "avx512f"})
    monkeypatch.setattr(cpu_features, "gpu_capability", lambda: (8, 6))
    predictor = make_predictor("keras-bf16", model, info)
    assert (predictor.note, predictor.warning) == (GPU_NOTE, None)
    monkeypatch.setattr(cpu_features, "cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    monkeypatch.setattr(cpu_features, "gpu_capability", lambda: (7, 5))
    predictor = make_predictor("keras-bf16", model, info)
    assert (predictor.note, predictor.warning) == ("", GPU_SLOWER)


@pytest.mark.slow
def test_tag_py_tags_in_bfloat16_says_so_and_is_timed_once(cnn, music, cache_home,
                                                           bf16_cpu, capsys, tmp_path):
    code, keras_out, err = run_tag(capsys, cnn[0], music / "a.wav")
    assert code == 0 and err == []
    code, out, err = run_tag(capsys, cnn[0], music / "a.wav", "--engine", "keras-bf16",
                             "--embeddings", tmp_path / "e.npz")
    assert code == 0, err
    note, pace = err
    assert note == NOTE
    assert pace.startswith("note: --engine keras-bf16 runs this model at ") and pace.endswith(
        "the speed of --engine keras on this machine (16 windows, timed at the start)"
        + ("; --engine keras is faster" if " at 0." in pace else ""))
    header, row = out.splitlines()
    keras_header, keras_row = keras_out.splitlines()
    assert header == keras_header
    ours, theirs = (np.float32(r.split(",")[4:]) for r in (row, keras_row))
    assert row.split(",")[:4] == keras_row.split(",")[:4]
    assert 0 < np.abs(ours - theirs).max() < 0.02
    vectors = np.load(tmp_path / "e.npz")[str(music / "a.wav")]  # the file's mean
    assert vectors.dtype == np.float32 and vectors.shape == (64,) and vectors.any()
    entry, = (cache_home / "pace").glob("*.json")
    assert json.loads(entry.read_text())["engine"] == "keras-bf16"
    code, _, err = run_tag(capsys, cnn[0], music / "a.wav", "--engine", "keras-bf16",
                           "--embeddings", tmp_path / "again.npz")
    assert code == 0 and err[0] == NOTE and ", read from the cache)" in err[1]
    assert len(list((cache_home / "pace").glob("*.json"))) == 1


def test_a_cpu_without_bfloat16_units_gets_one_line_and_the_run_goes_on(
        cnn, music, monkeypatch, capsys, cache_home):
    monkeypatch.setattr(cpu_features, "cpu_flags", lambda: {"avx2", "fma", "avx512f"})
    monkeypatch.setattr(cpu_features, "gpu_capability", lambda: None)
    monkeypatch.setattr(keras_pace, "pace_against_keras", lambda *args, **kwargs: (0.4, 16))
    code, out, err = run_tag(capsys, cnn[0], music / "a.wav", "--engine", "keras-bf16")
    assert code == 0 and len(out.splitlines()) == 2
    slower, pace = err
    assert slower == SLOWER
    assert pace == ("note: --engine keras-bf16 runs this model at 0.40x the speed of --engine "
                    "keras on this machine (16 windows, timed at the start); --engine keras "
                    "is faster")


def test_every_engine_choice_offers_it():
    from tagger.commands import serve
    from tagger.inference.tag.config import TagConfig

    args = tag_cli.parse_args(["m.keras", "a.wav", "--engine", "keras-bf16"])
    assert args.engine == "keras-bf16"
    assert serve.parse_args(["model.keras", "--engine", "keras-bf16"]).engine == "keras-bf16"
    config = TagConfig(model="m.keras", inputs=("a.wav",), engine="keras-bf16",
                       embeddings="e.npz")
    assert config.engine == "keras-bf16"


def test_a_self_attention_tagger_on_log_mel_records_runs_in_bfloat16(spectrogram):
    import keras

    from tagger.models.saved import load_tagger

    model, info = load_tagger(spectrogram[0])
    keras_engine = make_predictor("keras", model, info)
    audio = 0.3 * np.random.default_rng(2).standard_normal(
        (4, keras_engine.window_samples)).astype(np.float32)
    theirs, _ = keras_engine(audio)
    ours, _ = make_predictor("keras-bf16", model, info)(audio)
    assert ours.shape == theirs.shape == (4, 6)
    assert 0 < np.abs(ours - theirs).max() < 0.02
    assert keras.config.dtype_policy().name == "float32"  # the global policy as it was
