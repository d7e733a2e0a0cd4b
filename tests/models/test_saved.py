"""Saved taggers: info embedded beside the graph; loading with plain Keras,
and after `import tagger.layers` for the families that need its layers."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import zipfile

import h5py
import keras
import numpy as np
import pytest

from tagger.errors import UserError
from tagger.models import FAMILY_NAMES, build_model, family
from tagger.models.saved import load_tagger, read_saved_info, save_tagger
from tagger.models.tagger_metadata import TaggerMetadata
from tests.checks import HANG_S

STORED = {"tag_names": ["drums", "piano", "voice"], "sample_rate": 22050,
          "segment_length": 59049, "window_segments": 1, "input_kind": "raw",
          "logmel": None, "model": "samplecnn", "model_args": {"width": 0.0625}}
INFO = TaggerMetadata(**STORED)


@pytest.fixture(scope="module")
def tiny_cnn():
    return build_model("samplecnn", num_tags=3, block="se", width=0.0625)


@pytest.fixture(scope="module")
def tiny_transformer():
    from tagger.config import LogMelConfig

    return build_model("transformer", num_tags=3, segments=1, conv_ndim=4,
                       attention_ndim=8, attention_layers=1, attention_heads=2,
                       logmel=LogMelConfig(n_mels=16))


def test_info_is_stored_beside_the_graph(tiny_cnn, tmp_path):
    for name in ("model.keras", "model.hdf5"):
        path = tmp_path / name
        save_tagger(tiny_cnn, INFO, str(path))
        assert read_saved_info(str(path)) == INFO
        model, info = load_tagger(str(path))
        assert info == INFO
        assert info.tag_names == ("drums", "piano", "voice") and info.sample_rate == 22050
        assert "tagger_info" not in [layer.name for layer in model.layers]
    with zipfile.ZipFile(tmp_path / "model.keras") as archive:
        assert json.loads(archive.read("tagger_info.json")) == {**STORED, "schema_version": 1}
    with h5py.File(tmp_path / "model.hdf5") as handle:
        assert json.loads(handle.attrs["tagger_info"]) == {**STORED, "schema_version": 1}


def test_the_file_carries_keras_dropout_and_the_model_keeps_philox(tiny_cnn, tmp_path):
    """Saving writes each PhiloxDropout as Keras's Dropout of the same name,
    rate and seed, and leaves the model saved as it was (training goes on
    with PhiloxDropout)."""
    from tagger.layers import PhiloxDropout

    path = tmp_path / "model.keras"
    save_tagger(tiny_cnn, INFO, str(path))
    trained = {layer.name: layer for layer in tiny_cnn.layers if "dropout" in layer.name}
    loaded = {layer.name: layer for layer in load_tagger(str(path))[0].layers
              if "dropout" in layer.name}
    assert sorted(loaded) == sorted(trained) == ["head_dropout"]
    assert [type(layer) for layer in trained.values()] == [PhiloxDropout]
    assert [type(layer) for layer in loaded.values()] == [keras.layers.Dropout]
    assert [(layer.rate, layer.seed) for layer in loaded.values()] == [
        (layer.rate, layer.seed) for layer in trained.values()]


def test_a_plain_keras_file_has_no_info(tiny_cnn, tmp_path):
    tiny_cnn.save(tmp_path / "plain.keras")
    tiny_cnn.save(tmp_path / "plain.hdf5")
    assert read_saved_info(str(tmp_path / "plain.keras")) is None
    assert read_saved_info(str(tmp_path / "plain.hdf5")) is None
    assert load_tagger(str(tmp_path / "plain.hdf5"))[1] is None


def _save_with_stored_info(model, path, stored: dict) -> str:
    """`model` saved as a .keras file whose tagger_info.json is `stored`."""
    model.save(path)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr("tagger_info.json", json.dumps(stored))
    return str(path)


def test_files_written_before_the_schema_version_still_load(tiny_cnn, tmp_path):
    """Info without a schema_version (files written before it was recorded)
    is version 1, and the model predicts as the one saved."""
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 59049)).astype("float32")
    path = _save_with_stored_info(tiny_cnn, tmp_path / "earlier.keras", STORED)
    model, info = load_tagger(path)
    assert info == INFO and info.schema_version == 1
    assert model.layers[-1].name == "tags"
    np.testing.assert_allclose(model.predict(x, verbose=0), tiny_cnn.predict(x, verbose=0),
                               atol=1e-6)


def test_info_missing_a_field_or_of_a_newer_schema_is_a_user_error(tiny_cnn, tmp_path):
    lacking = {key: value for key, value in STORED.items() if key != "sample_rate"}
    path = _save_with_stored_info(tiny_cnn, tmp_path / "lacking.keras", lacking)
    with pytest.raises(UserError, match=r"^the tagger info of '.*lacking\.keras' lacks "
                                        r"sample_rate; save the model again"):
        load_tagger(path)
    newer = _save_with_stored_info(tiny_cnn, tmp_path / "newer.keras",
                                   {**STORED, "schema_version": 2})
    with pytest.raises(UserError, match=r"newer\.keras' has schema version 2; this "
                                        r"version of tagger reads up to 1$"):
        read_saved_info(newer)


def _fresh_python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": ""}, timeout=HANG_S)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.slow
def test_fresh_processes_load_after_importing_the_layers(tiny_cnn, tiny_transformer, tmp_path):
    """Files load after `import tagger.layers` (before or after keras): the
    layers it registers (the transformer's) need no custom_objects."""
    cnn, transformer = tmp_path / "cnn.hdf5", tmp_path / "transformer.keras"
    save_tagger(tiny_cnn, INFO, str(cnn))
    save_tagger(tiny_transformer, dataclasses.replace(INFO, model="transformer"),
                str(transformer))
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (1, 59049)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    for order, path, model, atol in (("import keras, tagger.layers", cnn, tiny_cnn, 1e-6),
                                     ("import tagger.layers, keras", transformer, tiny_transformer,
                                      1e-5)):
        out = _fresh_python(
            f"{order}\nimport numpy as np\n"
            f"m = keras.models.load_model({str(path)!r})\n"
            f"print(m.predict(np.load({str(tmp_path / 'x.npy')!r}), verbose=0).tolist())\n")
        np.testing.assert_allclose(json.loads(out), model.predict(x, verbose=0), atol=atol)


# The layers of this package that each family's saved file needs beside
# Keras's own (docs/commands/train.md, "The saved model"); read from raw records, a
# spectrogram family also carries its `LogMel` front end. A family needing
# none loads with plain Keras.
TAGGER_LAYERS = {
    "samplecnn": (), "sample_level": (), "sample_level_se": (),
    "multiscale": (), "short_cnn": (), "short_res": (), "fcn": (), "musicnn": (),
    "crnn": (), "pons_musicnn": (), "pons_vgg": (),
    "hcnn": ("HarmonicSTFT",),
    "self_attention": ("ClsToken", "SelectToken", "SinusoidalPositions",
                       "TransformerEncoderLayer"),
    "transformer": ("ClsToken", "LearnedPositions", "SelectToken", "TransformerEncoderLayer"),
    "cnnsa": ("ClsToken", "SelectToken", "TransformerEncoderLayer"),
}
# Saved as .hdf5 too: plain and tagger-only files of both input kinds.
HDF5_TOO = {"samplecnn-raw", "short_cnn-logmel", "multiscale-raw", "self_attention-raw"}


def test_every_family_says_which_layers_its_saved_file_needs():
    assert sorted(TAGGER_LAYERS) == sorted(FAMILY_NAMES)


def _tiny_family_models():
    """name -> (tiny model, the tagger layers its file needs), for every
    family and each kind of records it reads."""
    from tagger.config import LogMelConfig

    models = {}
    for name in FAMILY_NAMES:
        spec = family(name)
        if spec.raw_waveform:
            models[f"{name}-raw"] = (build_model(name, num_tags=3, input_length=3 ** 7,
                                                 **spec.tiny), TAGGER_LAYERS[name])
            continue
        for kind, front_end in (("raw", ("LogMel",)), ("logmel", ())):
            model = build_model(name, num_tags=3, segments=1, input_kind=kind,
                                logmel=LogMelConfig(n_mels=16, n_fft=512, hop_length=256),
                                **spec.tiny)
            models[f"{name}-{kind}"] = model, tuple(sorted(TAGGER_LAYERS[name] + front_end))
    return models


def _classes_outside_keras(path) -> set:
    """The class names in a .keras file's config that Keras does not define."""
    found = set()

    def walk(node):
        if isinstance(node, dict):
            module = node.get("module")
            if "class_name" in node and module and not module.startswith("keras"):
                found.add(node["class_name"])
            node = list(node.values())
        if isinstance(node, list):
            for item in node:
                walk(item)

    with zipfile.ZipFile(path) as archive:
        walk(json.loads(archive.read("config.json")))
    return found


# Run in a fresh process with FOLDER, FILES (names of files in it, each with
# its input in <stem>.npy) and AFTER (those to load again after `import
# tagger.layers`): prints [scores of the files plain Keras loads, the error
# of each file it refuses, scores after the import].
LOADS_WITHOUT_TAGGER = """
import json, sys
import keras, numpy as np

def scores(name):
    x = np.load(f"{FOLDER}/{name.rsplit('.', 1)[0]}.npy")
    return keras.saving.load_model(f"{FOLDER}/{name}")(x, training=False).numpy().tolist()

plain, refused = {}, {}
for name in FILES:
    try:
        plain[name] = scores(name)
    except Exception as error:
        refused[name] = str(error)
assert "tagger" not in sys.modules, "loading imported tagger"
import tagger.layers
print(json.dumps([plain, refused, {name: scores(name) for name in AFTER}]))
"""


@pytest.mark.slow
def test_saved_files_load_with_plain_keras_unless_they_need_tagger_layers(tmp_path):
    """Every family's file as train.py saves it (`save_tagger`), for each
    kind of records it reads. In a fresh process that never imports tagger,
    `keras.saving.load_model` loads those needing no layer of this package
    (their dropout is Keras's own), which score as the model saved; the
    others need exactly their TAGGER_LAYERS, and Keras refuses them naming
    one; they load after `import tagger.layers` (.keras and .hdf5 alike)."""
    rng = np.random.default_rng(0)
    files, expected = {}, {}
    for name, (model, needed) in _tiny_family_models().items():
        x = rng.uniform(-0.5, 0.5, (2,) + tuple(model.inputs[0].shape[1:])).astype("float32")
        np.save(tmp_path / f"{name}.npy", x)
        expected[name] = model(x, training=False).numpy()
        for suffix in (".keras", ".hdf5") if name in HDF5_TOO else (".keras",):
            info = dataclasses.replace(INFO, model=name.rsplit("-", 1)[0])
            save_tagger(model, info, str(tmp_path / (name + suffix)))
            files[name + suffix] = name, needed
        assert _classes_outside_keras(tmp_path / f"{name}.keras") == set(needed), name
    after = sorted(f"{name}{suffix}" for name in HDF5_TOO for suffix in (".keras", ".hdf5")
                   if files[name + suffix][1])
    out = _fresh_python(f"FOLDER, FILES, AFTER = {str(tmp_path)!r}, {sorted(files)!r}, "
                        f"{after!r}\n" + LOADS_WITHOUT_TAGGER)
    plain, refused, loaded = json.loads(out.splitlines()[-1])
    assert sorted(plain) == sorted(file for file, (_, needed) in files.items() if not needed)
    assert sorted(refused) == sorted(file for file, (_, needed) in files.items() if needed)
    assert after == ["multiscale-raw.hdf5", "multiscale-raw.keras", "self_attention-raw.hdf5",
                     "self_attention-raw.keras"]
    for file, (name, needed) in files.items():
        if needed:
            named = re.search(r"Could not locate class '(\w+)'|Unknown layer: 'tagger>(\w+)'",
                              refused[file])
            assert named and (named[1] or named[2]) in needed, (file, refused[file][:500])
        if file in plain or file in loaded:
            np.testing.assert_allclose((plain if file in plain else loaded)[file],
                                       expected[name], atol=1e-5, err_msg=file)


def test_a_model_of_synthetic_records_says_so(tiny_se_dir, raw_records):
    """train()'s info carries the records' origin; the note follows it."""
    from tagger.models.saved import synthetic_note

    info = read_saved_info(str(tiny_se_dir / "model.keras"))
    assert info.origin == raw_records[1].origin
    assert info.origin["kind"] == "synthetic"
    note = synthetic_note(info)
    assert note.startswith("this model was trained on the synthetic dataset")
    assert "\n" not in note
    real = dataclasses.replace(info, origin={"kind": "real", "dataset": "MagnaTagATune"})
    assert synthetic_note(real) is None
    assert synthetic_note(INFO) is None and synthetic_note(None) is None
