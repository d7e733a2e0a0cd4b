"""Won et al. 2020's SampleCNN and SampleCNNSE best_model.pth: randomly
initialised originals (PyTorch, written from training/model.py and
modules.py, narrow channels) in the release's key layout convert into our
sample_level and sample_level_se and give the same tag scores on the same
59049 samples of raw 16 kHz audio."""

import functools

import pytest

torch = pytest.importorskip("torch")

from tagger.datasets.mtt import MTT_TOP50  # noqa: E402
from tests.convert import originals  # noqa: E402
from tests.convert.originals_sample_level import SampleCNN, SampleCNNSE  # noqa: E402

INPUT = 59049  # training/main.py: 'sample' and 'se'
CHANNELS = 8  # narrow originals (the release: 128)
ORIGINAL = {"sample_level": SampleCNN, "sample_level_se": SampleCNNSE}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """{family: (best_model.pth, torch module)} as torch.save wrote them."""
    return originals.saved_originals(
        tmp_path_factory.mktemp("zoo_sample_level"),
        {name: functools.partial(original, n_channels=CHANNELS)
         for name, original in ORIGINAL.items()}, INPUT)


@pytest.mark.parametrize("name", sorted(ORIGINAL))
def test_converted_scores_equal_the_original(checkpoints, name, tmp_path, capsys):
    path, original = checkpoints[name]
    model, info, stdout = originals.convert_zoo(path, name, tmp_path, capsys)
    assert "windows of 3.69 s at 16000 Hz" in stdout
    assert list(info.tag_names) == list(MTT_TOP50)
    assert info.sample_rate == 16000 and info.window_segments == 1
    assert info.segment_length == INPUT and info.logmel is None
    assert info.model_args == {"num_tags": 50, "n_channels": CHANNELS}
    assert model.input.shape == (None, INPUT)
    originals.assert_same_scores(model, original, INPUT)


@pytest.mark.parametrize("name, counts", [("sample_level", (1_869_874, 5_888)),
                                          ("sample_level_se", (6_951_858, 14_592))])
def test_the_original_has_the_reference_counts(name, counts):
    """../shared/reference/sota_zoo.md: the original written here, at the
    release's 128 channels, has the measured counts."""
    assert originals.reference_counts(ORIGINAL[name]()) == counts


@pytest.mark.parametrize("name, change, model, fragments", [
    # SampleCNNSE has the keys short_res is detected by: it is found first
    ("sample_level_se", "none", "short_res",
     ["holds the sample_level_se model", "--model sample_level_se"]),
    ("sample_level_se", "missing", "sample_level_se", ["lacks 1 tensor", "layer4.conv_3.weight"]),
    ("sample_level", "shape", "sample_level",
     ["block2_conv/kernel", "shape (5, 8, 8)", "expected (3, 8, 8)"]),
])
def test_bad_files_are_one_line_and_write_nothing(checkpoints, name, change, model, fragments,
                                                  tmp_path, capsys):
    state = torch.load(checkpoints[name][0], weights_only=True)
    if change == "missing":
        del state["layer4.conv_3.weight"]
    elif change == "shape":
        state["layer2.conv.weight"] = torch.zeros(8, 8, 5)
    originals.assert_refused(state, ["--model", model, "--dataset", "mtat"], fragments,
                             tmp_path, capsys)
