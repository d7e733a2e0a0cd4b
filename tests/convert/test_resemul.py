"""resemul's Keras 2.0.5 .hdf5 files: a random model of ours written in that
layout (model_weights group, layer_names / weight_names attributes, layers
auto-named by class and creation order as resemul's model.py creates them)
converts back into a model with exactly the same outputs."""

import h5py
import numpy as np
import pytest

from tagger.commands import convert_weights  # noqa: E402
from tagger.datasets.mtt import MTT_TOP50
from tagger.models.saved import load_tagger
from tests.checks import RESEMUL_WIDTH as WIDTH
from tests.checks import call_main, keras2_names, one_line_error, write_keras2_file
from tests.checks import random_resemul_model as random_model


def waveforms():
    return np.random.default_rng(0).uniform(-0.5, 0.5, (2, 59049)).astype("float32")


@pytest.mark.parametrize("block", ["se", "rese"])
def test_round_trip_through_the_keras2_layout_is_exact(block, tmp_path, capsys):
    model = random_model(block, seed={"se": 0, "rese": 1}[block])
    path = tmp_path / f"{block}-multi-tfrmodel.hdf5"
    write_keras2_file(model, block, path)
    out = tmp_path / "converted.keras"
    code, _, err = call_main(convert_weights.main, capsys, path, "--from", "resemul",
                             "--block", block, "--out", out)
    assert code == 0, err
    converted, info = load_tagger(str(out))
    assert list(info.tag_names) == list(reversed(MTT_TOP50))
    assert info.model_args == dict(num_tags=50, block=block, multi=True, alpha=16,
                                      width=WIDTH)
    assert info.sample_rate == 22050 and info.logmel is None
    x = waveforms()
    expected = np.asarray(model(x, training=False))
    assert expected.std() > 0.01
    np.testing.assert_array_equal(np.asarray(converted(x, training=False)), expected)
    for a, b in zip(model.get_weights(), converted.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_layer_numbers_need_not_start_at_one(tmp_path):
    from tagger.convert import resemul

    model = random_model("se", seed=2)
    shifted = {}
    for _, theirs in keras2_names("se"):
        cls, n = theirs.rsplit("_", 1)
        shifted[theirs] = f"{cls}_{int(n) + 20}"  # a process that built another model first
    path = tmp_path / "se.hdf5"
    write_keras2_file(model, "se", path, rename=shifted)
    converted, _ = resemul.convert(str(path))
    x = waveforms()
    np.testing.assert_array_equal(np.asarray(converted(x)), np.asarray(model(x)))


@pytest.mark.parametrize("case, argv, fragments", [
    ("wrong_block", ["--block", "rese"], ["holds a se model", "--block se"]),
    ("missing", [], ["lacks 1 tensor", "dense_20/bias"]),
    ("not_hdf5", [], ["is not an HDF5 file"]),
    ("not_keras", [], ["not a Keras model"]),
    ("size_flag", ["--size", "teacher"], ["--size applies to --from transformer only"]),
    ("tags", ["--tags", "TAGS"], ["50 outputs but 2 tag names"]),
])
def test_bad_inputs_are_one_line_and_write_nothing(case, argv, fragments, tmp_path, capsys):
    path = tmp_path / "model.hdf5"
    if case == "not_hdf5":
        path.write_text("not a model\n")
    elif case == "not_keras":
        with h5py.File(path, "w") as f:
            f.create_dataset("x", data=np.zeros(3))
    else:
        write_keras2_file(random_model("se", 0), "se", path,
                          drop="dense_20/bias" if case == "missing" else None)
    (tmp_path / "TAGS").write_text("rock\npop\n")
    argv = [str(tmp_path / a) if a == "TAGS" else a for a in argv]
    out = tmp_path / "out.keras"
    code, _, err = call_main(convert_weights.main, capsys, path, "--from", "resemul", *argv,
                             "--out", out)
    one_line_error(code, err, *fragments)
    assert not out.exists()


def test_tags_file_overrides_and_torch_sources_read_without_torch(tmp_path, capsys,
                                                                 monkeypatch):
    import sys

    path = tmp_path / "model.hdf5"
    write_keras2_file(random_model("se", 0), "se", path)
    tags = [f"tag {i}" for i in range(50)]
    (tmp_path / "tags.txt").write_text("\n".join(tags) + "\n")
    out = tmp_path / "out.keras"
    code, _, err = call_main(convert_weights.main, capsys, path, "--from", "resemul",
                             "--tags", tmp_path / "tags.txt", "--out", out)
    assert code == 0, err
    assert list(load_tagger(str(out))[1].tag_names) == tags
    code, _, err = call_main(convert_weights.main, capsys, path, "--from", "resemul",
                             "--out", out)
    one_line_error(code, err, "exists", "--overwrite")
    before = path.read_bytes()
    code, _, err = call_main(convert_weights.main, capsys, path, "--from", "resemul",
                             "--out", path, "--overwrite")  # the original itself: never
    one_line_error(code, err, "is the original file", "choose another --out")
    assert path.read_bytes() == before

    monkeypatch.setitem(sys.modules, "torch", None)  # as if PyTorch were not installed
    code, _, err = call_main(convert_weights.main, capsys, path, "--from", "transformer",
                             "--out", tmp_path / "t.keras")
    one_line_error(code, err, "cannot read", "as PyTorch weights")  # read without torch
    assert not (tmp_path / "t.keras").exists()


def test_tag_order_permutes_the_outputs_exactly(tmp_path, capsys):
    """resemul's outputs run in ascending tag frequency; records built here run
    in descending order: --tag-order dataset_info.json reorders the outputs."""
    import json

    model = random_model("se", 3)
    path = tmp_path / "se.hdf5"
    write_keras2_file(model, "se", path)
    (tmp_path / "dataset_info.json").write_text(json.dumps({"tag_names": list(MTT_TOP50)}))
    out = tmp_path / "out.keras"
    code, _, err = call_main(convert_weights.main, capsys, path, "--from", "resemul",
                             "--tag-order", tmp_path / "dataset_info.json", "--out", out)
    assert code == 0, err
    converted, info = load_tagger(str(out))
    assert list(info.tag_names) == list(MTT_TOP50)
    x = waveforms()
    # the same scores, permuted (a reordered matrix product may round the last bit)
    np.testing.assert_allclose(np.asarray(converted(x)), np.asarray(model(x))[:, ::-1],
                               rtol=0, atol=1e-6)
    (tmp_path / "order.txt").write_text("\n".join(MTT_TOP50[:49] + ("jazz",)) + "\n")
    code, _, err = call_main(convert_weights.main, capsys, path, "--from", "resemul",
                             "--tag-order", tmp_path / "order.txt", "--out", tmp_path / "o.keras")
    one_line_error(code, err, "--tag-order", "missing ['choral']", "unknown ['jazz']")
    assert not (tmp_path / "o.keras").exists()


@pytest.mark.slow
def test_converted_model_evaluates_on_records_built_here(raw_records, tmp_path, capsys):
    """Converted with resemul's ascending tag order, a model evaluates on
    records in descending order with its scores matched by tag name, as
    one converted with --tag-order dataset_info.json does."""
    import os

    from tagger.evaluation.evaluate import evaluate

    records, info = raw_records
    path = tmp_path / "se.hdf5"
    write_keras2_file(random_model("se", 4), "se", path)
    # the synthetic set's own top-50 in ascending order, as resemul would have built it
    ascending = tmp_path / "ascending.txt"
    ascending.write_text("\n".join(reversed(info.tag_names)) + "\n")
    plain, ordered = tmp_path / "plain.keras", tmp_path / "ordered.keras"
    for out, extra in ((plain, []), (ordered, ["--tag-order",
                                               os.path.join(records, "dataset_info.json")])):
        code, _, err = call_main(convert_weights.main, capsys, path, "--from", "resemul",
                                 "--tags", ascending, *extra, "--out", out)
        assert code == 0, err
    matched = evaluate(str(plain), records)
    result = evaluate(str(ordered), records)
    np.testing.assert_allclose(matched.predictions.scores, result.predictions.scores, atol=1e-6)
    assert matched.metrics.roc_auc == pytest.approx(result.metrics.roc_auc, abs=1e-9)
    clips = info.splits["test"]["clips"]
    assert result.predictions.scores.shape == (clips, 50) and clips > 0
    assert set(result.metrics.per_tag["tag"]) <= set(info.tag_names)
    assert 0.0 <= result.metrics.roc_auc <= 1.0
    from tagger.evaluation.predict import ClipPredictor

    unordered = ClipPredictor(load_tagger(str(plain))[0])(records, "test", 1, 32, info)
    np.testing.assert_allclose(result.predictions.scores, unordered.scores[:, ::-1],
                               rtol=0, atol=1e-6)


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16"])
def test_a_tag_list_saved_with_a_byte_order_mark_reads_its_tags(tmp_path, encoding):
    from tagger.convert import read_tag_file
    from tagger.errors import UserError

    path = tmp_path / "tags.txt"
    path.write_text("rock\r\npiano\r\n\r\nélectro\r\n", encoding=encoding)
    assert read_tag_file(str(path)) == ("rock", "piano", "électro")
    path.write_bytes(b"rock\n\xff\xfepiano\n")  # neither UTF-8 nor a byte-order mark
    with pytest.raises(UserError, match="cannot read --tags"):
        read_tag_file(str(path))
