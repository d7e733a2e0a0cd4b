"""The extension points, used as docs/architecture.md says: a model family,
a converter, a tagging engine and a dataset source defined in a module
outside the package and registered through the registries alone, then run
through train.py, convert_weights.py, tag.py, tagger-serve and a build
command like the built-in ones; the four registries keep one rule."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from tests.checks import call_main, write_audio

TOY_MODULE = '''
"""A toy family (frames of 243 samples, one hidden layer, mean over
frames), a converter of its weights from .npz, a NumPy engine for it and
a dataset source (a folder of audio by another name)."""
import dataclasses

import keras
import numpy as np

from tagger.convert.converter import Converter, Option
from tagger.datasets import folder
from tagger.inference.engine.predictor import Predictor
from tagger.inference.engine.registry import Engine
from tagger.models.family_spec import FamilySpec, ModelFlag, Preset
from tagger.models.spectrogram_input import Preprocessor

PREPROCESSOR = Preprocessor()
FRAME = 243


def build_toy(num_tags=50, *, units=4, input_length=None):
    waveform = PREPROCESSOR.waveform(input_length)
    frames = keras.layers.Reshape((-1, FRAME), name="frames")(waveform)
    hidden = keras.layers.Dense(units, activation="relu", name="hidden")(frames)
    pooled = keras.layers.GlobalAveragePooling1D(name="embedding")(hidden)
    tags = keras.layers.Dense(num_tags, activation="sigmoid", name="tags")(pooled)
    return keras.Model(waveform, tags, name="toy")


FAMILY = FamilySpec(
    name="toy", build=build_toy, paper="none", preprocessor=PREPROCESSOR,
    schedule="staged", flags=(ModelFlag("toy_units", help="hidden units", argument="units",
                                        metavar="N"),),
    embedding_layer="embedding", int8=False, analyses=(), demo=Preset({"units": 4}),
    tiny={"units": 4}, bench=())


def convert_npz(path, scale=None):
    arrays = np.load(path)
    factor = float(scale or 1)
    units, num_tags = arrays["tags_kernel"].shape
    model = build_toy(num_tags, units=units, input_length=59049)
    model.get_layer("hidden").set_weights([arrays["hidden_kernel"] * factor,
                                           arrays["hidden_bias"]])
    model.get_layer("tags").set_weights([arrays["tags_kernel"], arrays["tags_bias"]])
    return model, dict(model="toy", model_args={"units": units}, sample_rate=22050,
                       window_segments=1, logmel=None,
                       default_tags=[str(t) for t in arrays["tag_names"]])


CONVERTER = Converter("toy", convert_npz,
                      lambda options: ("calm", "loud"),
                      options=(Option("scale", ("1", "2"), help="hidden weights times"),))


class NumpyPredictor(Predictor):
    """The toy model's forward pass in NumPy."""

    def __init__(self, model, info):
        self.sample_rate, self.tag_names = info.sample_rate, list(info.tag_names)
        self.window_samples = info.window_segments * info.segment_length
        self.weights = (model.get_layer("hidden").get_weights()
                        + model.get_layer("tags").get_weights())

    def __call__(self, windows):
        hidden_kernel, hidden_bias, tags_kernel, tags_bias = self.weights
        frames = np.asarray(windows, np.float64).reshape(len(windows), -1, FRAME)
        pooled = np.maximum(frames @ hidden_kernel + hidden_bias, 0).mean(axis=1)
        scores = 1 / (1 + np.exp(-(pooled @ tags_kernel + tags_bias)))
        return scores.astype(np.float32), None


ENGINE = Engine("numpy", lambda model, info, options: NumpyPredictor(model, info))

