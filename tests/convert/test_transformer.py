"""Music Tagging Transformer checkpoints: a randomly initialised original
(PyTorch, released sizes) saved in the release's key layout converts into
our model, which gives the same tag scores on the same audio: the model's
whole window (4 segments), through the original's one STFT over it."""

import dataclasses

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tagger.commands import convert_weights  # noqa: E402
from tagger.datasets.msd.tags import CALS_TAGS  # noqa: E402
from tagger.models.saved import load_tagger  # noqa: E402
from tests.checks import call_main, one_line_error  # noqa: E402
from tests.convert import originals  # noqa: E402

SEGMENT = 59049
WINDOW = 4 * SEGMENT  # the converted model's input: 236196 samples, 10.7 s


def audio(batch=2, seed=0, samples=WINDOW):
    """Tones whose pitch glides over the window, plus noise: every frame,
    segment boundaries included, differs from its neighbours."""
    rng = np.random.default_rng(seed)
    t = np.arange(samples) / 22050.0
    start = rng.uniform(100, 2000, (batch, 1))
    phase = 2 * np.pi * (start * t + 0.5 * 300.0 * t ** 2)  # +300 Hz per second
    return (0.3 * np.sin(phase)
            + 0.05 * rng.standard_normal((batch, samples))).astype("float32")


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """{size: (path, torch model)}: teacher.ckpt as a Lightning checkpoint
    (`state_dict` of `network.*`), compact_student.ckpt as a plain state dict
    that also holds its teacher as `teacher_network.*`."""
    folder = tmp_path_factory.mktemp("mtt_ckpt")
    x = torch.from_numpy(audio(4, seed=1))
    torch.manual_seed(0)
    teacher = originals.randomise(originals.MusicTaggingTransformer(attention_ndim=256), x)
    student = originals.randomise(originals.MusicTaggingTransformer(attention_ndim=64), x, 1)
    teacher_path, student_path = folder / "teacher.ckpt", folder / "compact_student.ckpt"
    torch.save({"epoch": 7, "state_dict": {f"network.{k}": v for k, v in
                                           teacher.state_dict().items()}}, teacher_path)
    state = {f"network.{k}": v for k, v in student.state_dict().items()}
    state.update({f"teacher_network.{k}": v for k, v in teacher.state_dict().items()})
    torch.save(state, student_path)
    return {"teacher": (teacher_path, teacher), "student": (student_path, student)}


@pytest.mark.slow
@pytest.mark.parametrize("size", ["teacher", "student"])
def test_converted_scores_equal_the_original(checkpoints, size, tmp_path, capsys):
    path, original = checkpoints[size]
    out = tmp_path / f"{size}.keras"
    code, stdout, err = call_main(convert_weights.main, capsys, path, "--from", "transformer",
                                  "--size", size, "--out", out)
    assert code == 0, err
    model, info = load_tagger(str(out))
    assert list(info.tag_names) == list(CALS_TAGS) and len(CALS_TAGS) == 50
    assert info.sample_rate == 22050 and info.window_segments == 4
    assert info.logmel["mel_scale"] == "htk" and info.logmel["top_db"] is None
    assert info.model_args["attention_ndim"] == {"teacher": 256, "student": 64}[size]
    assert info.model_args["stft_over"] == "window"
    assert model.input.shape == (None, WINDOW)
    # the original's one STFT over the window: 1 + 236196 // 512 frames
    assert model.get_layer("log_mel").output.shape == (None, 462, 128)
    originals.assert_same_scores(model, original, audio())


