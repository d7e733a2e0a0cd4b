"""Won et al. 2020's CRNN best_model.pth: a randomly initialised original
(PyTorch, written from training/model.py and modules.py, narrow channels
and GRU) in the release's key layout converts into our crnn, which gives
the same tag scores on the same 464000 samples (29 s at 16 kHz)."""

import pytest

torch = pytest.importorskip("torch")

from tagger.datasets.mtt import MTT_TOP50  # noqa: E402
from tests.convert import originals  # noqa: E402
from tests.convert.originals_crnn import CRNN  # noqa: E402

INPUT = 29 * 16000  # training/main.py
NARROW = dict(n_channels=8, rnn_units=16)  # the release: 64, 32


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """(best_model.pth, torch module) as torch.save wrote it."""
    return originals.saved_originals(tmp_path_factory.mktemp("zoo_crnn"),
                                     {"crnn": lambda: CRNN(**NARROW)}, INPUT)["crnn"]


def test_converted_scores_equal_the_original(checkpoint, tmp_path, capsys):
    path, original = checkpoint
    model, info, stdout = originals.convert_zoo(path, "crnn", tmp_path, capsys)
    assert "at 16000 Hz" in stdout
    assert list(info.tag_names) == list(MTT_TOP50)
    assert info.sample_rate == 16000 and info.window_segments == 1
    assert info.segment_length == INPUT and info.logmel["n_mels"] == 96
    assert info.model_args == {"num_tags": 50, "n_channels": 8, "rnn_units": 16}
    assert model.input.shape == (None, INPUT)
    originals.assert_same_scores(model, original, INPUT)


def test_the_original_has_the_reference_counts():
    """../shared/reference/sota_zoo.md: the original written here, at the
    release's sizes, has the measured counts."""
    assert originals.reference_counts(CRNN()) == (394_100, 898)


@pytest.mark.parametrize("change, fragments", [
    ("missing", ["lacks 1 tensor", "layer5.bias_hh_l1"]),
    ("shape", ["gru1/gru_cell/kernel", "shape (12, 48)", "expected (16, 48)"]),
    ("gates", ["layer5.weight_hh_l1", "not three gates"]),
])
def test_bad_files_are_one_line_and_write_nothing(checkpoint, change, fragments, tmp_path,
                                                  capsys):
    state = torch.load(checkpoint[0], weights_only=True)
    if change == "missing":
        del state["layer5.bias_hh_l1"]
    elif change == "shape":
        state["layer5.weight_ih_l0"] = torch.zeros(48, 12)
    else:
        state["layer5.weight_hh_l1"] = torch.zeros(47, 16)
    originals.assert_refused(state, ["--model", "crnn", "--dataset", "mtat"], fragments,
                             tmp_path, capsys)
