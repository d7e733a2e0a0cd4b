"""eval.py and extract_excitations.py: honest reports, settings that must match,
damaged shards and unwritable outputs as one line."""

import json
import os
import shutil

import pandas as pd
import pytest

from tagger.commands import eval as eval_cli
from tagger.commands import extract_excitations as excitations_cli
from tagger.errors import UserError
from tests.checks import call_main, one_line_error


@pytest.fixture(scope="module")
def tiny_model(tiny_se_dir):
    """An untrained tiny SE sample-level CNN saved as train.py saves it."""
    return str(tiny_se_dir / "model.keras")


def copy_records(records, target, change_info=None):
    """A copy of the records folder, its dataset_info.json edited by `change_info`."""
    shutil.copytree(records, target)
    path = os.path.join(target, "dataset_info.json")
    with open(path) as f:
        info = json.load(f)
    if change_info:
        change_info(info)
    with open(path, "w") as f:
        json.dump(info, f)
    return str(target), info


def run_eval(capsys, *argv):
    return call_main(eval_cli.main, capsys, *argv, "--no-progress")


@pytest.mark.slow
def test_report_has_intervals_and_no_published_figures_on_synthetic_data(
        tiny_model, raw_records, tmp_path, capsys):
    records, info = raw_records
    assert info.origin["kind"] == "synthetic"
    out_json, out_csv = tmp_path / "r" / "m.json", tmp_path / "r" / "t.csv"
    code, out, err = run_eval(capsys, tiny_model, "--data-dir", records, "--bootstrap", "200",
                              "--seed", "4", "--out-json", out_json, "--per-tag-csv", out_csv)
    assert code == 0, err
    assert "not comparable with published MagnaTagATune results" in out
    assert "0.9111" not in out and "Sample-level CNN" not in out
    assert "[95% bootstrap confidence intervals over clips: 200 resamples, seed 4]" in out
    report = json.loads(out_json.read_text())
    low, high = report["roc_auc_ci"]
    assert low <= report["roc_auc"] <= high and low < high
    assert report["bootstrap"] == {"level": 0.95, "resamples": 200, "seed": 4}
    assert report["dataset_origin"].startswith("synthetic data")
    table = pd.read_csv(out_csv)
    assert list(table.columns) == ["tag", "roc_auc", "pr_auc", "positives", "negatives",
                                   "few_clips"]
    few = table[(table.positives < 5) | (table.negatives < 5)]
    assert len(few) and few.few_clips.all() and not table.few_clips[~table.index.isin(
        few.index)].any()
    assert sorted(report["few_clip_tags"]) == sorted(few.tag)
    assert "fewer than 5 positive or negative clips" in out
    code, out, err = run_eval(capsys, tiny_model, "--data-dir", records, "--bootstrap", "0",
                              "--out-json", out_json)
    assert code == 0, err
    assert json.loads(out_json.read_text())["roc_auc_ci"] is None
    assert "confidence" not in out


def _strict_json(text):
    """json.loads that refuses the bare NaN/Infinity strict parsers refuse."""
    def refuse(constant):
        raise ValueError(f"invalid JSON constant {constant}")
    return json.loads(text, parse_constant=refuse)


