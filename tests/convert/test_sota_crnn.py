"""Won et al. 2020's CRNN best_model.pth: a randomly initialised original
(PyTorch, written from training/model.py and modules.py, narrow channels
and GRU) in the release's key layout converts into our crnn, which gives
the same tag scores on the same 464000 samples (29 s at 16 kHz)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tagger.commands import convert_weights  # noqa: E402
from tagger.datasets.mtt import MTT_TOP50  # noqa: E402
from tagger.models.saved import load_tagger  # noqa: E402
from tests.checks import call_main, gliding_tones, one_line_error  # noqa: E402
from tests.convert import originals  # noqa: E402
from tests.convert.originals_crnn import CRNN  # noqa: E402

INPUT = 29 * 16000  # training/main.py
NARROW = dict(n_channels=8, rnn_units=16)  # the release: 64, 32


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """(best_model.pth, torch module) as torch.save wrote it."""
    torch.manual_seed(0)
    module = originals.randomise(CRNN(**NARROW),
                                 torch.from_numpy(gliding_tones(INPUT, 4, seed=1)), 0)
    path = tmp_path_factory.mktemp("sota_crnn") / "best_model.pth"
    torch.save(module.state_dict(), path)
    return path, module


def test_converted_scores_equal_the_original(checkpoint, tmp_path, capsys):
    path, original = checkpoint
    out = tmp_path / "crnn.keras"
    code, stdout, err = call_main(convert_weights.main, capsys, path, "--from", "sota",
                                  "--model", "crnn", "--dataset", "mtat", "--out", out)
    assert code == 0, err
    assert "at 16000 Hz" in stdout
    model, info = load_tagger(str(out))
    assert info["tag_names"] == list(MTT_TOP50)
    assert info["sample_rate"] == 16000 and info["window_segments"] == 1
    assert info["segment_length"] == INPUT and info["logmel"]["n_mels"] == 96
    assert info["model_args"] == {"num_tags": 50, "n_channels": 8, "rnn_units": 16}
    assert model.input.shape == (None, INPUT)
    x = gliding_tones(INPUT)
    with torch.no_grad():
        expected = original(torch.from_numpy(x)).numpy()
    got = np.asarray(model(x, training=False))
    assert expected.shape == got.shape == (2, 50)
    assert 0.02 < expected.std() and 0.05 < expected.mean() < 0.95  # not saturated
    assert np.abs(got - expected).max() < 1e-4


def test_the_original_has_the_reference_counts():
    """../shared/reference/sota_zoo.md: the original written here, at the
    release's sizes, has the measured counts."""
    module = CRNN()
    statistics = sum(m.running_mean.numel() + m.running_var.numel()
                     for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d))
    assert (sum(p.numel() for p in module.parameters()), statistics) == (394_100, 898)


@pytest.mark.parametrize("change, fragments", [
    ("missing", ["lacks 1 tensor", "layer5.bias_hh_l1"]),
    ("shape", ["gru1/gru_cell/kernel", "shape (12, 48)", "expected (16, 48)"]),
    ("gates", ["layer5.weight_hh_l1", "not three gates"]),
])
def test_bad_files_are_one_line_and_write_nothing(checkpoint, change, fragments, tmp_path,
                                                  capsys):
    path, _ = checkpoint
    state = torch.load(path, weights_only=True)
    if change == "missing":
        del state["layer5.bias_hh_l1"]
    elif change == "shape":
        state["layer5.weight_ih_l0"] = torch.zeros(48, 12)
    else:
        state["layer5.weight_hh_l1"] = torch.zeros(47, 16)
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    out = tmp_path / "model.keras"
    code, _, err = call_main(convert_weights.main, capsys, bad, "--from", "sota",
                             "--model", "crnn", "--dataset", "mtat", "--out", out)
    one_line_error(code, err, *fragments)
    assert list(tmp_path.iterdir()) == [bad]