def test_front_end_is_torchaudios():
    """Our LogMel with the converted settings equals torchaudio's
    MelSpectrogram + AmplitudeToDB (as written in originals.py)."""
    from tagger.convert.transformer import LOGMEL
    from tagger.layers import LogMel

    x = audio()
    layer = LogMel(sample_rate=22050, **dataclasses.asdict(LOGMEL))
    # the filter bank in float64: torchaudio's float32 one differs by up to
    # 2e-5, which moves a narrow bin under a strong tone by ~0.01 dB (that
    # difference is the original's own; the converted scores above include it)
    spectrogram = originals.MelSpectrogram(dtype=torch.float64)
    theirs = originals.amplitude_to_db(spectrogram(torch.from_numpy(x)))
    ours = np.asarray(layer(x)).transpose(0, 2, 1)
    assert ours.shape == tuple(theirs.shape) == (2, 128, 462)  # one STFT over the window
    # dB of float32 powers: compare where the energy is well above the float32
    # floor, within 80 dB of each example's peak (the quietest bins, ~95 dB
    # down, differ by a few 1e-3 dB with the CPU's FFT kernels)
    theirs = theirs.numpy()
    audible = theirs > theirs.max(axis=(1, 2), keepdims=True) - 80.0
    assert audible.mean() > 0.999
    assert np.abs(ours - theirs)[audible].max() < 2e-3


@pytest.mark.parametrize("change, argv, fragments", [
    ("none", ["--size", "student"], ["attention width 256", "--size teacher"]),
    ("missing", [], ["lacks 1 tensor", "network.mlp_head.1.bias"]),
    ("extra", [], ["does not use", "network.extra"]),
    ("shape", [], ["frontend_projection/bias", "shape (255,)", "expected (256,)"]),
    ("bank", [], ["mel filter bank differs"]),
])
def test_bad_checkpoints_are_one_line_and_write_nothing(checkpoints, change, argv,
                                                       fragments, tmp_path, capsys):
    path, _ = checkpoints["teacher"]
    state = torch.load(path, weights_only=True)["state_dict"]
    if change == "missing":
        del state["network.mlp_head.1.bias"]
    elif change == "extra":
        state["network.extra.weight"] = torch.zeros(3)
    elif change == "shape":
        state["network.frontend.fc.bias"] = torch.zeros(255)
    elif change == "bank":
        state["network.spec.mel_scale.fb"] = state["network.spec.mel_scale.fb"] * 1.1
    bad = tmp_path / "bad.ckpt"
    torch.save(state, bad)
    out = tmp_path / "model.keras"
    code, _, err = call_main(convert_weights.main, capsys, bad, "--from", "transformer",
                             *argv, "--out", out)
    one_line_error(code, err, *fragments)
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]


def test_a_checkpoint_without_front_end_buffers_gets_the_papers_settings(checkpoints,
                                                                       tmp_path):
    from tagger.convert import transformer

    path, _ = checkpoints["student"]
    state = torch.load(path, weights_only=True)
    del state["network.spec.spectrogram.window"], state["network.spec.mel_scale.fb"]
    torch.save(state, tmp_path / "student.ckpt")
    model, info = transformer.convert(str(tmp_path / "student.ckpt"), size="student")
    assert info["logmel"] == dataclasses.asdict(transformer.LOGMEL)
    reference, _ = transformer.convert(str(path))
    for a, b in zip(model.get_weights(), reference.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_files_of_another_kind_are_one_line(checkpoints, tmp_path, capsys):
    import h5py

    text = tmp_path / "notes.ckpt"
    text.write_text("not weights\n")
    hdf5 = tmp_path / "model.hdf5"
    with h5py.File(hdf5, "w") as f:
        f.create_dataset("x", data=np.zeros(2))
    student, _ = checkpoints["student"]
    out = tmp_path / "out.keras"
    for source, kind, fragments in [
            (text, "transformer", ["cannot read", "as PyTorch weights"]),
            (hdf5, "transformer", ["cannot read", "as PyTorch weights"]),
            (student, "self_attention", ["not the self-attention tagger's weights"]),
            (student, "resemul", ["not an HDF5 file"])]:
        code, _, err = call_main(convert_weights.main, capsys, source, "--from", kind,
                                 "--out", out)
        one_line_error(code, err, *fragments)
        assert not out.exists()
    code, _, err = call_main(convert_weights.main, capsys, student, "--from", "transformer",
                             "--block", "se", "--out", out)
    one_line_error(code, err, "--block applies to --from resemul only")
