"""Fixtures of the serving tests, built once for both xdist processes
(`tests.checks.built_once`): two tiny untrained taggers saved as train()
saves them (a sample-level CNN whose info says it was trained on the
synthetic dataset, as the demo's model is, and a Music Tagging Transformer
of real data for the attention map) and a few audio files rendered by the
synthetic generator.

    song.wav      22050 Hz mono   8.0 s   2 windows of 59049
    song.mp3      16000 Hz mono   6.0 s   2
    short.flac    44100 Hz mono   1.5 s   1, zero-padded
    long.wav       8000 Hz mono  25.0 s   above the tests' --max-seconds of 20
"""

from __future__ import annotations

import os

import pytest

from tests.checks import built_once, records_info, saved_model, write_audio
from tests.presets import SAMPLE_RATE, SEGMENT, TAGGER_TAGS

# where each model's records came from (dataset_info's "origin", kept in the model's info)
SYNTHETIC = {"kind": "synthetic", "generator": "tagger.datasets.synthetic", "seed": 0,
             "layout": "magnatagatune"}
REAL = {"kind": "real", "dataset": "magnatagatune"}


def raw_info(origin):
    """What saved_model reads of a dataset's info: raw 59049-sample
    segments at 22050 Hz, from `origin`."""
    return records_info(TAGGER_TAGS, SAMPLE_RATE, SEGMENT, origin)


@pytest.fixture(scope="session")
def serve_models(tmp_path_factory):
    """{"cnn": path, "transformer": path} of the tiny untrained taggers; each
    built once, the two xdist processes starting on different ones so they
    are built side by side."""
    from tagger.models import family

    makers = {
        # in folders named after them: the server names train.py's model.keras by its folder
        "cnn": lambda folder: str(saved_model("samplecnn", family("samplecnn").tiny,
                                              raw_info(SYNTHETIC),
                                              folder / "cnn")),
        "transformer": lambda folder: str(saved_model("transformer",
                                                      family("transformer").tiny,
                                                      raw_info(REAL),
                                                      folder / "transformer",
                                                      window_segments=1)),
    }
    order = list(makers)
    if os.environ.get("PYTEST_XDIST_WORKER", "gw0") != "gw0":
        order.reverse()
    built = {name: built_once(tmp_path_factory, f"serve_{name}", makers[name])
             for name in order}
    return {name: built[name] for name in makers}


@pytest.fixture(scope="session")
def serve_audio(tmp_path_factory):
    """name -> path of the files in the module docstring."""
    def make(folder):
        return {
            "song.wav": str(write_audio(folder / "song.wav", 8 * 22050, 22050, seed=1)),
            "song.mp3": str(write_audio(folder / "song.mp3", 6 * 16000, 16000, seed=2)),
            "short.flac": str(write_audio(folder / "short.flac", int(1.5 * 44100), 44100,
                                          seed=3)),
            "long.wav": str(write_audio(folder / "long.wav", 25 * 8000, 8000, seed=4,
                                        subtype="PCM_16")),
        }

    return built_once(tmp_path_factory, "serve_audio", make)
