"""The musicnn package's four trained checkpoints, converted from its wheel
(fetched with pip as a user's first use fetches it), against the package's
own code on recorded music: `tag.py NAME FILE --taggram` equals, window by
window, what the package's graph (`models.py` under tf-keras, its checkpoint,
its batching; tests/convert/musicnn_reference.py) gives for the same
excerpts, its overflow mended (docs/pretrained.md)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from tagger.commands import pretrained as pretrained_cmd
from tagger.commands import tag as tag_cmd
from tagger.convert import ConvertConfig, convert_file, musicnn_package
from tagger.models.saved import load_tagger
from tests.checks import HANG_S, ROOT, call_main, one_line_error

NAMES = ("MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg")
TOLERANCE = 1e-3  # the bound per score; measured: docs/pretrained.md


@pytest.fixture(scope="module")
def converted(musicnn_wheel):
    """{name: (model path, model, info)}: the four names downloaded with
    `tagger-pretrained download NAME --weights WHEEL` into the session's cache."""
    from tagger import pretrained

    found = {}
    for name in NAMES:
        assert pretrained_cmd.main(["download", name, "--weights", musicnn_wheel,
                                    "--no-progress"]) == 0
        path = pretrained.model_path(pretrained.get(name))
        model, info = load_tagger(path)
        found[name] = (path, model, info)
    return found


@pytest.fixture(scope="module")
def reference(musicnn_wheel, real_music, tmp_path_factory):
    """What the package's own code gives for the excerpts (an .npz's arrays)."""
    pytest.importorskip("tf_keras", reason="the package's graph needs tf-keras "
                                           "(requirements-dev.txt)")
    pytest.importorskip("librosa", reason="the package's front end needs librosa "
                                          "(requirements-dev.txt)")
    out = tmp_path_factory.mktemp("musicnn_reference") / "reference.npz"
    script = os.path.join(ROOT, "tests", "convert", "musicnn_reference.py")
    done = subprocess.run([sys.executable, script, musicnn_wheel, str(out), ",".join(NAMES),
                           *real_music], capture_output=True, text=True, timeout=HANG_S)
    assert done.returncode == 0, done.stderr[-3000:]
    with np.load(out) as arrays:
        return dict(arrays)


def test_every_variable_of_the_four_checkpoints_is_used(musicnn_wheel, converted):
    """The counts equal the checkpoints' variables without Adam's, and the
    tensors sit where the mapping says (spot checks on every kind)."""
    for name, (_, model, info) in converted.items():
        variables, _ = musicnn_package.read_checkpoint(musicnn_wheel, name)
        weights = {k: v for k, v in variables.items()
                   if not k.endswith(("/Adam", "/Adam_1")) and "_power" not in k}
        assert sum(v.size for v in weights.values()) == model.count_params(), name
        assert len(weights) == len(model.weights), name
        assert info.model == ("pons_vgg" if "vgg" in name else "pons_musicnn")
        assert info.tag_names[0] == ("guitar" if name.startswith("MTT") else "rock")
        assert "Pompeu Fabra" in info.licence and info.segment_length == 48128
        tags = model.get_layer("tags")
        if "vgg" in name:
            np.testing.assert_array_equal(model.get_layer("conv5").kernel, weights["5CNN/kernel"])
            np.testing.assert_array_equal(tags.kernel, weights["dense/kernel"])
            continue
        np.testing.assert_array_equal(model.get_layer("timbral2_conv").kernel,
                                      weights["conv2d_1/kernel"])  # 7 x 67
        np.testing.assert_array_equal(model.get_layer("midend1_conv").kernel,
                                      weights["conv2d_5/kernel"][:, :, 0])
        np.testing.assert_array_equal(model.get_layer("embedding").moving_mean,
                                      weights["batch_normalization_10/moving_mean"])
        np.testing.assert_array_equal(tags.bias, weights["dense_1/bias"])