def test_undefined_metrics_are_written_as_null(tiny_model, raw_records, tmp_path, capsys):
    """A test split of one clip: no tag has both classes, so the macro AUCs
    are undefined (NaN); the report stays valid JSON."""
    import tensorflow as tf

    def one_clip(info):
        info["splits"]["test"].update(clips=1, shards=info["splits"]["test"]["shards"][:1])

    from tagger.records.tfrecord import framing_sha256

    records, info = copy_records(raw_records[0], tmp_path / "copy", one_clip)
    shard = os.path.join(records, info["splits"]["test"]["shards"][0])
    first = next(iter(tf.data.TFRecordDataset(shard))).numpy()
    with tf.io.TFRecordWriter(shard) as writer:
        writer.write(first)
    info["splits"]["test"]["shard_framing_sha256"] = [framing_sha256(shard)]  # as built
    with open(os.path.join(records, "dataset_info.json"), "w") as f:
        json.dump(info, f)
    out_json = tmp_path / "m.json"
    code, out, err = run_eval(capsys, tiny_model, "--data-dir", records, "--bootstrap", "20",
                              "--out-json", out_json)
    assert code == 0, err
    text = out_json.read_text()
    assert "NaN" not in text and "Infinity" not in text
    report = _strict_json(text)
    assert report["clips"] == 1 and report["evaluated_tags"] == 0
    assert report["roc_auc"] is None and report["pr_auc"] is None
    assert report["roc_auc_ci"] is None  # no interval of an undefined macro AUC


def test_published_figures_only_with_what_they_compare_to():
    from tagger.evaluation.evaluate import published_lines

    assert "not comparable" in published_lines({"kind": "synthetic", "generator": "g"})[0]
    real = published_lines({"kind": "real", "dataset": "magnatagatune"})
    assert "comparable only on the same split" in real[0] and "0.9111" in " ".join(real)
    assert "does not record its origin" in published_lines({})[0]
    assert published_lines({"kind": "real", "dataset": "msd"}) == []


@pytest.mark.parametrize("change, fragments", [
    (lambda i: i.update(sample_rate=16000), ["sample rate 22050 (the dataset has 16000)",
                                             "--sample-rate 22050"]),
    (lambda i: i.update(segment_length=19683), ["segment length 59049 (the dataset has "
                                                "19683)"]),
    (lambda i: i["features"].update(kind="logmel"),
     ["raw input (the dataset holds logmel records)", "--features raw"]),
])
def test_model_and_dataset_audio_settings_must_match(tiny_model, raw_records, tmp_path,
                                                     capsys, change, fragments):
    records, _ = copy_records(raw_records[0], tmp_path / "copy", change)
    code, _, err = run_eval(capsys, tiny_model, "--data-dir", records)
    one_line_error(code, err, "the model was trained with", *fragments)


@pytest.mark.parametrize("change, fragments", [
    (dict(n_mels=64), ["log-mel features with n_mels 64 (the dataset has 32)", "--n-mels 64"]),
    (dict(hop_length=512), ["log-mel features with hop_length 512 (the dataset has 256)",
                            "--hop-length 512"]),
    (dict(f_max=11025.0), ["log-mel features with f_max 11025.0 (the dataset has 8000.0)",
                           "--f-max 11025"]),  # same input shape: only the check sees it
    (None, []),
])
def test_model_and_dataset_log_mel_settings_must_match(logmel_records, tmp_path, capsys,
                                                       change, fragments):
    """On the shared log-mel records (`presets.RECORDS_LOGMEL`: 32 bins, hop
    256, f_max 8000)."""
    import dataclasses

    from tagger.models import build_model
    from tagger.models.saved import save_tagger
    from tagger.models.tagger_metadata import TaggerMetadata
    from tests.presets import RECORDS_LOGMEL

    records, info = logmel_records
    mel = dataclasses.replace(RECORDS_LOGMEL, **(change or {}))
    model = build_model("transformer", num_tags=info.num_tags, input_kind="logmel",
                        segments=1, logmel=mel, conv_ndim=8, attention_ndim=16,
                        attention_heads=2, attention_layers=1)
    path = str(tmp_path / "mel.keras")
    save_tagger(model, TaggerMetadata(tag_names=info.tag_names, sample_rate=22050,
                                      segment_length=59049, window_segments=1,
                                      input_kind="logmel", logmel=dataclasses.asdict(mel),
                                      model="transformer", model_args={}), path)
    code, out, err = run_eval(capsys, path, "--data-dir", records, "--bootstrap", "0")
    if change is None:  # the same settings evaluate
        assert code == 0 and "macro ROC-AUC" in out, err
        return
    one_line_error(code, err, "the model was trained with", *fragments)


