"""Artifacts for the interpretation tests, made once per session on the
shared synthetic records: tiny models built for those records and saved as
train() saves them (model.keras / model.hdf5 carrying their info; the SE
model is tests/conftest.py's `tiny_se_dir`; training is left to
tests/training, these tests need the mechanics, and the slow localisation
test trains its own), the SE model's excitation table, and short audio
files."""

from __future__ import annotations

import pytest

from tests.checks import built_once, saved_model
from tests.presets import SEGMENT, TINY_SELF_ATTENTION, TINY_TRANSFORMER


@pytest.fixture(scope="session")
def se_dir(tiny_se_dir):
    """Folder with model.keras and model.hdf5 of a tiny untrained SE+multi
    sample-level CNN, saved as train() saves its models (tests/conftest.py)."""
    return tiny_se_dir


@pytest.fixture(scope="session")
def se_table(se_dir, raw_records):
    """The excitation table of the test split, from model.keras."""
    from tagger.interpret.excitations import extract_excitations
    from tagger.models.saved import load_tagger

    records, info = raw_records
    model, model_info = load_tagger(str(se_dir / "model.keras"))
    return extract_excitations(model, records, "test", batch_size=4, info=info,
                               model_info=model_info)


@pytest.fixture(scope="session")
def se_table_file(se_table, tmp_path_factory):
    from tagger.interpret.excitations import save_table

    path = tmp_path_factory.mktemp("excitations") / "excitations.pkl"
    save_table(se_table, str(path))
    return path


@pytest.fixture(scope="session")
def self_attention_model(raw_records, tmp_path_factory):
    """A tiny untrained self-attention tagger (2-segment window, 336 steps)."""
    return built_once(tmp_path_factory, "self_attention", lambda folder: saved_model(
        "self_attention", TINY_SELF_ATTENTION, raw_records[1], folder))


@pytest.fixture(scope="session")
def transformer_model(raw_records, tmp_path_factory):
    """A tiny untrained Music Tagging Transformer (1-segment window, 29 steps
    of 4 frames)."""
    return built_once(tmp_path_factory, "transformer", lambda folder: saved_model(
        "transformer", TINY_TRANSFORMER, raw_records[1], folder, window_segments=1))


@pytest.fixture(scope="session")
def res_model(raw_records, tmp_path_factory):
    """A sample-level CNN without SE blocks (block type res)."""
    return built_once(tmp_path_factory, "res", lambda folder: saved_model(
        "samplecnn", {"block": "res", "alpha": 2, "width": 1 / 16}, raw_records[1], folder))


@pytest.fixture(scope="session")
def audio_files(tmp_path_factory):
    """name -> path: 'window' exactly one 2-segment window at 22050 Hz,
    'double' two windows, 'short' 3 s FLAC at 16 kHz (one padded window),
    'long' 7 s OGG at 44.1 kHz (two windows, the second padded)."""
    from tests.checks import write_audio

    window = 2 * SEGMENT
    return built_once(tmp_path_factory, "audio", lambda folder: {
        "window": write_audio(folder / "window.wav", window, seed=1),
        "double": write_audio(folder / "double.wav", 2 * window, seed=2),
        "short": write_audio(folder / "short.flac", 3 * 16000, 16000, seed=3),
        "long": write_audio(folder / "long.ogg", 7 * 44100, 44100, seed=4),
    })

