"""Won et al. 2020's best_model.pth (minzwon/sota-music-tagging-models):
randomly initialised originals (PyTorch, written from training/model.py and
modules.py, narrow channels) saved in the release's key layout convert into
our short_cnn / short_res / fcn, which give the same tag scores on the same
audio at the original's input lengths (59049 and 464000 samples, 16 kHz)."""

import dataclasses
import functools

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tagger.commands import convert_weights  # noqa: E402
from tagger.convert import zoo  # noqa: E402
from tagger.datasets.msd.tags import CLASSIC_TAGS  # noqa: E402
from tagger.datasets.mtt import MTT_TOP50  # noqa: E402
from tests.checks import call_main, gliding_tones, one_line_error  # noqa: E402
from tests.convert import originals  # noqa: E402

CHANNELS = 8  # narrow originals: the structure and key layout of the released ones
INPUT = {"short_cnn": 59049, "short_res": 59049, "fcn": 29 * 16000}
ORIGINAL = {"short_cnn": originals.ShortChunkCNN, "short_res": originals.ShortChunkCNNRes,
            "fcn": originals.FCN}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """{model: (best_model.pth, torch module)}, state dicts as torch.save
    wrote them for the release."""
    return originals.saved_originals(
        tmp_path_factory.mktemp("zoo"),
        {name: functools.partial(original, n_channels=CHANNELS)
         for name, original in ORIGINAL.items()}, INPUT)


@pytest.mark.parametrize("name", sorted(ORIGINAL))
def test_converted_scores_equal_the_original(checkpoints, name, tmp_path, capsys):
    path, original = checkpoints[name]
    model, info, stdout = originals.convert_zoo(path, name, tmp_path, capsys)
    assert "at 16000 Hz" in stdout
    assert list(info.tag_names) == list(MTT_TOP50)
    assert info.sample_rate == 16000 and info.window_segments == 1
    assert info.segment_length == INPUT[name]
    assert info.logmel["mel_scale"] == "htk" and info.logmel["top_db"] is None
    assert info.model_args == {"num_tags": 50, "n_channels": CHANNELS}
    assert model.input.shape == (None, INPUT[name])
    originals.assert_same_scores(model, original, INPUT[name])


@pytest.mark.parametrize("name, n_mels", [("short_res", 128), ("fcn", 96)])
def test_front_end_is_torchaudios(name, n_mels):
    """Our LogMel with the families' settings equals torchaudio's
    MelSpectrogram + AmplitudeToDB (as written in originals.py)."""
    from tagger.layers import LogMel
    from tagger.models import family

    logmel = family(name).logmel
    assert logmel.n_mels == n_mels
    x = gliding_tones(59049)
    layer = LogMel(sample_rate=16000, **dataclasses.asdict(logmel))
    spectrogram = originals.MelSpectrogram(16000, 512, 0.0, 8000.0, n_mels,
                                           dtype=torch.float64)
    theirs = originals.amplitude_to_db(spectrogram(torch.from_numpy(x))).numpy()
    ours = np.asarray(layer(x)).transpose(0, 2, 1)
    assert ours.shape == theirs.shape == (2, n_mels, 231)
    audible = theirs > theirs.max(axis=(1, 2), keepdims=True) - 80.0
    # 128 HTK bands over 257 bins: the lowest band holds no bin (torchaudio
    # warns of an all-zero filter); both give the floor, -100 dB, there
    empty = theirs == -100.0
    assert empty.any() == (n_mels == 128) and np.all(ours[empty] == -100.0)
    assert (audible | empty).mean() > 0.999
    assert np.abs(ours - theirs)[audible].max() < 2e-3


def test_tags_per_dataset_and_an_empty_filter_bank(checkpoints, tmp_path):
    """Old torchaudio saved `spec.mel_scale.fb` empty until first use: the
    paper's bank is taken. --dataset names the outputs."""
    path, _ = checkpoints["short_cnn"]
    state = torch.load(path, weights_only=True)
    state["spec.mel_scale.fb"] = torch.tensor([])
    torch.save(state, tmp_path / "best_model.pth")
    model, info = zoo.convert(str(tmp_path / "best_model.pth"), "short_cnn", "msd")
    assert info["default_tags"] == tuple(CLASSIC_TAGS) and "Hip-Hop" in CLASSIC_TAGS
    reference, _ = zoo.convert(str(path), "short_cnn", "jamendo")
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)
    jamendo = zoo.default_tags("jamendo")
    assert len(set(jamendo)) == 50 and list(jamendo) == sorted(jamendo)
    assert jamendo[:2] == ("genre---alternative", "genre---ambient")
    assert jamendo[-1] == "mood/theme---relaxing"