@pytest.mark.slow  # starts the package's code in a process of its own
def test_taggrams_equal_the_packages_own_graph(converted, reference, real_music, tmp_path,
                                               capsys):
    """tag.py's taggram, window by window, within 1e-3 of the package's for
    all four models on recorded music; the embeddings too: VGG's pool5,
    Musicnn's pooled features (--embedding-layer pooled) and penultimate
    layer (the package's extractor returns the first window's for every
    window, so that one is compared)."""
    worst = {}
    for name in NAMES:
        folder = tmp_path / name
        code, _, err = call_main(tag_cmd.main, capsys, name, *real_music, "--taggram", folder,
                                 "--embeddings", tmp_path / f"{name}.npz", "--no-progress")
        assert code == 0, err
        embeddings = np.load(tmp_path / f"{name}.npz")
        for i, path in enumerate(real_music):
            ours = np.load(folder / (os.path.basename(path) + ".npy"))
            theirs = reference[f"{name}/{i}/taggram"]
            assert ours.shape == theirs.shape == (10, 50), (name, path)  # 30 s: 10 of 2.99 s
            worst[name] = max(worst.get(name, 0.0), float(np.abs(ours - theirs).max()))
            key = "penultimate" if "musicnn" in name else "pool5"
            vectors = embeddings[path + "::windows"]
            rows = slice(0, 1) if key == "penultimate" else slice(None)
            np.testing.assert_allclose(vectors[rows], reference[f"{name}/{i}/{key}"][rows],
                                       atol=1e-3)
        if "musicnn" in name:  # its pooled features: max and mean, interleaved per channel
            code, _, err = call_main(tag_cmd.main, capsys, name, *real_music, "--embeddings",
                                     tmp_path / f"{name}-pooled.npz", "--embedding-layer",
                                     "pooled", "--no-progress")
            assert code == 0, err
            pooled = np.load(tmp_path / f"{name}-pooled.npz")
            for i, path in enumerate(real_music):
                vectors = pooled[path + "::windows"]  # (windows, 2 x 753)
                for column, key in enumerate(("max_pool", "mean_pool")):
                    np.testing.assert_allclose(vectors[:, column::2],  # values up to ~30
                                               reference[f"{name}/{i}/{key}"], rtol=1e-3,
                                               atol=1e-3)
    print("largest taggram differences:", worst)
    assert max(worst.values()) <= TOLERANCE, worst


@pytest.mark.slow
def test_the_reference_is_the_packages_front_end_without_its_overflow(reference, real_music):
    """The mended front end equals the package's batch_data wherever that
    is finite (to float16's rounding of 10000 x + 1 and its log, which the
    package also takes in float16), and the package overflowed on these
    recordings."""
    for i in range(len(real_music)):
        assert reference[f"features/{i}"].shape == (10, 187, 96)
        assert np.isfinite(reference[f"features/{i}"]).all()
        assert float(reference[f"agree/{i}"]) < 4e-3
    assert max(float(reference[f"overflow/{i}"]) for i in range(len(real_music))) > 0


def test_convert_weights_takes_the_wheel_and_refuses_a_wrong_model(musicnn_wheel, tmp_path,
                                                                    capsys):
    from tagger.commands import convert_weights

    out = tmp_path / "msd.keras"
    code, stdout, err = call_main(convert_weights.main, capsys, musicnn_wheel, "--from",
                                  "musicnn", "--model", "MSD_vgg", "--out", out)
    assert code == 0, err
    assert "pons_vgg" in stdout and "at 16000 Hz" in stdout and out.is_file()
    code, _, err = call_main(convert_weights.main, capsys, musicnn_wheel, "--from", "musicnn",
                             "--out", tmp_path / "none.keras")
    one_line_error(code, err, "--from musicnn needs --model", "MTT_musicnn")
    code, _, err = call_main(convert_weights.main, capsys, musicnn_wheel, "--from", "musicnn",
                             "--model", "MTT_musicnn", "--dataset", "mtat", "--out",
                             tmp_path / "none.keras")
    one_line_error(code, err, "--dataset applies to --from zoo only")
    assert not (tmp_path / "none.keras").exists()


