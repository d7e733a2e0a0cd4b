"""Converted models in the other tools: tag.py, export.py and the attention
maps take a converted self-attention release (16 kHz) and a converted Music
Tagging Transformer like any model trained here, and tag.py's clip scores
equal the PyTorch original's mean over the same windows.

The originals are tiny random-weight versions of the released architectures
(tests/convert/originals.py), saved in the release's key layout; the audio
is two whole windows of synthetic sound, so no window is padded."""

import csv
import io

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tagger.commands import attention, convert_weights, export, tag  # noqa: E402
from tests.checks import call_main  # noqa: E402
from tests.convert import originals  # noqa: E402

SEGMENT = 59049


def sound(samples, rate, seed=0):
    """A gliding tone with a slow swell and noise: windows differ."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / rate
    swell = 0.6 + 0.4 * np.sin(2 * np.pi * 0.2 * t)
    x = 0.3 * swell * np.sin(2 * np.pi * (300 * t + 40 * t ** 2)) \
        + 0.03 * rng.standard_normal(samples)
    return x.astype("float32")


def self_attention_original():
    """ponswon.pth's architecture at a tiny width (conv_channels 1, 16
    attention channels, one layer; 96 mel bins and 271 positions as
    released); input at 16 kHz, window one segment (231 frames)."""
    torch.manual_seed(0)
    x = torch.from_numpy(np.stack([sound(SEGMENT, 16000, s) for s in (1, 2, 3)]))
    model = originals.ReleasedSelfAttention(conv_channels=1, attention_channels=16,
                                            attention_layers=1)
    model = originals.randomise(model, originals.librosa_log_mel(x))
    return model, lambda audio: model(originals.librosa_log_mel(audio)), 16000, SEGMENT


def transformer_original():
    """The Music Tagging Transformer at a tiny width (conv_ndim 4,
    attention_ndim 16, one layer, 32 mel bins); 22050 Hz, window 4 segments
    through one STFT."""
    torch.manual_seed(0)
    window = 4 * SEGMENT
    x = torch.from_numpy(np.stack([sound(window, 22050, s) for s in (1, 2, 3)]))
    model = originals.MusicTaggingTransformer(conv_ndim=4, n_mels=32, attention_ndim=16,
                                              attention_nlayers=1)
    model = originals.randomise(model, x)
    return model, model, 22050, window


ORIGINALS = {"self_attention": (self_attention_original, "ponswon.pth"),
             "transformer": (transformer_original, "compact_student.ckpt")}


@pytest.fixture(scope="module", params=sorted(ORIGINALS))
def converted(request, tmp_path_factory):
    """(kind, model.keras, audio file, expected clip scores, tag names)."""
    kind = request.param
    make, name = ORIGINALS[kind]
    model, forward, rate, window = make()
    folder = tmp_path_factory.mktemp(kind)
    source = folder / name
    state = model.state_dict()
    if kind == "transformer":
        state = {f"network.{k}": v for k, v in state.items()}
    torch.save(state, source)
    out = folder / "model.keras"
    code = convert_weights.main([str(source), "--from", kind, "--out", str(out)])
    assert code == 0
    import soundfile

    audio = sound(2 * window, rate, seed=7)
    path = folder / "two_windows.wav"
    soundfile.write(str(path), audio, rate, subtype="FLOAT")
    with torch.no_grad():
        scores = forward(torch.from_numpy(audio.reshape(2, window))).numpy()
    from tagger.models.saved import read_saved_info

    tags = list(read_saved_info(str(out)).tag_names)
    return kind, out, path, scores.mean(axis=0), tags


def test_tag_py_scores_equal_the_originals(converted, capsys):
    kind, model, audio, expected, tags = converted
    code, out, err = call_main(tag.main, capsys, model, audio, "--format", "csv",
                               "--no-progress")
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][4:] == tags and len(rows) == 2
    assert rows[1][2:4] == ["2", "0"]  # two windows, not padded
    got = np.array([float(v) for v in rows[1][4:]])
    assert 0.01 < expected.std()  # not saturated
    assert np.abs(got - expected).max() < 1e-4, kind


@pytest.mark.slow  # writing, reloading and verifying a SavedModel: about 12 s each
def test_export_saved_model(converted, tmp_path, capsys):
    import tensorflow as tf

    kind, model, audio, expected, tags = converted
    out = tmp_path / "export"
    code, stdout, err = call_main(export.main, capsys, model, "--format", "saved_model",
                                  "--out", out)
    assert code == 0, err
    assert "verified" in stdout
    served = tf.saved_model.load(str(out))
    rate, window = (int(v) for v in (served.info()["sample_rate"],
                                     served.info()["window_samples"]))
    assert rate == {"self_attention": 16000, "transformer": 22050}[kind]
    assert window == {"self_attention": SEGMENT, "transformer": 4 * SEGMENT}[kind]
    import soundfile

    x, _ = soundfile.read(str(audio), dtype="float32")
    scores = served.serve(tf.constant(x.reshape(2, window)))["scores"].numpy()
    assert np.abs(scores.mean(axis=0) - expected).max() < 1e-4
    names = [t.decode() for t in served.tags()["tags"].numpy()]
    assert names == tags


@pytest.mark.slow
def test_attention_maps(converted, tmp_path, capsys):
    kind, model, audio, expected, tags = converted
    out = tmp_path / "maps"
    code, stdout, err = call_main(attention.main, capsys, model, audio, "--out", out,
                                  "--top-k", "2", "--no-progress")
    assert code == 0, err
    import json

    stem = "two_windows"
    meta = json.loads((out / f"{stem}_maps.json").read_text())
    steps, frames, mels = {"self_attention": (231, 231, 96),
                           "transformer": (462 // 4, 462, 32)}[kind]
    assert (meta["windows"], meta["steps_per_window"], meta["frames_per_window"]) == \
        (2, steps, frames)
    assert np.abs(np.array(meta["scores"]) - expected).max() < 1e-4
    assert np.load(out / f"{stem}_spectrogram.npy").shape == (2 * frames, mels)
    weights = np.load(out / f"{stem}_attention.npy")
    assert weights.shape == (2, steps + 1)
    np.testing.assert_allclose(weights.sum(axis=1), meta["heads"], rtol=1e-4)
    contributions = np.load(out / f"{stem}_contributions.npy")
    assert contributions.shape == (2 * steps, len(tags))
    assert np.isfinite(contributions).all() and contributions.std() > 0
    assert (out / f"{stem}_attention.png").exists()
    assert (out / f"{stem}_contributions.png").exists()
