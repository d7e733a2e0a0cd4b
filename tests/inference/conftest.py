"""Fixtures for tagging and export: tiny saved taggers and a folder of audio,
each built once for all pytest-xdist processes (`tests.checks.built_once`;
every process loads the models from the shared files).

The models are untrained (built, given a spread of output biases so the
tags have distinct scores, wrapped with their info layer and saved) and
tiny, so every test runs in seconds. The audio folder mixes formats, sample
rates, channel counts and lengths:

    music/a.wav        22050 Hz mono      7.0 s   2 windows of 59049
    music/b.flac       44100 Hz stereo    6.5 s   2
    music/c.ogg        16000 Hz mono      8.0 s   2 (Vorbis)
    music/d.mp3        16000 Hz mono      9.0 s   3
    music/long.flac    22050 Hz mono     60.0 s  22
    music/short.wav    22050 Hz mono      0.5 s   1, zero-padded
    music/broken.mp3   text, not audio
    music/notes.txt    not an audio name: ignored
    music/.hidden.wav  hidden: ignored
    music/sub/a.wav    11025 Hz mono      3.0 s   1 (only with --recursive)
    music/sub/e.aiff   22050 Hz mono      4.0 s   1 (only with --recursive)
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.checks import built_once, save_tagger, tone
from tests.presets import MUSIC_AUDIO as AUDIO
from tests.presets import SAMPLE_RATE as RATE
from tests.presets import SEGMENT as WINDOW
from tests.presets import TAGGER_TAGS as TAGS


@pytest.fixture(scope="session")
def music(tmp_path_factory):
    """The folder described in the module docstring."""
    import soundfile as sf

    def make(folder):
        root = folder / "music"
        (root / "sub").mkdir(parents=True)
        for seed, (name, (seconds, rate, channels, fmt, subtype, freq)) in enumerate(
                AUDIO.items()):
            sf.write(str(root / name), tone(seconds, rate, channels, freq, seed), rate,
                     format=fmt, subtype=subtype)
        (root / "broken.mp3").write_text("this is not audio\n" * 20)
        (root / "notes.txt").write_text("liner notes\n")
        return root

    return built_once(tmp_path_factory, "tag_music", make)


def spread_biases(model, seed=0):
    """Output biases from -1.5 to 1.5 in a shuffled order: distinct scores."""
    layer = model.get_layer("tags")
    kernel, bias = layer.get_weights()
    order = np.random.default_rng(seed).permutation(len(bias))
    layer.set_weights([kernel, np.linspace(-1.5, 1.5, len(bias))[order].astype(bias.dtype)])
    return model


def cnn_info():
    return dict(tag_names=list(TAGS), sample_rate=RATE, segment_length=WINDOW,
                window_segments=1, input_kind="raw", logmel=None, model="samplecnn",
                model_args=dict(block="basic", width=1 / 16, alpha=2))


@pytest.fixture(scope="session")
def cnn(tmp_path_factory):
    """(path, keras model) of a tiny sample-level CNN with tag names."""
    import keras

    import tagger.layers  # noqa: F401  (registers the custom layers for load_model)
    from tagger.models import build_model

    def make(folder):
        keras.utils.set_random_seed(0)  # the same weights whichever test built it first
        model = spread_biases(build_model("samplecnn", num_tags=len(TAGS), block="basic",
                                          alpha=2, width=1 / 16, input_length=WINDOW))
        return save_tagger(model, cnn_info(), folder / "cnn.keras")

    path = built_once(tmp_path_factory, "tag_cnn", make)
    return path, keras.models.load_model(path)


@pytest.fixture(scope="session")
def synthetic_cnn(tmp_path_factory):
    """The path of `cnn`'s model saved with the info of one trained on the
    synthetic dataset (its records' origin), as train.py saves it."""
    import keras

    from tagger.models import build_model

    def make(folder):
        keras.utils.set_random_seed(0)
        model = spread_biases(build_model("samplecnn", num_tags=len(TAGS), block="basic",
                                          alpha=2, width=1 / 16, input_length=WINDOW))
        info = dict(cnn_info(), origin={"kind": "synthetic", "dataset": "magnatagatune"})
        return save_tagger(model, info, folder / "synthetic.keras")

    return built_once(tmp_path_factory, "tag_synthetic_cnn", make)


LOGMEL = dict(n_mels=16, n_fft=512, hop_length=1024, f_min=0.0, f_max=8000.0, top_db=40.0)


@pytest.fixture(scope="session")
def spectrogram(tmp_path_factory):
    """(path, keras model, LogMelConfig) of a tiny self-attention tagger that
    takes log-mel frames (as if trained on --features logmel records)."""
    import keras

    import tagger.layers  # noqa: F401  (registers the custom layers for load_model)
    from tagger.config import LogMelConfig
    from tagger.models import build_model

    logmel = LogMelConfig(**LOGMEL)

    def make(folder):
        model = spread_biases(build_model(
            "self_attention", num_tags=6, input_kind="logmel", segments=1, logmel=logmel,
            conv_channels=2, attention_channels=16, attention_layers=1, attention_heads=2,
            attention_dropout=0.0, fc_dropout=0.0), seed=1)
        info = dict(tag_names=[f"mood {i}" for i in range(6)], sample_rate=RATE,
                    segment_length=WINDOW, window_segments=1, input_kind="logmel",
                    logmel=dataclasses.asdict(logmel), model="self_attention", model_args={})
        return save_tagger(model, info, folder / "attention.keras")

    path = built_once(tmp_path_factory, "tag_spectrogram", make)
    return path, keras.models.load_model(path), logmel
