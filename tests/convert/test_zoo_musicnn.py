"""Won et al. 2020's Musicnn best_model.pth: randomly initialised originals
(PyTorch, written from training/model.py and modules.py, front-end filters
narrowed) in the release's key layout convert into our musicnn at both of
the release's sizes (backend 64 / dense 200: mtat, jamendo; 512 / 500:
msd) and give the same tag scores on the same 48000 samples at 16 kHz."""

import functools

import pytest

torch = pytest.importorskip("torch")

from tagger.convert import zoo  # noqa: E402
from tagger.datasets.msd.tags import CLASSIC_TAGS  # noqa: E402
from tagger.datasets.mtt import MTT_TOP50  # noqa: E402
from tests.convert import originals  # noqa: E402
from tests.convert.originals_musicnn import Musicnn  # noqa: E402

INPUT = 3 * 16000  # training/main.py
NARROW = dict(timbral=8, temporal=4)  # filters per branch (the release: 204, 51)
SIZES = {"mtat": (64, 200), "msd": (512, 500)}  # backend channels, dense units


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """{dataset: (best_model.pth, torch module)} as torch.save wrote them."""
    return originals.saved_originals(
        tmp_path_factory.mktemp("zoo_musicnn"),
        {dataset: functools.partial(Musicnn, dataset=dataset, **NARROW) for dataset in SIZES},
        INPUT)


def test_mtat_size_converts_with_the_same_scores(checkpoints, tmp_path, capsys):
    path, original = checkpoints["mtat"]
    model, info, stdout = originals.convert_zoo(path, "musicnn", tmp_path, capsys)
    assert "at 16000 Hz" in stdout
    assert list(info.tag_names) == list(MTT_TOP50)
    assert info.sample_rate == 16000 and info.window_segments == 1
    assert info.segment_length == INPUT and info.logmel["n_mels"] == 96
    assert info.model_args == {"num_tags": 50, "timbral_filters": 8,
                                  "temporal_filters": 4, "backend_channels": 64,
                                  "dense_units": 200}
    assert model.input.shape == (None, INPUT)
    originals.assert_same_scores(model, original, INPUT)


def test_msd_size_converts_with_the_same_scores(checkpoints):
    path, original = checkpoints["msd"]
    model, info = zoo.convert(str(path), "musicnn", "msd")
    assert info["model_args"]["backend_channels"] == 512
    assert info["model_args"]["dense_units"] == 500
    assert info["default_tags"] == tuple(CLASSIC_TAGS)
    originals.assert_same_scores(model, original, INPUT)


@pytest.mark.parametrize("dataset, counts", [("mtat", (784_300, 1_908)),
                                             ("msd", (7_972_000, 5_196))])
def test_the_original_has_the_reference_counts(dataset, counts):
    """../shared/reference/sota_zoo.md: the original written here, at the
    release's filters, has the measured counts."""
    assert originals.reference_counts(Musicnn(dataset=dataset)) == counts


@pytest.mark.parametrize("change, model, fragments", [
    ("none", "crnn", ["holds the musicnn model", "--model musicnn"]),
    ("missing", "musicnn", ["lacks 1 tensor", "layers.3.bn.running_var"]),
    ("shape", "musicnn", ["backend2_conv/kernel", "shape (5, 64, 64)", "expected (7, 64, 64)"]),
])
def test_bad_files_are_one_line_and_write_nothing(checkpoints, change, model, fragments,
                                                  tmp_path, capsys):
    state = torch.load(checkpoints["mtat"][0], weights_only=True)
    if change == "missing":
        del state["layers.3.bn.running_var"]
    elif change == "shape":
        state["layer2.conv.weight"] = torch.zeros(64, 64, 5)
    originals.assert_refused(state, ["--model", model, "--dataset", "mtat"], fragments,
                             tmp_path, capsys)
