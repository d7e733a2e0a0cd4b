"""Saved taggers: info embedded beside the graph, loading with plain Keras
after `import tagger.layers`."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import zipfile

import h5py
import numpy as np
import pytest

from tagger.errors import UserError
from tagger.models import build_model
from tagger.models.saved import load_tagger, read_saved_info, save_tagger
from tagger.models.tagger_metadata import TaggerMetadata
from tests.checks import records_info

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
                            env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": ""}, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.slow
def test_fresh_processes_load_after_importing_the_layers(tiny_cnn, tiny_transformer, tmp_path):
    """Every family loads after `import tagger.layers` (before or after
    keras): its registered layers (the sample-level CNN's PhiloxDropout,
    the transformer's) need no custom_objects."""
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


@pytest.mark.slow
@pytest.mark.parametrize("family, settings", [
    ("multiscale", {}),
    ("self_attention", dict(conv_channels=2, attention_channels=16, attention_layers=1,
                            attention_heads=2)),
])
def test_fresh_process_loads_the_other_families(family, settings, tmp_path):
    """Multi-scale CNN and self-attention tagger (raw input: their LogMel front
    end included) load after `import tagger.layers` in a fresh process, from
    .keras and .hdf5 alike, and predict as the model that was saved."""
    from tagger.config import LogMelConfig

    model = build_model(family, num_tags=3, segments=1, logmel=LogMelConfig(n_mels=16),
                        **settings)
    paths = [tmp_path / f"{family}.keras", tmp_path / f"{family}.hdf5"]
    for path in paths:
        save_tagger(model, dataclasses.replace(INFO, model=family, model_args=settings),
                    str(path))
    x = np.random.default_rng(1).uniform(-0.5, 0.5, (1, 59049)).astype("float32")
    np.save(tmp_path / "x.npy", x)
    out = _fresh_python(
        "import tagger.layers, keras, json\nimport numpy as np\n"
        f"x = np.load({str(tmp_path / 'x.npy')!r})\n"
        f"print(json.dumps([keras.models.load_model(p).predict(x, verbose=0).tolist() "
        f"for p in {[str(p) for p in paths]!r}]))\n")
    expected = model.predict(x, verbose=0)
    for got in json.loads(out):
        np.testing.assert_allclose(got, expected, atol=1e-5)


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


def test_tag_order_matches_by_name_or_says_how_the_tags_differ():
    from tagger.errors import UserError
    from tagger.models.saved import tag_order

    model = TaggerMetadata(tag_names=["rock", "jazz", "pop"], sample_rate=16000,
                           segment_length=48128, input_kind="raw", window_segments=1,
                           logmel=None, model="samplecnn", model_args={})
    assert tag_order(model, records_info(["rock", "jazz", "pop"], 16000, 48128)) is None
    reordered = records_info(["pop", "rock", "jazz"], 16000, 48128)
    assert tag_order(model, reordered, reorder=True) == [2, 0, 1]
    with pytest.raises(UserError, match=r"in order only \(output 0 is 'rock', the dataset's "
                                        r"tag 0 'pop'\).*--tag-order"):
        tag_order(model, reordered)
    synthetic = records_info(["rock", "harp", "flute"], 16000, 48128, {"kind": "synthetic"})
    with pytest.raises(UserError, match=r"2 of its 3 are not among the dataset's tags "
                                        r"\('jazz', 'pop'\) \(these are records of the "
                                        r"synthetic dataset.*build_mtt.py --sample-rate "
                                        r"16000 --segment-length 48128$"):
        tag_order(model, synthetic, reorder=True)