SOURCE = dataclasses.replace(folder.SOURCE, name="toy", title="a toy folder of audio")
'''


def registries():
    """(registry, the toy's name there, the kind its messages name)."""
    from tagger import convert, models
    from tagger.datasets import SOURCES
    from tagger.inference.engine.registry import ENGINES

    return ((models.REGISTRY, "toy", "model family"), (convert.CONVERTERS, "toy", "converter"),
            (ENGINES, "numpy", "engine"), (SOURCES, "toy", "dataset source"))


@pytest.fixture
def toy(tmp_path, monkeypatch):
    """The toy module, its family, converter, engine and source registered
    (and taken out again afterwards)."""
    import importlib
    import sys

    from tagger import convert, models
    from tagger.datasets import SOURCES
    from tagger.inference.engine.registry import register_engine

    (tmp_path / "toy_extension.py").write_text(textwrap.dedent(TOY_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "toy_extension", raising=False)
    module = importlib.import_module("toy_extension")
    models.register_family("toy", "toy_extension")
    convert.CONVERTERS.register("toy", module.CONVERTER)
    register_engine(module.ENGINE)
    SOURCES.register("toy", "toy_extension")
    yield module
    for registry, name, _ in registries():
        registry.unregister(name)


def csv_scores(out: str) -> tuple[list, np.ndarray]:
    """(tag names, clip scores (files, tags)) of tag.py's CSV."""
    header, *rows = out.splitlines()
    tags = header.split(",")[4:]
    return tags, np.array([[float(v) for v in row.split(",")[4:]] for row in rows])


def test_a_family_registered_outside_the_package_trains_and_tags(toy, raw_records, tmp_path,
                                                                capsys):
    from tagger.commands import tag as tag_cli
    from tagger.commands import train as train_cli
    from tagger.models.saved import load_tagger

    records, info = raw_records
    code, _, err = call_main(
        train_cli.main, capsys, "--data-dir", records, "--train-dir", tmp_path, "--model",
        "toy", "--toy-units", "3", "--run-name", "toy", "--schedule", "staged",
        "--optimizer", "adam", "--lr", "0.01", "--num-stages", "1",
        "--max-epochs-per-stage", "1", "--batch-size", "4", "--steps-per-epoch", "2",
        "--validation-steps", "1", "--strategy", "default", "--no-test", "--no-progress")
    assert code == 0, err
    trained = tmp_path / "toy" / "model.keras"
    model, metadata = load_tagger(str(trained))
    assert (metadata.model, metadata.model_args) == ("toy", {"units": 3})
    assert list(metadata.tag_names) == list(info.tag_names)
    assert model.get_layer("hidden").get_weights()[0].shape == (243, 3)
    code, _, err = call_main(train_cli.main, capsys, "--model", "samplecnn", "--toy-units",
                             "3", "--data-dir", records)
    assert code == 2 and "--toy-units" in err and len(err.strip().splitlines()) == 1

    song = write_audio(tmp_path / "song.wav", 3 * 59049)
    by_engine = {}
    for engine in ("keras", "numpy"):
        code, out, err = call_main(tag_cli.main, capsys, trained, song, "--engine", engine,
                                   "--format", "csv", "--no-progress")
        assert code == 0 and "synthetic dataset" in err  # the note of a synthetic model
        by_engine[engine] = csv_scores(out)
    assert by_engine["numpy"][0] == by_engine["keras"][0] == list(info.tag_names)
    assert by_engine["numpy"][1].shape == (1, len(info.tag_names))
    np.testing.assert_allclose(by_engine["numpy"][1], by_engine["keras"][1], atol=1e-5)


def test_a_converter_registered_outside_the_package_converts_for_tag_py_and_serve(
        toy, tmp_path, capsys):
    from tagger.commands import convert_weights
    from tagger.commands import tag as tag_cli
    from tagger.models.saved import load_tagger

    rng = np.random.default_rng(0)
    original = tmp_path / "release.npz"
    arrays = dict(hidden_kernel=rng.normal(0, 0.5, (243, 5)).astype("float32"),
                  hidden_bias=np.zeros(5, "float32"),
                  tags_kernel=rng.normal(0, 1, (5, 2)).astype("float32"),
                  tags_bias=np.float32([0.1, -0.1]), tag_names=np.array(["calm", "loud"]))
    np.savez(original, **arrays)
    converted = tmp_path / "toy.keras"
    code, _, err = call_main(convert_weights.main, capsys, original, "--from", "toy",
                             "--scale", "2", "--out", converted)
    assert code == 0, err
    model, metadata = load_tagger(str(converted))
    assert metadata.tag_names == ("calm", "loud") and metadata.converted_from["source"] == "toy"
    np.testing.assert_array_equal(model.get_layer("hidden").get_weights()[0],
                                  arrays["hidden_kernel"] * 2)
    code, _, err = call_main(convert_weights.main, capsys, original, "--from", "toy",
                             "--scale", "3", "--out", tmp_path / "other.keras")
    assert code == 2 and "argument --scale: invalid choice: '3'" in err

    song = write_audio(tmp_path / "song.wav", 2 * 59049)
    code, out, err = call_main(tag_cli.main, capsys, converted, song, "--engine", "keras",
                               "--format", "csv", "--no-progress")
    assert code == 0 and err == ""
    tags, keras_scores = csv_scores(out)
    assert tags == ["calm", "loud"]

    pytest.importorskip("fastapi")
    pytest.importorskip("python_multipart")
    from fastapi.testclient import TestClient

    from tagger.commands import serve
    from tagger.serve.app import create_app
    from tagger.serve.config import ServeConfig
    from tagger.serve.models import load_models

    engine = serve.parse_args([str(converted), "--engine", "numpy"]).engine
    config = ServeConfig(models=(str(converted),), engine=engine)
    with TestClient(create_app(load_models(config), config)) as client:
        response = client.post("/v1/tag", content=song.read_bytes(),
                               headers={"content-type": "audio/wav"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["tags"], body["windows"]) == ("toy", ["calm", "loud"], 2)
    np.testing.assert_allclose(body["scores"], keras_scores[0], atol=1e-5)


def test_a_source_registered_outside_the_package_has_a_build_command(toy, tmp_path, capsys):
    from tagger.commands import build_flags
    from tagger.records.info import load_info

    music = tmp_path / "music"
    music.mkdir()
    for i in range(3):
        write_audio(music / f"{i}.wav", 8000, 8000, seed=i)
    build = lambda argv: build_flags.main("toy", argv)  # noqa: E731  tagger-build-toy
    code, out, err = call_main(build, capsys, "--help")
    assert code == 0 and "Turns a toy folder of audio into sharded TFRecords." in out
    records = tmp_path / "records"
    code, _, err = call_main(build, capsys, music, "--out-dir", records, "--sample-rate",
                             "8000", "--segment-length", "4000", "--workers", "1",
                             "--no-progress", "--val-fraction", "0", "--test-fraction", "0")
    assert code == 0, err
    info = load_info(str(records))
    assert sum(split["clips"] for split in info.splits.values()) == 3
    assert info.segment_length == 4000 and info.num_tags == 0


def test_the_four_registries_keep_one_rule(toy):
    """The same refusal of a name taken, the same unknown-name message
    listing the names, the same list of names, in the order registered."""
    from tagger.errors import UserError
    from tagger.registry import UnknownName

    for registry, name, kind in registries():
        assert registry.names()[-1] == name and name in registry
        with pytest.raises(ValueError, match=f"^{kind} '{name}' is registered already$"):
            registry.register(name, "toy_extension")
        with pytest.raises(UnknownName) as unknown:
            registry.get("nothing")
        assert str(unknown.value) == (f"unknown {kind} 'nothing'; valid: "
                                      f"{', '.join(registry.names())}")
        assert isinstance(unknown.value, UserError) and isinstance(unknown.value, ValueError)