@pytest.mark.parametrize("change, argv, fragments", [
    ("none", ["--model", "short_cnn"], ["holds the short_res model", "--model short_res"]),
    ("missing", [], ["lacks 1 tensor", "layer3.bn_2.running_var"]),
    ("extra", [], ["does not use", "extra.weight"]),
    ("shape", [], ["tags/bias", "shape (49,)", "expected (50,)"]),
    ("bank", [], ["mel filter bank differs"]),
    ("window", [], ["not the periodic Hann window"]),
])
def test_bad_files_are_one_line_and_write_nothing(checkpoints, change, argv, fragments,
                                                  tmp_path, capsys):
    path, _ = checkpoints["short_res"]
    state = torch.load(path, weights_only=True)
    if change == "missing":
        del state["layer3.bn_2.running_var"]
    elif change == "extra":
        state["extra.weight"] = torch.zeros(3)
    elif change == "shape":
        state["dense2.bias"] = torch.zeros(49)
    elif change == "bank":
        state["spec.mel_scale.fb"] = state["spec.mel_scale.fb"] * 1.1
    elif change == "window":
        state["spec.spectrogram.window"] = torch.ones(512)
    originals.assert_refused(state, [*(argv or ["--model", "short_res"]), "--dataset", "mtat"],
                             fragments, tmp_path, capsys)


def test_flags_are_checked(checkpoints, tmp_path, capsys):
    path, _ = checkpoints["fcn"]
    out = tmp_path / "out.keras"
    code, _, err = call_main(convert_weights.main, capsys, path, "--from", "zoo",
                             "--model", "fcn", "--out", out)
    one_line_error(code, err, "--from zoo needs --dataset", "mtat, msd, jamendo")
    code, _, err = call_main(convert_weights.main, capsys, path, "--from", "transformer",
                             "--dataset", "mtat", "--out", out)
    one_line_error(code, err, "--dataset", "--from zoo")
    code, _, err = call_main(convert_weights.main, capsys, path, "--from", "self_attention",
                             "--out", out)
    one_line_error(code, err, "not the self-attention tagger's weights")
    assert not out.exists()


def test_registry_entries_convert_by_name_from_a_mirror(checkpoints, tmp_path, monkeypatch):
    """The release names every file best_model.pth: a mirror (and the cache)
    keeps <dataset>/<model>/, so two datasets' files of one model stay apart."""
    import shutil

    from tagger import pretrained

    path, _ = checkpoints["short_res"]
    mirror = tmp_path / "mirror"
    for dataset in ("msd", "jamendo"):
        (mirror / dataset / "short_res").mkdir(parents=True)
        shutil.copy(path, mirror / dataset / "short_res" / "best_model.pth")
    monkeypatch.setenv("TAGGER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TAGGER_WEIGHTS_URL", f"file://{mirror}")
    entry = pretrained.get("msd-short-res")
    assert entry.urls == ("https://github.com/minzwon/sota-music-tagging-models/raw/"
                          "master/models/msd/short_res/best_model.pth",)
    assert "Table 2" in entry.figures and entry.window_samples == 59049
    assert pretrained.get("msd-fcn").window_samples == 464000
    # Musicnn's MSD model is the larger one (backend 512, dense 500)
    assert (pretrained.get("mtat-musicnn").approx_mb, pretrained.get("msd-musicnn").approx_mb) \
        == (3.1, 32)
    model, info = pretrained.load_pretrained("msd-short-res", progress=False)
    assert list(info.tag_names) == list(CLASSIC_TAGS) and info.sample_rate == 16000
    _, info = pretrained.load_pretrained("jamendo-short-res", progress=False)
    assert list(info.tag_names) == list(zoo.default_tags("jamendo"))
    assert list(pretrained.get("jamendo-short-res").tags()) == list(info.tag_names)
    originals_dir = tmp_path / "home" / "originals"
    assert (originals_dir / "msd" / "short_res" / "best_model.pth").is_file()
    assert (originals_dir / "jamendo" / "short_res" / "best_model.pth").is_file()
