"""The own-tags tests' data, shared by their modules (tests/training/conftest.py's
`own` fixture): a folder of tones labelled low or high, noisy or not, its
records, and a tiny body tagger of 0.1 s windows at 16 kHz."""

from __future__ import annotations

import keras
import numpy as np
import soundfile

from tagger.models.saved import save_tagger
from tagger.models.tagger_metadata import TaggerMetadata

BODY_RATE, BODY_WINDOW = 16000, 1600  # 0.1 s windows
TONES = {"low": 220.0, "high": 1760.0}
FILES = 24  # 6 of each of: low, high, low + noisy, high + noisy
SECONDS = 3.2  # one 59049-sample segment at 22050 Hz


def write_body(path, seed=1, tags=("a", "b", "c"), batch_norm=False):
    """A tiny untrained conv tagger of 0.1 s windows at 16 kHz whose
    `embedding` layer gives 8 values, saved with its info (`batch_norm`:
    with a batch normalisation, `body_bn`, after its convolution, its
    statistics and weights set away from their start)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((BODY_WINDOW,), name="waveform")
    x = keras.layers.Reshape((BODY_WINDOW, 1))(inputs)
    x = keras.layers.Conv1D(8, 16, strides=8, activation="relu", name="body_conv")(x)
    if batch_norm:
        norm = keras.layers.BatchNormalization(name="body_bn")
        x = norm(x)
        norm.set_weights([np.full(8, v, np.float32) for v in (1.5, 0.1, 0.2, 0.5)])
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Dense(8, name="embedding")(x)
    scores = keras.layers.Dense(len(tags), activation="sigmoid", name="tags")(x)
    save_tagger(keras.Model(inputs, scores), TaggerMetadata(
        model="tiny_conv", model_args={}, tag_names=tags, sample_rate=BODY_RATE,
        segment_length=BODY_WINDOW, window_segments=1, input_kind="raw", logmel=None,
        licence="the body's licence"), str(path))
    return str(path)


def file_tags(i: int) -> list:
    return [("low", "high")[i % 2]] + (["noisy"] if (i // 2) % 2 else [])


def write_music(folder):
    """FILES tones of SECONDS s at 22050 Hz and their labels.csv."""
    rng = np.random.default_rng(0)
    rows = ["path,tags"]
    t = np.arange(int(SECONDS * 22050)) / 22050
    for i in range(FILES):
        tags = file_tags(i)
        tone = 0.3 * np.sin(2 * np.pi * TONES[tags[0]] * t)
        noise = (0.3 if "noisy" in tags else 0.01) * rng.standard_normal(len(t))
        soundfile.write(str(folder / f"{i:02d}.wav"), (tone + noise).astype(np.float32), 22050)
        rows.append(f"{i:02d}.wav,{';'.join(tags)}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")


def build(music, out, labels, **audio):
    from tagger.config import AudioConfig
    from tagger.datasets.build import build as build_records
    from tagger.datasets.folder import SOURCE, FolderSettings
    from tests.checks import build_config

    build_records(SOURCE, FolderSettings(val_fraction=0.25, test_fraction=0.25,
                                         labels=str(labels)),
                  build_config(music, out, audio=AudioConfig(**audio)))
    return str(out)


# train.py's flags of a head on the body (test_own_tags, test_suggest)
TRAIN_ARGS = ("--lr", "0.03", "--max-epochs-per-stage", "12", "--batch-size", "32",
              "--no-progress")
