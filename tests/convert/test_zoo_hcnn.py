"""Won et al. 2020's HarmonicCNN best_model.pth: a randomly initialised
original (PyTorch, written from training/model.py and modules.py, narrow
channels, a learnt-looking bandwidth Q) in the release's key layout
converts into our hcnn, whose harmonic front end and tag scores equal the
original's on the same 80000 samples of 16 kHz audio."""

import keras
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tagger.datasets.mtt import MTT_TOP50  # noqa: E402
from tests.checks import gliding_tones  # noqa: E402
from tests.convert import originals  # noqa: E402
from tests.convert.originals_hcnn import HarmonicCNN  # noqa: E402

INPUT = 80000  # training/main.py: 'hcnn', 5 s at 16 kHz
CHANNELS = 8  # narrow original (the release: 128)
Q = 1.37  # the bandwidth parameter, moved away from its initial 1.0


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """(best_model.pth, torch module) as torch.save wrote it."""
    return originals.saved_originals(
        tmp_path_factory.mktemp("zoo_hcnn"),
        {"hcnn": lambda: HarmonicCNN(n_channels=CHANNELS, bw_q=Q)}, INPUT)["hcnn"]


def test_the_file_holds_the_originals_buffers(checkpoint):
    state = torch.load(checkpoint[0], weights_only=True)
    assert sorted(k for k in state if k.startswith("hstft.")) == ["hstft.bw_Q",
                                                                  "hstft.spec.window"]
    assert state["hstft.bw_Q"].tolist() == pytest.approx([Q])


@pytest.mark.slow
def test_converted_scores_equal_the_original(checkpoint, tmp_path, capsys):
    path, original = checkpoint
    model, info, stdout = originals.convert_zoo(path, "hcnn", tmp_path, capsys)
    assert "windows of 5.00 s at 16000 Hz" in stdout
    assert list(info.tag_names) == list(MTT_TOP50)
    assert info.sample_rate == 16000 and info.window_segments == 1
    assert info.segment_length == INPUT and info.logmel is None
    assert info.model_args == {"num_tags": 50, "n_channels": CHANNELS, "n_harmonic": 6}
    assert model.input.shape == (None, INPUT)
    np.testing.assert_allclose(np.asarray(model.get_layer("harmonic_stft").q), [Q])
    x = gliding_tones(INPUT)
    with torch.no_grad():
        bands = original.hstft(torch.from_numpy(x)).numpy()  # (b, harmonic, f0, time)
    front = keras.Model(model.input, model.get_layer("harmonic_stft").output)
    ours = np.asarray(front(x)).transpose(0, 3, 1, 2)
    assert ours.shape == bands.shape == (2, 6, 128, 313)
    assert np.abs(ours - bands).max() < 5e-3  # dB (measured 8e-4: two float32 STFTs)
    originals.assert_same_scores(model, original, x)


def test_the_original_has_the_reference_counts():
    """../shared/reference/sota_zoo.md: the original written here, at the
    release's 128 channels, has the measured counts (Q included)."""
    assert originals.reference_counts(HarmonicCNN()) == (3_631_551, 4_876)


@pytest.mark.parametrize("change, model, fragments", [
    ("none", "short_res", ["holds the hcnn model", "--model hcnn"]),
    ("window", "hcnn", ["stored STFT window (1024,)", "periodic Hann window of 512"]),
    ("missing", "hcnn", ["lacks 1 tensor", "hstft.bw_Q"]),
    ("shape", "hcnn", ["block3_conv1/kernel", "shape (5, 5, 8, 8)", "expected (3, 3, 8, 8)"]),
])
def test_bad_files_are_one_line_and_write_nothing(checkpoint, change, model, fragments,
                                                  tmp_path, capsys):
    state = torch.load(checkpoint[0], weights_only=True)
    if change == "window":
        state["hstft.spec.window"] = torch.hann_window(1024)
    elif change == "missing":
        del state["hstft.bw_Q"]
    elif change == "shape":
        state["layer3.conv_1.weight"] = torch.zeros(8, 8, 5, 5)
    originals.assert_refused(state, ["--model", model, "--dataset", "mtat"], fragments,
                             tmp_path, capsys)
