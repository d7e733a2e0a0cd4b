"""Artifacts for the interpretation tests, made once per session on the
shared synthetic records: tiny models built for those records and saved as
train() saves them (model.keras / model.hdf5 carrying their info;
training is left to tests/training, these tests need the mechanics, and
the slow localisation test trains its own), the SE model's excitation
table, and short audio files."""

from __future__ import annotations

import pathlib

import pytest
import soundfile

ROOT_DIR = pathlib.Path(__file__).parents[2]
SAMPLE_RATE = 22050
SEGMENT = 59049
TINY_SE = {"block": "se", "multi": True, "alpha": 2, "width": 1 / 16}
TINY_SELF_ATTENTION = {"conv_channels": 2, "attention_channels": 16, "attention_heads": 2,
                       "attention_layers": 2}
TINY_TRANSFORMER = {"conv_ndim": 4, "attention_ndim": 16, "attention_heads": 2,
                    "attention_layers": 2}


@pytest.fixture(scope="session")
def se_dir(raw_records, tmp_path_factory):
    """Folder with model.keras and model.hdf5 of a tiny untrained SE+multi
    sample-level CNN, saved as train() saves its models."""
    return saved_model("samplecnn", TINY_SE, raw_records[1], tmp_path_factory.mktemp("se"),
                       formats=(".keras", ".hdf5")).parent


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


def saved_model(family, model_args, info, folder, formats=(".keras",), **config):
    """Builds `family` for the records described by `info` and saves it as
    train() does (info embedded) as model.keras (and the other `formats`);
    returns the path of the first."""
    from tagger.config import TrainConfig
    from tagger.models.saved import save_tagger
    from tagger.training import model_setup

    import keras

    keras.utils.set_random_seed(0)
    train_config = TrainConfig(data_dir="unused", model=family, model_args=dict(model_args),
                               **config)
    window = model_setup.window_segments(train_config, info)
    model = model_setup.build(train_config, info, window)
    model_info = model_setup.model_info(train_config, info, window)
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in formats:
        save_tagger(model, model_info, str(folder / f"model{suffix}"))
    return folder / f"model{formats[0]}"


@pytest.fixture(scope="session")
def self_attention_model(raw_records, tmp_path_factory):
    """A tiny untrained self-attention tagger (2-segment window, 336 steps)."""
    return saved_model("self_attention", TINY_SELF_ATTENTION, raw_records[1],
                       tmp_path_factory.mktemp("self_attention"))


@pytest.fixture(scope="session")
def transformer_model(raw_records, tmp_path_factory):
    """A tiny untrained Music Tagging Transformer (1-segment window, 29 steps
    of 4 frames)."""
    return saved_model("transformer", TINY_TRANSFORMER, raw_records[1],
                       tmp_path_factory.mktemp("transformer"), window_segments=1)


@pytest.fixture(scope="session")
def res_model(raw_records, tmp_path_factory):
    """A sample-level CNN without SE blocks (block type res)."""
    return saved_model("samplecnn", {"block": "res", "alpha": 2, "width": 1 / 16},
                       raw_records[1], tmp_path_factory.mktemp("res"))


def write_audio(path, samples, sample_rate=SAMPLE_RATE, seed=0, subtype=None):
    """A WAV (or any soundfile format by suffix) of `samples` samples of
    rendered synthetic music; returns the path."""
    from tagger.datasets.sounds import ClipAttributes, render_clip

    audio = render_clip(ClipAttributes(instruments=("piano", "drum_kit")),
                        samples / sample_rate + 0.01, sample_rate, rng=seed)[:samples]
    soundfile.write(str(path), audio, sample_rate, subtype=subtype)
    return pathlib.Path(path)


@pytest.fixture(scope="session")
def audio_files(tmp_path_factory):
    """name -> path: 'window' exactly one 2-segment window at 22050 Hz,
    'double' two windows, 'short' 3 s FLAC at 16 kHz (one padded window),
    'long' 7 s OGG at 44.1 kHz (two windows, the second padded)."""
    folder = tmp_path_factory.mktemp("audio")
    window = 2 * SEGMENT
    return {
        "window": write_audio(folder / "window.wav", window, seed=1),
        "double": write_audio(folder / "double.wav", 2 * window, seed=2),
        "short": write_audio(folder / "short.flac", 3 * 16000, 16000, seed=3),
        "long": write_audio(folder / "long.ogg", 7 * 44100, 44100, seed=4),
    }


def is_png(path) -> bool:
    data = pathlib.Path(path).read_bytes()
    return len(data) > 1000 and data[:8] == b"\x89PNG\r\n\x1a\n"


def windows_of(samples: int, window: int) -> int:
    return max(1, -(-samples // window))
