"""Won et al. 2020's SampleCNN and SampleCNNSE best_model.pth: randomly
initialised originals (PyTorch, written from training/model.py and
modules.py, narrow channels) in the release's key layout convert into our
sample_level and sample_level_se and give the same tag scores on the same
59049 samples of raw 16 kHz audio."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tagger.commands import convert_weights  # noqa: E402
from tagger.datasets.mtt import MTT_TOP50  # noqa: E402
from tagger.models.saved import load_tagger  # noqa: E402
from tests.checks import call_main, gliding_tones, one_line_error  # noqa: E402
from tests.convert import originals  # noqa: E402
from tests.convert.originals_sample_level import SampleCNN, SampleCNNSE  # noqa: E402

INPUT = 59049  # training/main.py: 'sample' and 'se'
CHANNELS = 8  # narrow originals (the release: 128)
ORIGINAL = {"sample_level": SampleCNN, "sample_level_se": SampleCNNSE}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """{family: (best_model.pth, torch module)} as torch.save wrote them."""
    folder = tmp_path_factory.mktemp("sota_sample_level")
    found = {}
    for seed, (name, original) in enumerate(ORIGINAL.items()):
        torch.manual_seed(seed)
        module = originals.randomise(original(n_channels=CHANNELS),
                                     torch.from_numpy(gliding_tones(INPUT, 4, seed=1)), seed)
        path = folder / name / "best_model.pth"
        path.parent.mkdir()
        torch.save(module.state_dict(), path)
        found[name] = (path, module)
    return found


@pytest.mark.parametrize("name", sorted(ORIGINAL))
def test_converted_scores_equal_the_original(checkpoints, name, tmp_path, capsys):
    path, original = checkpoints[name]
    out = tmp_path / f"{name}.keras"
    code, stdout, err = call_main(convert_weights.main, capsys, path, "--from", "sota",
                                  "--model", name, "--dataset", "mtat", "--out", out)
    assert code == 0, err
    assert "windows of 3.69 s at 16000 Hz" in stdout
    model, info = load_tagger(str(out))
    assert info["tag_names"] == list(MTT_TOP50)
    assert info["sample_rate"] == 16000 and info["window_segments"] == 1
    assert info["segment_length"] == INPUT and info["logmel"] is None
    assert info["model_args"] == {"num_tags": 50, "n_channels": CHANNELS}
    assert model.input.shape == (None, INPUT)
    x = gliding_tones(INPUT)
    with torch.no_grad():
        expected = original(torch.from_numpy(x)).numpy()
    got = np.asarray(model(x, training=False))
    assert expected.shape == got.shape == (2, 50)
    assert 0.02 < expected.std() and 0.05 < expected.mean() < 0.95  # not saturated
    assert np.abs(got - expected).max() < 1e-4


@pytest.mark.parametrize("name, counts", [("sample_level", (1_869_874, 5_888)),
                                          ("sample_level_se", (6_951_858, 14_592))])
def test_the_original_has_the_reference_counts(name, counts):
    """../shared/reference/sota_zoo.md: the original written here, at the
    release's 128 channels, has the measured counts."""
    module = ORIGINAL[name]()
    statistics = sum(m.running_mean.numel() + m.running_var.numel()
                     for m in module.modules() if isinstance(m, torch.nn.BatchNorm1d))
    assert (sum(p.numel() for p in module.parameters()), statistics) == counts


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
    path, _ = checkpoints[name]
    state = torch.load(path, weights_only=True)
    if change == "missing":
        del state["layer4.conv_3.weight"]
    elif change == "shape":
        state["layer2.conv.weight"] = torch.zeros(8, 8, 5)
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    out = tmp_path / "model.keras"
    code, _, err = call_main(convert_weights.main, capsys, bad, "--from", "sota",
                             "--model", model, "--dataset", "mtat", "--out", out)
    one_line_error(code, err, *fragments)
    assert list(tmp_path.iterdir()) == [bad]