def test_an_unlabelled_split_is_refused(tiny_model, raw_records, tmp_path, capsys):
    records, _ = copy_records(raw_records[0], tmp_path / "copy",
                              lambda i: i["splits"]["test"].update(labelled=False))
    code, _, err = run_eval(capsys, tiny_model, "--data-dir", records)
    one_line_error(code, err, "split 'test' holds no labels")


@pytest.mark.parametrize("cut", ["truncated", "corrupted", "missing"])
def test_a_damaged_test_shard_is_named(tiny_model, raw_records, tmp_path, capsys, cut):
    records, info = copy_records(raw_records[0], tmp_path / "copy")
    shard = os.path.join(records, info["splits"]["test"]["shards"][-1])
    data = open(shard, "rb").read()
    if cut == "missing":
        os.remove(shard)
    elif cut == "truncated":
        open(shard, "wb").write(data[:len(data) - 1000])
    else:
        damaged = bytearray(data)
        damaged[len(data) // 2] ^= 0xFF
        open(shard, "wb").write(bytes(damaged))
    problem = "is missing" if cut == "missing" else "is damaged"
    code, _, err = run_eval(capsys, tiny_model, "--data-dir", records)
    one_line_error(code, err, f"shard {shard!r} of the test split {problem}",
                   "rerun build_mtt.py")
    code, _, err = call_main(excitations_cli.main, capsys, tiny_model, "--data-dir", records,
                             "--out", tmp_path / "ex.pkl", "--no-progress")
    one_line_error(code, err, f"shard {shard!r} of the test split {problem}")
    assert not (tmp_path / "ex.pkl").exists()


@pytest.mark.slow
def test_a_damaged_train_shard_stops_training_with_its_name(raw_records, tmp_path):
    from tagger.training.run import train
    from tests.presets import tiny_train_config

    records, info = copy_records(raw_records[0], tmp_path / "copy")
    shard = os.path.join(records, info["splits"]["train"]["shards"][0])
    data = open(shard, "rb").read()
    open(shard, "wb").write(data[:len(data) - 1000])
    with pytest.raises(UserError, match=f"shard '{shard}' of the train split is damaged"):
        train(tiny_train_config(records, tmp_path / "runs", num_stages=1,
                                steps_per_epoch=50, evaluate_test=False))


def test_a_shard_cut_between_records_is_caught_by_the_clip_count(tiny_model, raw_records,
                                                                 tmp_path, capsys):
    """Records built before the build recorded each shard's framing digest
    (which names such a shard, tests/records/test_plain_reader.py)."""
    from tagger.records.info import load_info
    from tagger.records.reader import clip_labels

    def built_before_digests(info):
        for entry in info["splits"].values():
            del entry["shard_framing_sha256"]

    records, info = copy_records(raw_records[0], tmp_path / "copy", built_before_digests)
    shard = os.path.join(records, info["splits"]["test"]["shards"][0])
    import tensorflow as tf

    records_in_shard = [r.numpy() for r in tf.data.TFRecordDataset(shard)]
    assert len(records_in_shard) > 1
    data = open(shard, "rb").read()
    open(shard, "wb").write(data[:len(records_in_shard[0]) + 16])  # the first record
    lost = len(records_in_shard) - 1  # all but the first, whole record
    expected = info["splits"]["test"]["clips"]
    with pytest.raises(UserError, match=f"holds {expected - lost} clips but its "
                                        f"dataset_info.json lists {expected}"):
        clip_labels(records, "test", load_info(records))


@pytest.mark.parametrize("flag", ["--out-json", "--per-tag-csv"])
@pytest.mark.parametrize("layout, reason", [
    ("folder", "it is a folder"),
    ("parent_is_file", "a part of the path is a file"),
    ("read_only", "permission denied"),
])
def test_unwritable_outputs_are_refused_before_evaluating(tiny_model, raw_records, tmp_path,
                                                          capsys, monkeypatch, flag,
                                                          layout, reason):
    (tmp_path / "file").write_text("keep")
    (tmp_path / "folder").mkdir()
    path = {"folder": tmp_path / "folder", "parent_is_file": tmp_path / "file" / "r.json",
            "read_only": "/sys/report.json"}[layout]
    if layout == "read_only" and os.access("/sys", os.W_OK) and \
            not _refuses_writes("/sys"):
        pytest.skip("/sys accepts writes here")
    import tagger.evaluation.evaluate as evaluate_module

    monkeypatch.setattr(evaluate_module, "evaluate", lambda *a, **k: pytest.fail("evaluated"))
    code, _, err = run_eval(capsys, tiny_model, "--data-dir", raw_records[0], flag, path)
    one_line_error(code, err, f"cannot write {flag} '{path}': {reason}")
    assert (tmp_path / "file").read_text() == "keep"


def _refuses_writes(folder):
    try:
        with open(os.path.join(folder, ".probe"), "wb"):
            pass
    except OSError:
        return True
    os.remove(os.path.join(folder, ".probe"))
    return False


def test_a_full_disk_at_the_end_leaves_no_partial_report(tiny_model, raw_records, tmp_path,
                                                        capsys, monkeypatch):
    import errno

    from tagger import fileio

    real_open = fileio.open_file

    def open_file(path, mode="r"):
        if str(path).endswith(".tmp"):
            handle = real_open(path, mode)
            handle.write(b"{")
            handle.close()
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(path, mode)

    monkeypatch.setattr(fileio, "open_file", open_file)
    out = tmp_path / "m.json"
    code, _, err = run_eval(capsys, tiny_model, "--data-dir", raw_records[0], "--bootstrap",
                            "0", "--out-json", out)
    one_line_error(code, err, f"cannot write --out-json '{out}': the disk is full")
    assert os.listdir(tmp_path) == []


def test_a_seed_without_resamples_and_overwrite_without_a_file_are_refused(capsys):
    code, _, err = call_main(eval_cli.main, capsys, "model.keras", "--bootstrap", "0",
                             "--seed", "3")
    one_line_error(code, err, "--seed applies with --bootstrap N above 0 only "
                   "(--bootstrap 0 draws no resamples)")
    code, _, err = call_main(eval_cli.main, capsys, "model.keras", "--overwrite")
    one_line_error(code, err, "--overwrite applies with --out-json or --per-tag-csv only")


def test_batch_size_must_be_positive(capsys):
    for main in (eval_cli.main, excitations_cli.main):
        code, _, err = call_main(main, capsys, "model.keras", "--batch-size", "0")
        one_line_error(code, err, "argument --batch-size: expected a number >= 1, got '0'")


@pytest.mark.parametrize("flag", ["--out", "--plots"])
def test_excitation_outputs_that_cannot_be_written(tiny_model, raw_records, tmp_path, capsys,
                                                   flag):
    (tmp_path / "file").write_text("keep")
    path = tmp_path / "file" / "sub"
    code, _, err = call_main(excitations_cli.main, capsys, tiny_model, "--data-dir",
                             raw_records[0], flag, path, "--no-progress")
    one_line_error(code, err, f"cannot write {flag}", "a part of the path is a file")
    assert (tmp_path / "file").read_text() == "keep"


def test_the_files_eval_reads_in_the_records_folder_are_never_its_outputs():
    """--out-json and --per-tag-csv never replace what eval.py reads there,
    even with --overwrite: the info, the shards and their framing indexes."""
    from tagger.commands.eval import _dataset_file

    assert [_dataset_file(name) for name in (
        "dataset_info.json", "test-0000-of-0002.tfrecord", "test-0000-of-0002.framing",
        "report.json", "per_tag.csv")] == [True, True, True, False, False]
