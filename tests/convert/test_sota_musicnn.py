"""Won et al. 2020's Musicnn best_model.pth: randomly initialised originals
(PyTorch, written from training/model.py and modules.py, front-end filters
narrowed) in the release's key layout convert into our musicnn at both of
the release's sizes (backend 64 / dense 200: mtat, jamendo; 512 / 500:
msd) and give the same tag scores on the same 48000 samples at 16 kHz."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tagger.commands import convert_weights  # noqa: E402
from tagger.convert import sota  # noqa: E402
from tagger.datasets.msd.tags import CLASSIC_TAGS  # noqa: E402
from tagger.datasets.mtt import MTT_TOP50  # noqa: E402
from tagger.models.saved import load_tagger  # noqa: E402
from tests.checks import call_main, gliding_tones, one_line_error  # noqa: E402
from tests.convert import originals  # noqa: E402
from tests.convert.originals_musicnn import Musicnn  # noqa: E402

INPUT = 3 * 16000  # training/main.py
NARROW = dict(timbral=8, temporal=4)  # filters per branch (the release: 204, 51)
SIZES = {"mtat": (64, 200), "msd": (512, 500)}  # backend channels, dense units


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """{dataset: (best_model.pth, torch module)} as torch.save wrote them."""
    folder = tmp_path_factory.mktemp("sota_musicnn")
    found = {}
    for seed, dataset in enumerate(SIZES):
        torch.manual_seed(seed)
        module = originals.randomise(Musicnn(dataset=dataset, **NARROW),
                                     torch.from_numpy(gliding_tones(INPUT, 4, seed=1)), seed)
        path = folder / dataset / "best_model.pth"
        path.parent.mkdir()
        torch.save(module.state_dict(), path)
        found[dataset] = (path, module)
    return found


def check_scores(model, original):
    x = gliding_tones(INPUT)
    with torch.no_grad():
        expected = original(torch.from_numpy(x)).numpy()
    got = np.asarray(model(x, training=False))
    assert expected.shape == got.shape == (2, 50)
    assert 0.02 < expected.std() and 0.05 < expected.mean() < 0.95  # not saturated
    assert np.abs(got - expected).max() < 1e-4


def test_mtat_size_converts_with_the_same_scores(checkpoints, tmp_path, capsys):
    path, original = checkpoints["mtat"]
    out = tmp_path / "musicnn.keras"
    code, stdout, err = call_main(convert_weights.main, capsys, path, "--from", "sota",
                                  "--model", "musicnn", "--dataset", "mtat", "--out", out)
    assert code == 0, err
    assert "at 16000 Hz" in stdout
    model, info = load_tagger(str(out))
    assert info["tag_names"] == list(MTT_TOP50)
    assert info["sample_rate"] == 16000 and info["window_segments"] == 1
    assert info["segment_length"] == INPUT and info["logmel"]["n_mels"] == 96
    assert info["model_args"] == {"num_tags": 50, "timbral_filters": 8,
                                  "temporal_filters": 4, "backend_channels": 64,
                                  "dense_units": 200}
    assert model.input.shape == (None, INPUT)
    check_scores(model, original)


def test_msd_size_converts_with_the_same_scores(checkpoints):
    path, original = checkpoints["msd"]
    model, info = sota.convert(str(path), "musicnn", "msd")
    assert info["model_args"]["backend_channels"] == 512
    assert info["model_args"]["dense_units"] == 500
    assert info["default_tags"] == tuple(CLASSIC_TAGS)
    check_scores(model, original)


@pytest.mark.parametrize("dataset, counts", [("mtat", (784_300, 1_908)),
                                             ("msd", (7_972_000, 5_196))])
def test_the_original_has_the_reference_counts(dataset, counts):
    """../shared/reference/sota_zoo.md: the original written here, at the
    release's filters, has the measured counts."""
    module = Musicnn(dataset=dataset)
    norms = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)
    statistics = sum(m.running_mean.numel() + m.running_var.numel()
                     for m in module.modules() if isinstance(m, norms))
    assert (sum(p.numel() for p in module.parameters()), statistics) == counts


@pytest.mark.parametrize("change, model, fragments", [
    ("none", "crnn", ["holds the musicnn model", "--model musicnn"]),
    ("missing", "musicnn", ["lacks 1 tensor", "layers.3.bn.running_var"]),
    ("shape", "musicnn", ["backend2_conv/kernel", "shape (5, 64, 64)", "expected (7, 64, 64)"]),
])
def test_bad_files_are_one_line_and_write_nothing(checkpoints, change, model, fragments,
                                                  tmp_path, capsys):
    path, _ = checkpoints["mtat"]
    state = torch.load(path, weights_only=True)
    if change == "missing":
        del state["layers.3.bn.running_var"]
    elif change == "shape":
        state["layer2.conv.weight"] = torch.zeros(64, 64, 5)
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    out = tmp_path / "model.keras"
    code, _, err = call_main(convert_weights.main, capsys, bad, "--from", "sota",
                             "--model", model, "--dataset", "mtat", "--out", out)
    one_line_error(code, err, *fragments)
    assert list(tmp_path.iterdir()) == [bad]
