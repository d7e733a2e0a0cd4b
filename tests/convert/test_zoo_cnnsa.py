"""Won et al. 2020's CNNSA best_model.pth: a randomly initialised original
(PyTorch, written from training/model.py, modules.py and
attention_modules.py, narrow channels) in the release's key layout converts
into our cnnsa, with the original's fixed [CLS] vector, and gives the same
tag scores on the same 240000 samples (15 s at 16 kHz)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tagger.convert import zoo  # noqa: E402
from tagger.datasets.mtt import MTT_TOP50  # noqa: E402
from tests.convert import originals  # noqa: E402
from tests.convert.originals_cnnsa import CNNSA  # noqa: E402

INPUT = 15 * 16000  # training/main.py: 'attention'
CHANNELS = 8  # narrow original (the release: 128): an encoder 16 wide, 8 heads of 2


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """(best_model.pth, torch module) as torch.save wrote it."""
    return originals.saved_originals(tmp_path_factory.mktemp("zoo_cnnsa"),
                                     {"cnnsa": lambda: CNNSA(n_channels=CHANNELS)},
                                     INPUT)["cnnsa"]


@pytest.mark.slow
def test_converted_scores_equal_the_original(checkpoint, tmp_path, capsys):
    path, original = checkpoint
    model, info, stdout = originals.convert_zoo(path, "cnnsa", tmp_path, capsys)
    assert "windows of 15.00 s at 16000 Hz" in stdout
    assert list(info.tag_names) == list(MTT_TOP50)
    assert info.sample_rate == 16000 and info.window_segments == 1
    assert info.segment_length == INPUT
    assert info.logmel["n_mels"] == 128 and info.logmel["mel_scale"] == "htk"
    assert info.model_args == {"num_tags": 50, "n_channels": CHANNELS,
                                  "attention_layers": 2, "attention_heads": 8}
    assert model.input.shape == (None, INPUT)
    np.testing.assert_array_equal(model.get_layer("cls_token").token.numpy(),
                                  original.vec_cls[0].numpy())
    originals.assert_same_scores(model, original, INPUT)


def test_the_original_has_the_reference_counts():
    """../shared/reference/sota_zoo.md: the original written here, at the
    release's size, has the measured counts (the [CLS] vector is neither a
    parameter nor a buffer)."""
    module = CNNSA()
    assert originals.reference_counts(module) == (10_521_652, 9_218)
    assert "vec_cls" not in module.state_dict()


def test_detected_by_its_keys(checkpoint):
    path, _ = checkpoint
    state = torch.load(path, weights_only=True)
    assert zoo.family_of({k: v.numpy() for k, v in state.items()}) == "cnnsa"


@pytest.mark.parametrize("change, model, fragments", [
    ("none", "short_res", ["holds the cnnsa model", "--model cnnsa"]),
    ("missing", "cnnsa", ["lacks 1 tensor", "encoder.layer.1.output.LayerNorm.bias"]),
])
def test_bad_files_are_one_line_and_write_nothing(checkpoint, change, model, fragments,
                                                  tmp_path, capsys):
    state = torch.load(checkpoint[0], weights_only=True)
    if change == "missing":
        del state["encoder.layer.1.output.LayerNorm.bias"]
    originals.assert_refused(state, ["--model", model, "--dataset", "mtat"], fragments,
                             tmp_path, capsys)
