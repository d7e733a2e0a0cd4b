"""The self-attention tagger's release (ponswon.pth, visualize/vismodel.py
variant): a randomly initialised original in PyTorch, fed librosa-style
features, and our converted model fed the raw audio agree."""

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tagger.commands import convert_weights  # noqa: E402
from tagger.convert.self_attention import LOGMEL, cls_vector  # noqa: E402
from tagger.datasets.mtt import MTT_TOP50  # noqa: E402
from tagger.models.saved import load_tagger  # noqa: E402
from tests.checks import call_main, one_line_error  # noqa: E402
from tests.convert import originals  # noqa: E402

SEGMENT = 59049  # at 16 kHz: 231 frames


def audio(batch=2, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(SEGMENT) / 16000.0
    tones = np.sin(2 * np.pi * rng.uniform(100, 4000, (batch, 1)) * t)
    envelope = np.linspace(0.05, 1.0, SEGMENT)  # a quiet start, so top_db clamps
    return (0.3 * envelope * tones
            + 0.02 * rng.standard_normal((batch, SEGMENT))).astype("float32")


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    """ponswon.pth as DataParallel saved it (`module.` prefix)."""
    torch.manual_seed(0)
    x = originals.librosa_log_mel(torch.from_numpy(audio(4, seed=1)))
    model = originals.randomise(originals.ReleasedSelfAttention(), x)
    path = tmp_path_factory.mktemp("ponswon") / "ponswon.pth"
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, path)
    return path, model


def test_converted_scores_equal_the_original(released, tmp_path, capsys):
    path, original = released
    out = tmp_path / "ponswon.keras"
    code, _, err = call_main(convert_weights.main, capsys, path, "--from", "self_attention",
                             "--out", out)
    assert code == 0, err
    model, info = load_tagger(str(out))
    assert list(info.tag_names) == list(MTT_TOP50)
    assert info.sample_rate == 16000 and info.window_segments == 1
    # the whole window is one segment: the original's one STFT over it, 231 frames
    assert model.input.shape == (None, SEGMENT)
    assert model.get_layer("log_mel").output.shape == (None, 231, 96)
    assert info.model_args["conv_channels"] == 8
    assert info.model_args["positions"] == "learned"
    assert info.logmel == dataclasses.asdict(LOGMEL)
    np.testing.assert_array_equal(np.asarray(model.get_layer("cls_token").token),
                                  original.vec_cls[0].numpy())
    x = audio()
    with torch.no_grad():
        expected = original(originals.librosa_log_mel(torch.from_numpy(x))).numpy()
    got = np.asarray(model(x, training=False))
    assert expected.shape == got.shape == (2, 50)
    assert 0.02 < expected.std() and 0.05 < expected.mean() < 0.95  # not saturated
    assert np.abs(got - expected).max() < 1e-4


def test_cls_is_the_originals_seeded_draw():
    np.random.seed(0)
    np.testing.assert_array_equal(cls_vector(512),
                                  np.random.random((1, 512))[0].astype(np.float32))


@pytest.mark.parametrize("change, fragments", [
    ("sinusoidal", ["no learned position table", "not the released variant"]),
    ("missing", ["lacks 1 tensor", "back_end.pooler.dense.bias"]),
    ("extra", ["does not use", "front_end.extra"]),
    ("shape", ["vertical0_conv/kernel", "expected (86, 7, 1, 8)"]),
])
def test_bad_files_are_one_line_and_write_nothing(released, change, fragments, tmp_path,
                                                  capsys):
    path, _ = released
    state = {k[len("module."):]: v for k, v in torch.load(path, weights_only=True).items()}
    if change == "sinusoidal":  # the training code's model.py variant
        del state["back_end.embedding.position_embeddings.weight"]
    elif change == "missing":
        del state["back_end.pooler.dense.bias"]
    elif change == "extra":
        state["front_end.extra"] = torch.zeros(2)
    elif change == "shape":
        state["front_end.layers.0.conv.weight"] = torch.zeros(8, 1, 85, 7)
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    out = tmp_path / "model.keras"
    code, _, err = call_main(convert_weights.main, capsys, bad, "--from", "self_attention",
                             "--out", out)
    one_line_error(code, err, *fragments)
    assert not out.exists()