def _wheel_with(source, target, changes):
    """A copy of the wheel at `source` with members replaced (`changes`:
    name -> bytes, None to leave it out)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for member in old.infolist():
            data = changes.get(member.filename, old.read(member))
            if data is not None:
                new.writestr(member, data)
    return str(target)


def _checkpoint_bytes(tmp_path, variables):
    """(.index, .data) bytes of a TF checkpoint holding `variables`."""
    import tensorflow as tf

    prefix = str(tmp_path / "edited")
    names = sorted(variables)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(variables[n]) for n in names])
    with open(prefix + ".index", "rb") as index, \
            open(prefix + ".data-00000-of-00001", "rb") as data:
        return index.read(), data.read()


@pytest.mark.parametrize("change, fragments", [
    ("missing", ["lacks 1 tensor", "batch_normalization_7/beta"]),
    ("extra", ["has 1 tensor(s) this model does not use", "conv2d_8/kernel"]),
    ("shape", ["timbral1_conv/kernel", "shape (5, 38, 1, 204)", "expected (7, 38, 1, 204)"]),
    ("labels", ["MTT_LABELS differ"]),
    ("member", ["has no musicnn/MTT_musicnn/.index"]),
    ("corrupt", ["MTT_musicnn checkpoint cannot be read"]),
])
def test_bad_checkpoints_are_one_line_and_write_nothing(musicnn_wheel, tmp_path, capsys,
                                                       change, fragments):
    from tagger.commands import convert_weights

    variables, _ = musicnn_package.read_checkpoint(musicnn_wheel, "MTT_musicnn")
    if change == "missing":
        del variables["batch_normalization_7/beta"]
    elif change == "extra":
        variables["conv2d_8/kernel"] = np.zeros((3, 3, 1, 4), np.float32)
    elif change == "shape":
        variables["conv2d/kernel"] = np.zeros((5, 38, 1, 204), np.float32)
    prefix = "musicnn/MTT_musicnn/"
    changes = {}
    if change in ("missing", "extra", "shape"):
        index, data = _checkpoint_bytes(tmp_path, variables)
        changes = {prefix + ".index": index, prefix + ".data-00000-of-00001": data}
    elif change == "labels":
        changes = {"musicnn/configuration.py": b"MTT_LABELS = ['guitar']\n"}
    elif change == "member":
        changes = {prefix + ".index": None}
    elif change == "corrupt":
        changes = {prefix + ".index": b"not a checkpoint index"}
    wheel = _wheel_with(musicnn_wheel, tmp_path / "musicnn-0.1.0-py3-none-any.whl", changes)
    out = tmp_path / "model.keras"
    code, _, err = call_main(convert_weights.main, capsys, wheel, "--from", "musicnn",
                             "--model", "MTT_musicnn", "--out", out)
    one_line_error(code, err, *fragments)
    assert not out.exists()


def test_a_file_that_is_not_a_wheel_is_one_line(tmp_path):
    from tagger.errors import UserError

    bad = tmp_path / "musicnn-0.1.0-py3-none-any.whl"
    bad.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(UserError, match="not a readable wheel"):
        convert_file(ConvertConfig(source=str(bad), kind="musicnn",
                                   options=(("model", "MTT_vgg"),), out=str(tmp_path / "x.keras")))
    with pytest.raises(UserError, match="without the musicnn package"):
        convert_file(ConvertConfig(source=str(tmp_path), kind="musicnn",
                                   options=(("model", "MTT_vgg"),), out=str(tmp_path / "x.keras")))
    assert not (tmp_path / "x.keras").exists()


def test_top_tags_without_a_model_is_mtt_musicnn(converted, real_music):
    """The default tagger for real music hears the rock excerpt as rock or
    guitar and the ambient one as ambient (Nexuiz's "ninesix", Warzone
    2100's menu music)."""
    import tagger

    default = tagger.top_tags(real_music[0], k=3)
    assert default == tagger.top_tags(real_music[0], model="MTT_musicnn", k=3)
    assert default == tagger.top_tags(real_music[0], model=converted["MTT_musicnn"][0], k=3)
    assert default[0][0] in ("rock", "guitar"), default
    names, scores = tagger.clip_scores(audio=real_music[1])
    assert names[int(np.argmax(scores))] == "ambient"


# The excerpts' tags as this test labels their clips (tests.checks.DEBIAN_MUSIC order).
EXCERPT_TAGS = (("rock", "guitar"), ("ambient", "slow"), ("electronic", "drums"))


def _mtt_layout(folder, excerpts, clip_seconds=5.0):
    """An annotations_final.csv and mp3/ of 5 s clips of the excerpts (2 a
    file in folder 0: train, 1 in c: val, 3 in d: test), labelled with
    EXCERPT_TAGS, the CSV's columns the MagnaTagATune top-50 reversed."""
    import soundfile

    from tagger.datasets.mtt import MTT_TOP50

    columns = list(reversed(MTT_TOP50))
    lines = ["\t".join(f'"{c}"' for c in ["clip_id", *columns, "mp3_path"])]
    clip_id = 0
    for excerpt, tags in zip(excerpts, EXCERPT_TAGS):
        audio, rate = soundfile.read(excerpt, dtype="float32")
        size = int(clip_seconds * rate)
        for k, letter in enumerate("00cddd"):
            path = f"{letter}/excerpt{clip_id}.mp3"
            (folder / "mp3" / letter).mkdir(parents=True, exist_ok=True)
            soundfile.write(folder / "mp3" / path, audio[k * size:(k + 1) * size], rate)
            values = [str(clip_id), *["1" if c in tags else "0" for c in columns], path]
            lines.append("\t".join(f'"{v}"' for v in values))
            clip_id += 1
    (folder / "annotations_final.csv").write_text("\n".join(lines) + "\n")


@pytest.mark.slow  # builds records and evaluates a paper-size model
def test_eval_on_records_built_at_its_settings(converted, real_music, tmp_path, capsys):
    """eval.py takes MTT_musicnn on MagnaTagATune-layout records built with
    build_mtt.py --sample-rate 16000 --segment-length 48128 (here of clips
    of the recordings, the CSV's tags in another order: matched by name),
    hears the rock clips as rock and the ambient ones as ambient; records at
    other settings are refused naming the flags."""
    from tagger.commands import build_mtt
    from tagger.commands import eval as eval_cmd

    _mtt_layout(tmp_path / "mtt", real_music)
    records = tmp_path / "records"
    code, _, err = call_main(build_mtt.main, capsys, "--data-dir", tmp_path / "mtt",
                             "--out-dir", records, "--sample-rate", 16000,
                             "--segment-length", 48128, "--workers", 1, "--no-progress")
    assert code == 0, err
    code, out, err = call_main(eval_cmd.main, capsys, "MTT_musicnn", "--data-dir", records,
                               "--bootstrap", 0, "--no-progress")
    assert code == 0, err
    assert "test: 9 clips, 9 windows; the model's tags are the dataset's in another order" in out
    rows = {line.split()[0]: float(line.split()[2]) for line in out.splitlines()
            if line.startswith("  ") and " ROC " in line}
    assert rows["rock"] == 1.0 and rows["ambient"] == 1.0, out
    other = tmp_path / "records22"
    code, _, err = call_main(build_mtt.main, capsys, "--data-dir", tmp_path / "mtt",
                             "--out-dir", other, "--workers", 1, "--no-progress")
    assert code == 0, err
    code, _, err = call_main(eval_cmd.main, capsys, "MTT_vgg", "--data-dir", other)
    one_line_error(code, err, "sample rate 16000 (the dataset has 22050)",
                   "build_mtt.py --sample-rate 16000, --segment-length 48128")
