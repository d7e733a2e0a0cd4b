"""train.py --from MODEL: a tagger of a folder's own tags on a trained
model's body. A tiny untrained conv net at 16 kHz is the body; a folder of
tones (low or high, some with noise: one or two tags a file) labelled in a
CSV is built into records at 22050 Hz (and at the body's rate and window,
for fine-tuning). Its embeddings are stored once beside the records and
reused; the head learns the tags; the saved tagger is the body and the
head in one model that tag.py and eval.py read."""

import contextlib
import dataclasses
import io
import json
import pathlib
import shutil

import keras
import numpy as np
import pytest
import soundfile

from tagger.audio import audio_windows, resample
from tagger.commands import eval as eval_cli
from tagger.commands import tag as tag_cli
from tagger.commands import train as train_cli
from tagger.config import DistillationConfig, NoisyStudentConfig, PretrainedConfig
from tagger.errors import UserError
from tagger.inference.common import model_fingerprint
from tagger.models.saved import load_tagger, save_tagger
from tagger.models.tagger_metadata import TaggerMetadata
from tagger.records import reader
from tagger.records.info import load_info
from tagger.training import head_run, tag_head
from tagger.training.pretrained_body import EMBEDDINGS_DIR, Body, split_embeddings
from tests.checks import (
    call_main,
    clip_by_clip_outputs,
    counted_model_file_calls,
    dataset_graph_bytes,
    full_batches,
    one_line_error,
    other_audio_shard,
)
from tests.training.own_tags_data import (
    BODY_RATE,
    BODY_WINDOW,
    TRAIN_ARGS,
    build,
    file_tags,
    write_body,
)


def records_copy(source, folder) -> str:
    shutil.copytree(source, folder)
    return str(folder)


def test_the_embeddings_are_the_bodys_over_its_own_windows(own, tmp_path):
    _, source, _, body_path = own
    records = records_copy(source, tmp_path / "records")
    info = load_info(records)
    body = Body(body_path, progress=False)
    train = split_embeddings(body, records, info, "train", log=print)
    assert body.embedding_layer == "embedding" and train.values.shape[1] == 8
    clip = next(reader.clip_dataset(records, "train", info).as_numpy_iterator())
    assert clip["clip_id"] == train.clip_ids[0]
    audio = resample(clip["segments"].reshape(-1), 22050, BODY_RATE)
    windows = np.stack([w for _, w in audio_windows(audio, BODY_RATE, BODY_WINDOW)])
    model = keras.models.load_model(body_path, compile=False)
    embed = keras.Model(model.inputs, model.get_layer("embedding").output)
    expected = np.asarray(embed(windows))
    assert train.num_rows[0] == len(windows) == int(59049 / 22050 * 10)  # 26 windows
    np.testing.assert_allclose(train.values[:len(windows)], expected, atol=1e-5)


def test_the_embeddings_are_filled_in_full_batches_with_each_clips_own_values(
        own, tmp_path, monkeypatch):
    """Windows of consecutive clips share batches of 32 (26 windows a
    clip), and each clip's embeddings are those of the clip scored on its
    own, to float32 rounding."""
    _, source, _, body_path = own
    records = records_copy(source, tmp_path / "records")
    info = load_info(records)
    sizes = counted_model_file_calls(monkeypatch)
    body = Body(body_path, progress=False)
    train = split_embeddings(body, records, info, "train", log=print)
    shards = clip_by_clip_outputs(body.predictor(embeddings=True).predictor, records, "train",
                                  info)
    assert sizes == full_batches([sum(len(w) for _, w, _, _ in clips) for clips in shards])
    clips = [clip for shard in shards for clip in shard]
    assert train.clip_ids.tolist() == [int(clip["clip_id"]) for clip, _, _, _ in clips]
    assert train.num_rows.tolist() == [len(w) for _, w, _, _ in clips]
    np.testing.assert_allclose(train.values, np.concatenate([e for _, _, _, e in clips]),
                               rtol=1e-6, atol=1e-7)


def entry_folder(records, body_path):
    return pathlib.Path(records, EMBEDDINGS_DIR, model_fingerprint(body_path)[:16])


def test_stored_embeddings_are_reused_and_another_model_or_build_computes_anew(own, tmp_path):
    _, source, _, body_path = own
    records = records_copy(source, tmp_path / "records")
    info = load_info(records)
    body = Body(body_path, progress=False)
    lines = []
    first = split_embeddings(body, records, info, "val", log=lines.append)
    folder = entry_folder(records, body_path)
    shards = [folder / f"{name}.npz" for name in info.splits["val"]["shards"]]
    assert len(shards) == 2
    assert lines == [f"{body_path} ({body.key}): embeddings of val, 2 shard(s), 2 computed, "
                     f"0 reused, in {folder}"]
    written = [shard.stat().st_mtime_ns for shard in shards]
    entry = json.loads((folder / "embeddings.json").read_text())
    assert entry["sha256"] == model_fingerprint(body_path) and entry["embedding_dim"] == 8
    assert entry["model"] == body_path and entry["window_samples"] == BODY_WINDOW

    lines.clear()  # a rerun computes nothing
    again = split_embeddings(Body(body_path, progress=False), records, info, "val",
                             log=lines.append)
    assert lines[0].endswith("2 shard(s), 0 computed, 2 reused, in " + str(folder))
    np.testing.assert_array_equal(again.values, first.values)
    assert [shard.stat().st_mtime_ns for shard in shards] == written

    other = write_body(tmp_path / "other.keras", seed=2)  # another model: its own entry
    split_embeddings(Body(other, progress=False), records, info, "val", log=lines.append)
    assert "2 computed, 0 reused" in lines[-1]
    assert sorted(p.name for p in (pathlib.Path(records) / EMBEDDINGS_DIR).iterdir()) == sorted(
        [body.key, model_fingerprint(other)[:16]])

    rebuilt = dict(json.loads((pathlib.Path(records) / "dataset_info.json").read_text()),
                   fingerprint="another build")  # the records built anew
    (pathlib.Path(records) / "dataset_info.json").write_text(json.dumps(rebuilt))
    lines.clear()
    split_embeddings(body, records, load_info(records), "val", log=lines.append)
    assert "2 computed, 0 reused" in lines[-1]
    assert [shard.stat().st_mtime_ns for shard in shards] != written


def test_stored_embeddings_are_read_without_loading_the_model(own, tmp_path, monkeypatch):
    from tagger.models import saved

    _, source, _, body_path = own
    records = records_copy(source, tmp_path / "records")
    info = load_info(records)
    loads = []
    load = saved.load_tagger
    monkeypatch.setattr(saved, "load_tagger", lambda path: loads.append(path) or load(path))
    first = split_embeddings(Body(body_path, progress=False), records, info, "val", log=print)
    assert loads == [body_path]
    lines = []  # a second run: every shard stored, the model never loaded
    again = split_embeddings(Body(body_path, progress=False), records, info, "val",
                             log=lines.append)
    assert loads == [body_path] and "0 computed, 2 reused" in lines[-1]
    np.testing.assert_array_equal(again.values, first.values)


@pytest.mark.parametrize("change", ["hop", "format version"])
def test_stored_embeddings_of_another_windowing_or_store_format_are_computed_again(
        own, tmp_path, monkeypatch, change):
    from tagger.models import saved
    from tagger.training import model_outputs

    _, source, _, body_path = own
    records = records_copy(source, tmp_path / "records")
    info = load_info(records)
    first = split_embeddings(Body(body_path, progress=False), records, info, "val", log=print)
    if change == "hop":  # the code cuts windows otherwise: half a window apart
        monkeypatch.setattr(saved, "window_grid", lambda model, info, window: (window // 2, 0))
    else:
        monkeypatch.setattr(model_outputs, "FORMAT_VERSION", model_outputs.FORMAT_VERSION + 1)
    lines = []
    again = split_embeddings(Body(body_path, progress=False), records, info, "val",
                             log=lines.append)
    assert "2 computed, 0 reused" in lines[-1]
    entry = json.loads((entry_folder(records, body_path) / "embeddings.json").read_text())
    assert entry["format_version"] == model_outputs.FORMAT_VERSION
    if change == "hop":
        assert entry["hop_samples"] == BODY_WINDOW // 2
        np.testing.assert_array_equal(again.num_rows, 2 * first.num_rows)  # 52 windows, not 26


def test_stored_embeddings_of_other_clips_or_cut_short_are_computed_again(own, tmp_path):
    _, source, _, body_path = own
    records = records_copy(source, tmp_path / "records")
    info = load_info(records)
    body = Body(body_path, progress=False)
    ids, _ = reader.clip_labels(records, "val", info)
    before = split_embeddings(body, records, info, "val", clip_ids=ids, log=print)
    folder = entry_folder(records, body_path)
    shard = folder / f"{info.splits['val']['shards'][1]}.npz"
    with np.load(shard) as data:
        arrays = {name: data[name] for name in data.files}
    np.savez(shard, **dict(arrays, clip_ids=arrays["clip_ids"][::-1]))
    lines = []
    after = split_embeddings(body, records, info, "val", clip_ids=ids, log=lines.append)
    assert lines[0] == (f"the embeddings of val in {folder} are not of the records' clips; "
                        "computing them again")
    assert "2 computed, 0 reused" in lines[1]
    np.testing.assert_array_equal(after.clip_ids, ids)
    np.testing.assert_allclose(after.values, before.values, atol=1e-6)

    shard.write_bytes(shard.read_bytes()[:100])  # cut short
    lines.clear()
    split_embeddings(body, records, info, "val", log=lines.append)
    assert lines[0].startswith(f"the embeddings {shard} cannot be read (cut short or damaged")
    assert lines[0].endswith("; computing its shard again")
    assert "1 computed, 1 reused" in lines[1]


def test_a_records_shard_replaced_since_is_refused_and_its_embeddings_kept(
        own, tmp_path, capsys):
    """Another build's shard of the same name (the same clips, other audio)
    put in place of one: train.py --from refuses it in one line naming it
    (dataset_info.json holds the build's digest for it), and its stored
    embeddings are kept; once the build's rerun writes the shard back,
    they are the shard's again and reused."""
    music, source, _, body_path = own
    records = records_copy(source, tmp_path / "records")
    info = load_info(records)
    body = Body(body_path, progress=False)
    first = split_embeddings(body, records, info, "val", log=print)
    shard = info.splits["val"]["shards"][0]
    other_audio_shard(pathlib.Path(records, shard))
    flags = ["--data-dir", records, "--from", body_path, "--train-dir", tmp_path / "runs",
             "--head-units", "0", "--max-epochs-per-stage", "1", "--no-progress"]
    code, _, err = call_main(train_cli.main, capsys, *flags)
    one_line_error(code, err, f"shard '{records}/{shard}' of the val split does not hold the "
                              "records its dataset_info.json lists")
    folder = entry_folder(records, body_path)

    build(music, records, pathlib.Path(music, "labels.csv"))  # the shard written back
    assert capsys.readouterr().err.startswith(
        f"{records}/{shard}: its records are not the ones the build wrote")
    assert pathlib.Path(records, shard).read_bytes() == pathlib.Path(source, shard).read_bytes()
    code, out, _ = call_main(train_cli.main, capsys, *flags)
    assert code in (0, None)
    assert "embeddings of val, 2 shard(s), 0 computed, 2 reused" in out
    lines = []
    again = split_embeddings(body, records, info, "val", log=lines.append)
    assert lines[-1].endswith("2 shard(s), 0 computed, 2 reused, in " + str(folder))
    np.testing.assert_allclose(again.values, first.values, atol=1e-6)


def test_embeddings_stored_without_their_shards_state_are_checked_against_the_build(
        own, tmp_path):
    """A store written before the shards' states were kept with it: an
    intact shard's embeddings are reused (and the shard's state stored with
    them); those of a shard that is not the one dataset_info.json describes
    are not reused, and the shard, another build's, is refused, named."""
    _, source, _, body_path = own
    records = records_copy(source, tmp_path / "records")
    info = load_info(records)
    body = Body(body_path, progress=False)
    split_embeddings(body, records, info, "val", log=print)
    folder = entry_folder(records, body_path)
    intact, replaced = info.splits["val"]["shards"]
    for name in intact, replaced:
        with np.load(folder / f"{name}.npz") as data:
            arrays = {key: data[key] for key in ("clip_ids", "num_rows", "values")}
        np.savez(folder / f"{name}.npz", **arrays)
    other_audio_shard(pathlib.Path(records, replaced))
    lines = []
    with pytest.raises(UserError, match=f"^shard '{records}/{replaced}' of the val split does "
                                        "not hold the records its dataset_info.json lists"):
        split_embeddings(body, records, info, "val", log=lines.append)
    assert lines[0].startswith(f"the embeddings {folder / replaced}.npz were made from another")
    found = pathlib.Path(records, intact).stat()
    with np.load(folder / f"{intact}.npz") as data:
        assert json.loads(str(data["records_shard"])) == {
            "size": found.st_size, "mtime_ns": found.st_mtime_ns,
            "framing_sha256": info.splits["val"]["shard_framing_sha256"][0]}


def test_a_tag_no_training_file_has_is_refused_and_few_files_are_named():
    labels = np.array([[1, 0, 1], [1, 0, 0], [1, 0, 1], [1, 0, 0], [1, 0, 0], [0, 0, 1]])
    with pytest.raises(UserError) as refused:
        tag_head.check_tag_counts(labels, ["rock", "jazz", "live"])
    assert str(refused.value) == (
        "no training file has the tag(s) jazz, so they cannot be learnt: label some files "
        "with them or leave them out of the labels, and build the records again")
    lines = []
    tag_head.check_tag_counts(labels[:, [0, 2]], ["rock", "live"], lines.append)
    assert lines == ["warning: fewer than 5 labelled training files for live (3): their "
                     "scores rest on too few examples to trust; label more files with them"]
    lines.clear()
    tag_head.check_tag_counts(labels[:, [0]], ["rock"], lines.append)
    assert lines == []


@pytest.mark.parametrize("argv, fragment", [
    (["--model", "fcn"], "--model applies to a model trained from scratch only (--from "
                         "trains a head on MTT_musicnn's body); leave it out"),
    (["--block", "se", "--quick"], "--quick, --block apply to a model trained from scratch"),
    (["--schedule", "staged"], "--schedule applies to a model trained from scratch only"),
    (["--window-segments", "2"], "--window-segments applies to a model trained from scratch"),
    (["--teacher", "MTT_vgg"], "--teacher applies to a model trained from scratch only"),
    (["--distil", "MTT_vgg"], "--distil applies to a model trained from scratch only"),
    (["--augment"], "--augment applies with --fine-tune only (without it the head trains on "
                    "stored embeddings, not on the records' audio); leave it out or add "
                    "--fine-tune"),
    (["--fine-tune-lr", "0.001"], "--fine-tune-lr applies with --fine-tune only"),
    (["--momentum", "0.5"], "--momentum applies to SGD only (--from trains with Adam unless "
                            "--optimizer sgd is given)"),
    (["--total-epochs", "10"], "--total-epochs applies to the adam_then_sgd schedule only "
                               "(--from trains its head with the staged schedule); leave it "
                               "out"),
    (["--switch-epochs", "2,3,4", "--total-epochs", "6"],
     "--switch-epochs, --total-epochs apply to the adam_then_sgd schedule only"),
    (["--fine-tune", "--total-epochs", "10"], "--total-epochs applies to the adam_then_sgd"),
    (["--monitor", "val_loss", "--patience", "3"],
     "--monitor, --patience apply with --hold-out-val or --fine-tune only (without them the "
     "val files train the head and its last epoch is kept); leave them out or add "
     "--hold-out-val"),
])
def test_flags_that_do_not_apply_with_from_are_errors(capsys, argv, fragment):
    code, _, err = call_main(train_cli.main, capsys, "--from", "MTT_musicnn", *argv)
    one_line_error(code, err, fragment)


def test_from_flags_without_from_are_errors(capsys):
    code, _, err = call_main(train_cli.main, capsys, "--head-units", "0", "--fine-tune")
    one_line_error(code, err, "--head-units, --fine-tune apply with --from MODEL only; leave "
                              "them out or name the trained model to start from")
    code, _, err = call_main(train_cli.main, capsys, "--hold-out-val")
    one_line_error(code, err, "--hold-out-val applies with --from MODEL only")


def test_a_head_run_saved_before_the_val_files_joined_resumes_holding_them_out():
    from tagger.config import saved_train_config

    earlier = {"pretrained": {"from_model": "MTT_musicnn", "head_units": 256}}
    assert not saved_train_config(earlier).pretrained.joins_val
    now = {"pretrained": {"from_model": "MTT_musicnn", "join_val": True}}
    assert saved_train_config(now).pretrained.joins_val


def test_the_head_settings_apply_where_no_flag_is_given():
    args = train_cli.parse_args(["--from", "MTT_musicnn", "--lr", "0.01", "--head-units", "0"])
    config = train_cli.config_from_args(args)
    assert config.pretrained == PretrainedConfig(from_model="MTT_musicnn", head_units=0)
    assert config.pretrained.joins_val
    assert (config.schedule, config.optimizer, config.lr, config.batch_size,
            config.num_stages, config.patience, config.max_epochs_per_stage) == (
        "staged", "adam", 0.01, 64, 1, 10, 20)
    for flags in (["--hold-out-val"], ["--fine-tune"]):  # the val files held out to stop on
        config = train_cli.config_from_args(train_cli.parse_args(["--from", "MTT_musicnn",
                                                                  *flags]))
        assert not config.pretrained.joins_val and config.max_epochs_per_stage == 100
        config = train_cli.config_from_args(train_cli.parse_args([
            "--from", "MTT_musicnn", *flags, "--monitor", "val_loss", "--patience", "3"]))
        assert (config.monitor, config.patience) == ("val_loss", 3)  # they stop on val
    assert head_run.head_config(dataclasses.replace(
        config, max_epochs_per_stage=7)).max_epochs_per_stage == 100


def test_fine_tuning_needs_records_at_the_bodys_rate_and_window(own, capsys, tmp_path):
    _, records, _, body_path = own
    code, _, err = call_main(train_cli.main, capsys, "--data-dir", records, "--from", body_path,
                             "--fine-tune", "--train-dir", tmp_path, "--no-progress")
    one_line_error(code, err)
    assert err.strip().split(": error: ", 1)[1] == (
        f"--fine-tune trains {body_path} on the records' audio at its own "
        "rate and window (16000 Hz, 1 segment(s) of 1600 samples), but "
        f"{records!r} holds 22050 Hz segments of 59049 samples; build the records with "
        "--sample-rate 16000 --segment-length 1600")
    assert not (tmp_path / "from-body").exists()


def test_records_without_tags_are_refused(own, tmp_path):
    _, source, _, body_path = own
    records = records_copy(source, tmp_path / "records")
    path = pathlib.Path(records, "dataset_info.json")
    path.write_text(json.dumps(dict(json.loads(path.read_text()), tag_names=[], num_tags=0)))
    config = head_run.head_config(train_cli.config_from_args(train_cli.parse_args(
        ["--data-dir", records, "--from", body_path, "--train-dir", str(tmp_path)])))
    with pytest.raises(UserError, match="names no tags, so there is nothing to learn"):
        head_run.train(config)


@pytest.fixture(scope="module")
def trained(own, tmp_path_factory):
    """(run folder, its train.py output) of a head trained on the tones."""
    _, source, _, body_path = own
    folder = tmp_path_factory.mktemp("trained")
    records = records_copy(source, folder / "records")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = train_cli.main(["--data-dir", records, "--from", body_path, "--train-dir",
                               str(folder / "runs"), *TRAIN_ARGS])
    assert code in (0, None), out.getvalue()
    return folder / "runs" / "from-body", out.getvalue(), records


@pytest.mark.slow
def test_the_head_learns_the_tags(trained):
    run_dir, output, records = trained
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["best"]["val_roc_auc"] >= 0.9
    assert metrics["test"]["roc_auc"] >= 0.9
    assert {row["tag"] for row in metrics["test"]["per_tag"]} == {"low", "high", "noisy"}
    rows = (run_dir / "history.csv").read_text().splitlines()[1:]
    losses = [float(row.split(",")[5]) for row in rows]
    assert losses[-1] < 0.5 * losses[0]  # it learnt
    assert "run size (the head): " in output and "test ROC-AUC" in output
    train = reader.clip_labels(records, "train")[1].sum(axis=0).astype(int)
    val = reader.clip_labels(records, "val")[1].sum(axis=0).astype(int)
    assert dict(zip(("high", "low", "noisy"), train))["high"] == 4  # of 12: few alone
    assert (train + val).min() >= 5  # the files the head trains on: the val files too
    assert "warning: fewer than" not in output


def windows_of(records, body_path, *splits) -> int:
    info = load_info(records)
    body = Body(body_path, progress=False)
    return sum(len(split_embeddings(body, records, info, split, log=print).values)
               for split in splits)


@pytest.mark.slow
def test_the_head_trains_on_the_train_and_val_files_and_keeps_its_last_epoch(trained, own):
    run_dir, output, records = trained
    windows = windows_of(records, own[3], "train", "val")
    assert f"run size (the head): {windows} training windows of " in output
    assert "12 epochs on the train and val files, the last kept" in output
    assert "the last epoch is kept: the val files train the head" in output
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["best_epoch"] == metrics["epochs"] == 12


@pytest.mark.slow
def test_hold_out_val_keeps_the_val_files_to_stop_on(own, capsys, tmp_path):
    _, source, _, body_path = own
    records = records_copy(source, tmp_path / "records")
    code, out, err = call_main(train_cli.main, capsys, "--data-dir", records, "--from",
                               body_path, "--hold-out-val", "--train-dir", tmp_path / "runs",
                               "--max-epochs-per-stage", "2", "--no-progress")
    assert code in (0, None), err
    windows = windows_of(records, body_path, "train")
    assert f"run size (the head): {windows} training windows of " in out
    assert "up to 2 epochs (patience 10)" in out
    assert ("the best epoch and early stopping follow the val loss (the default; --monitor "
            "val_roc_auc follows the AUC)") in out
    history = (tmp_path / "runs" / "from-body" / "history.csv").read_text().splitlines()
    assert len(history) == 3  # the header and 2 epochs


@pytest.mark.slow
def test_the_saved_tagger_is_the_body_and_the_head(trained, own):
    run_dir, _, _ = trained
    body_path = own[3]
    tagger, info = load_tagger(str(run_dir / "model.keras"))
    assert info.tag_names == ("high", "low", "noisy")  # by count, ties by name
    assert (info.model, info.sample_rate, info.segment_length, info.window_segments) == (
        "tiny_conv", BODY_RATE, BODY_WINDOW, 1)
    assert info.licence == "the body's licence" and info.model_args == {"num_tags": 3}
    assert info.base_model == {
        "name": body_path, "file": "body.keras", "sha256": model_fingerprint(body_path),
        "model": "tiny_conv", "embedding_layer": "embedding", "tag_names": ["a", "b", "c"],
        "head_units": 256, "fine_tuned": False}
    body = keras.models.load_model(body_path, compile=False)
    x = np.random.default_rng(0).standard_normal((5, BODY_WINDOW)).astype(np.float32) * 0.3
    embedding = np.asarray(keras.Model(body.inputs, body.get_layer("embedding").output)(x))
    w1, b1 = tagger.get_layer(tag_head.HIDDEN).get_weights()
    w2, b2 = tagger.get_layer(tag_head.OUTPUT).get_weights()
    expected = 1 / (1 + np.exp(-(np.maximum(embedding @ w1 + b1, 0) @ w2 + b2)))
    np.testing.assert_allclose(np.asarray(tagger(x)), expected, atol=1e-5)
    for layer in body.layers[:-1]:  # the body as it was
        for ours, theirs in zip(tagger.get_layer(layer.name).get_weights(), layer.get_weights()):
            np.testing.assert_array_equal(ours, theirs)
    hdf5, hdf5_info = load_tagger(str(run_dir / "model.hdf5"))
    np.testing.assert_allclose(np.asarray(hdf5(x)), expected, atol=1e-5)
    assert hdf5_info == info


@pytest.mark.slow
def test_tag_py_tags_a_file_with_the_learnt_tags(trained, own, capsys):
    run_dir, _, _ = trained
    music = pathlib.Path(own[0])
    code, out, err = call_main(tag_cli.main, capsys, run_dir / "model.keras",
                               music / "02.wav", music / "01.wav", "--top-k", "3",
                               "--no-progress")
    assert code in (0, None), err
    low_noisy, high = ({line.split()[0]: float(line.split()[1]) for line in block.splitlines()[1:]}
                       for block in out.strip().split("\n\n"))
    assert low_noisy["low"] > low_noisy["high"] and low_noisy["noisy"] > high["noisy"]
    assert high["high"] > high["low"]


@pytest.mark.slow
def test_eval_py_scores_the_records_the_tagger_was_trained_on_as_its_run_did(
        trained, capsys, tmp_path):
    run_dir, _, records = trained  # records at 22050 Hz, the body's windows at 16 kHz
    report = tmp_path / "eval.json"
    code, out, err = call_main(eval_cli.main, capsys, run_dir / "model.keras", "--data-dir",
                               records, "--bootstrap", "0", "--out-json", report,
                               "--no-progress")
    assert code in (0, None), err
    ours = json.loads(report.read_text())
    theirs = json.loads((run_dir / "metrics.json").read_text())["test"]
    assert ours["clips"] == load_info(records).splits["test"]["clips"] == 6
    assert ours["roc_auc"] == pytest.approx(theirs["roc_auc"], abs=1e-6)
    assert ours["pr_auc"] == pytest.approx(theirs["pr_auc"], abs=1e-6)
    assert {row["tag"]: row["roc_auc"] for row in ours["per_tag"]} == pytest.approx(
        {row["tag"]: row["roc_auc"] for row in theirs["per_tag"]}, abs=1e-6)


@pytest.mark.slow
def test_eval_py_refuses_records_at_another_rate_for_a_tagger_not_made_from_a_body(
        trained, capsys, tmp_path):
    import dataclasses

    run_dir, _, records = trained
    model, info = load_tagger(str(run_dir / "model.keras"))
    own_model = str(tmp_path / "model.keras")  # as if trained from scratch at 16 kHz
    save_tagger(model, dataclasses.replace(info, base_model=None), own_model)
    code, _, err = call_main(eval_cli.main, capsys, own_model, "--data-dir", records,
                             "--no-progress")
    one_line_error(code, err, "the model was trained with sample rate 16000 (the dataset "
                              "has 22050)", "--sample-rate 16000")


@pytest.mark.slow
def test_a_rerun_reuses_the_embeddings_and_a_finished_run_is_not_trained_again(
        trained, own, capsys, tmp_path):
    run_dir, _, records = trained
    body_path = own[3]
    code, out, _ = call_main(train_cli.main, capsys, "--data-dir", records, "--from",
                             body_path, "--train-dir", run_dir.parent, "--resume", *TRAIN_ARGS)
    assert code in (0, None)
    assert f"run {run_dir} is already finished" in out and "embeddings of" not in out
    code, _, err = call_main(train_cli.main, capsys, "--data-dir", records, "--from",
                             body_path, "--train-dir", run_dir.parent, "--resume",
                             "--head-units", "0", "--no-progress")
    one_line_error(code, err, "--resume: --head-units 0 (the run has 256) differ from the run")
    code, _, err = call_main(train_cli.main, capsys, "--data-dir", records, "--from",
                             body_path, "--train-dir", run_dir.parent, "--resume",
                             "--hold-out-val", "--no-progress")
    one_line_error(code, err, "--resume: --hold-out-val set (the run has not set) differ")
    code, out, _ = call_main(train_cli.main, capsys, "--data-dir", records, "--from",
                             body_path, "--train-dir", tmp_path, "--head-units", "0",
                             "--lr", "0.03", "--max-epochs-per-stage", "1", "--no-progress")
    assert code in (0, None)
    info = load_info(records)
    for split in ("train", "val", "test"):
        shards = len(info.splits[split]["shards"])
        assert f"embeddings of {split}, {shards} shard(s), 0 computed, {shards} reused" in out


def weights_of(model) -> dict:
    """{layer name: its weights} of `model`."""
    return {layer.name: [np.array(w) for w in layer.get_weights()]
            for layer in model.layers if layer.get_weights()}


def moved(before: dict, after: dict, layer: str) -> bool:
    return not all(np.array_equal(b, a) for b, a in zip(before[layer], after[layer]))


@pytest.mark.slow
def test_fine_tuning_trains_every_layer_from_the_heads_best(own, tmp_path, capsys,
                                                           monkeypatch):
    """The head's epochs train the head alone; the fine-tuning epoch moves
    the body's weights and the head's, while batch normalisation keeps its
    statistics and weights (docs/own_tags.md)."""
    _, _, source, _ = own
    records = records_copy(source, tmp_path / "records")
    body_path = write_body(tmp_path / "body.keras", batch_norm=True)
    epochs = []  # (stage, weights before the epoch, weights after it)
    train_epoch = head_run.HeadRun._train_epoch

    def recorded(self, train_fn, iterator, steps, stage):
        before = weights_of(self.model)
        row = train_epoch(self, train_fn, iterator, steps, stage)
        epochs.append((stage.index, before, weights_of(self.model)))
        return row

    monkeypatch.setattr(head_run.HeadRun, "_train_epoch", recorded)
    code, out, err = call_main(train_cli.main, capsys, "--data-dir", records, "--from",
                               body_path, "--fine-tune", "--fine-tune-epochs", "1",
                               "--fine-tune-lr", "0.001", "--max-epochs-per-stage", "2",
                               "--train-dir", tmp_path / "runs", "--no-progress")
    assert code in (0, None), err
    body = keras.models.load_model(body_path, compile=False)
    original = weights_of(body)
    assert [stage for stage, _, _ in epochs] == [0, 0, 1]
    body_layers = ["body_conv", "body_bn", "embedding"]  # as the body was, at each start
    for stage, before, after in epochs:
        assert moved(before, after, tag_head.HIDDEN) and moved(before, after, tag_head.OUTPUT)
        assert moved(before, after, "body_conv") == moved(before, after, "embedding") == (
            stage == 1)  # the body trains in the fine-tuning stage alone
        assert not moved(original, after, "body_bn")  # gamma, beta, the moving statistics
    assert not any(moved(original, epochs[2][1], layer) for layer in body_layers)
    run_dir = tmp_path / "runs" / "from-body-fine-tune"
    history = (run_dir / "history.csv").read_text().splitlines()[1:]
    assert [row.split(",")[1] for row in history] == ["0", "0", "1"]  # head, head, every layer
    assert "run size (fine-tuning every layer): " in out and "stage 1: adam lr=0.001" in out
    tagger, info = load_tagger(str(run_dir / "model.keras"))
    assert info.base_model["fine_tuned"] is True
    body = keras.models.load_model(body_path, compile=False)
    state = json.loads((run_dir / "state.json").read_text())
    changed = not np.array_equal(tagger.get_layer("embedding").get_weights()[0],
                                 body.get_layer("embedding").get_weights()[0])
    assert changed == (state["best_epoch"] == 3)  # the body trained, if its epoch was best
    code, out, err = call_main(eval_cli.main, capsys, run_dir / "model.keras", "--data-dir",
                               records, "--split", "test", "--no-progress")
    assert code in (0, None), err
    assert "ROC-AUC" in out


@pytest.mark.slow
def test_the_loss_is_the_bce_of_the_saved_taggers_clip_scores(trained):
    from tagger.evaluation.metrics import binary_crossentropy
    from tagger.training.model_outputs import ModelFile

    run_dir, _, records = trained
    info = load_info(records)
    tagger = ModelFile(str(run_dir / "model.keras"), progress=False)
    ids, labels = reader.clip_labels(records, "val", info)
    clips = reader.clip_dataset(records, "val", info).as_numpy_iterator()
    scores = np.stack([outputs.scores.mean(0)
                       for _, outputs in tagger.clips_outputs(clips, info.sample_rate)])
    best = json.loads((run_dir / "metrics.json").read_text())["best"]
    assert best["val_loss"] == pytest.approx(binary_crossentropy(labels, scores), abs=1e-5)


def head_train_config(records, train_dir, body_path, **overrides):
    """Three Adam epochs of the head, batch 32, no test evaluation."""
    from tagger.config import TrainConfig

    settings = dict(data_dir=records, train_dir=str(train_dir), optimizer="adam", lr=0.03,
                    batch_size=32, num_stages=1, patience=10, max_epochs_per_stage=3,
                    strategy="default", progress=False, evaluate_test=False,
                    pretrained=PretrainedConfig(from_model=body_path))
    settings.update(overrides)
    return TrainConfig(**settings)


@pytest.mark.slow
@pytest.mark.parametrize("bodies", [1, 2])
def test_a_resumed_head_run_repeats_an_uninterrupted_one(own, tmp_path, monkeypatch, bodies):
    """On one body, and on two whose heads are averaged."""
    import dataclasses

    import pandas as pd

    from tests.training.test_resume import interrupted_after_first_epoch

    _, source, _, body_path = own
    records = records_copy(source, tmp_path / "records")
    also = (write_body(tmp_path / "body_2.keras", seed=2),) if bodies == 2 else ()
    settings = PretrainedConfig(from_model=body_path, also_from=also)
    whole = head_run.train(head_train_config(records, tmp_path / "whole", body_path,
                                             pretrained=settings))
    config = head_train_config(records, tmp_path / "cut", body_path, pretrained=settings)
    interrupted_after_first_epoch(config, monkeypatch, head_run.train)
    run_dir = tmp_path / "cut" / ("from-body+body_2" if also else "from-body")
    assert list(pd.read_csv(run_dir / "history.csv").epoch) == [1]
    head_run.train(dataclasses.replace(config, resume=True))
    resumed = pd.read_csv(run_dir / "history.csv").drop(columns="seconds")
    uninterrupted = pd.read_csv(pathlib.Path(whole["run_dir"]) / "history.csv")
    assert list(resumed.epoch) == [1, 2, 3]
    pd.testing.assert_frame_equal(resumed, uninterrupted.drop(columns="seconds"),
                                  rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_a_resume_on_a_replaced_body_file_is_refused(own, tmp_path, monkeypatch):
    """--from names the same path, but the file there is another model: the
    run cannot go on from checkpoints of the first one's head."""
    import dataclasses

    from tests.training.test_resume import interrupted_after_first_epoch

    _, source, _, body_path = own
    records = records_copy(source, tmp_path / "records")
    body = shutil.copy(body_path, tmp_path / "body.keras")
    config = head_train_config(records, tmp_path / "runs", str(body))
    interrupted_after_first_epoch(config, monkeypatch, head_run.train)
    started = model_fingerprint(body)
    run_dir = tmp_path / "runs" / "from-body"
    state = json.loads((run_dir / "state.json").read_text())
    assert state["base_model_sha256"] == started
    write_body(body, seed=2)
    now = model_fingerprint(body)
    with pytest.raises(UserError) as refused:
        head_run.train(dataclasses.replace(config, resume=True))
    assert str(refused.value) == (
        f"--resume: --from {str(body)!r} is now the file of SHA-256 {now}, but the run in "
        f"{str(run_dir)!r} was started on the file of SHA-256 {started}; put that file back "
        "to continue the run, or start a new one with --run-name")
    assert json.loads((run_dir / "state.json").read_text()) == state


@pytest.mark.slow
def test_the_heads_training_pipeline_holds_no_embeddings_in_its_graph(own, tmp_path,
                                                                      monkeypatch):
    """Many clips' embeddings: the training dataset's graph, serialized (as
    multi-worker input sharding and tf.data's rewrites do), holds no
    embeddings (a graph over 2 GB cannot be serialized at all); each window
    comes with its clip's tags, in the one order of the head's batches
    under every backend (`window_batches`: what JAX's runs train on)."""
    from tagger.training.backend_tf import TensorFlowBackend
    from tagger.training.model_outputs import ClipRows
    from tagger.training.run import epoch_seed

    _, source, _, body_path = own
    config = head_train_config(source, tmp_path / "runs", body_path, pretrained=PretrainedConfig(
        from_model=body_path, join_val=False))  # the train split's embeddings alone
    run = head_run.HeadRun(config, load_info(source), TensorFlowBackend("default"), "off")
    clips, dim = 50_000, 4
    rng = np.random.default_rng(0)
    counts = rng.integers(1, 4, clips)
    rows = ClipRows(np.arange(clips) * 3, counts, rng.random((counts.sum(), dim), np.float32))
    labels = (rng.random((clips, 3)) < 0.5).astype(np.float32)
    run._splits["train"] = (rows, labels)
    batches = []
    monkeypatch.setattr(run.backend.strategy, "experimental_distribute_dataset",
                        lambda data: batches.append(data) or iter(()))
    run._epoch_data(run.stages[0])
    assert dataset_graph_bytes(batches[0]) < 20_000  # 1.2 MB of embeddings
    clip_of = {row.tobytes(): clip for row, clip in zip(rows.values, rows.row_clips())}
    seen = 0
    ordered = head_run.window_batches(rows, labels, 32, epoch_seed(config.seed, 0))
    for (x, y), (x_jax, y_jax) in zip(batches[0].take(4).as_numpy_iterator(), ordered):
        assert x.shape == (32, dim) and y.shape == (32, 3)
        np.testing.assert_array_equal(x, x_jax)
        np.testing.assert_array_equal(y, y_jax)
        for window, tags in zip(x, y):
            np.testing.assert_array_equal(tags, labels[clip_of[window.tobytes()]])
            seen += 1
    assert seen == 128


def test_each_pass_of_the_heads_batches_gives_every_window_once():
    """`window_batches` over clips of 1 to 3 windows: the first pass's
    batches hold every window once with its clip's tags, and the next
    pass draws another order."""
    from tagger.training.model_outputs import ClipRows

    rng = np.random.default_rng(1)
    counts = rng.integers(1, 4, 40)
    rows = ClipRows(np.arange(40) * 5, counts, np.arange(counts.sum(), dtype=np.float32)[:, None])
    labels = np.arange(40, dtype=np.float32)[:, None]
    batches = head_run.window_batches(rows, labels, 1, seed=3)
    passes = [[next(batches) for _ in range(counts.sum())] for _ in range(2)]
    for one_pass in passes:
        windows = [int(x[0, 0]) for x, _ in one_pass]
        assert sorted(windows) == list(range(counts.sum()))
        assert all(y[0, 0] == rows.row_clips()[int(x[0, 0])] for x, y in one_pass)
    assert [x[0, 0] for x, _ in passes[0]] != [x[0, 0] for x, _ in passes[1]]


def test_a_model_without_info_or_embedding_layer_is_refused(tmp_path):
    from tests.checks import tiny_conv_tagger, tiny_teacher

    bare = str(tmp_path / "bare.keras")
    tiny_conv_tagger(samples=BODY_WINDOW).save(bare)
    with pytest.raises(UserError) as refused:
        Body(bare, progress=False)
    assert str(refused.value) == (
        f"--from {bare!r} ({bare}) carries no tagger info (its rate, window and family), so "
        "its embeddings cannot be found; use a model saved by train.py or "
        "convert_weights.py, or a pretrained name (tagger-pretrained list)")
    other = tiny_teacher(tmp_path / "other.keras", ["a", "b"], seed=1)
    with pytest.raises(UserError) as refused:
        Body(other, progress=False).embedding_layer  # noqa: B018  (it raises)
    assert str(refused.value) == (
        f"--from {other!r} ({other}) has no embedding layer of a family of this project (its "
        "info names 'tiny_conv'); use a model saved by train.py or convert_weights.py, or a "
        "pretrained name (tagger-pretrained list)")
    with pytest.raises(UserError, match="'missing.keras' not found; --from takes a "
                                        "pretrained name"):
        Body("missing.keras", progress=False)


@pytest.mark.parametrize("make, flag", [
    (lambda: PretrainedConfig(from_model=""), "--from"),
    (lambda: NoisyStudentConfig(teacher=" "), "--teacher"),
    (lambda: DistillationConfig(teachers=["MTT_vgg", ""]), "--distil")])
def test_a_config_naming_an_empty_model_is_refused(make, flag):
    """An empty model name reads as no model where a setting is tested for
    truth and as one where it is tested against None: refused, not read
    both ways."""
    with pytest.raises(ValueError, match=f"\\({flag}\\) must name a model"):
        make()


@pytest.mark.parametrize("kind", ["folder", "fifo", "unreadable"])
def test_a_from_or_distil_path_that_is_no_model_file_is_one_line_before_any_hashing(
        own, tmp_path, monkeypatch, kind):
    """A folder (a SavedModel folder is read nowhere: models load from
    .keras/.hdf5 files), a FIFO (which hashing would wait on forever) or a
    file that cannot be read is refused in one line, before it is hashed."""
    import builtins
    import os

    from tagger.inference import common
    from tagger.training.teacher_targets import Teacher

    hashed = []
    monkeypatch.setattr(common, "model_fingerprint", lambda path: hashed.append(path) or "0")
    path = tmp_path / "model.keras"
    if kind == "folder":
        path.mkdir()
        (path / "saved_model.pb").write_bytes(b"\0")
        why = "is a folder, not a model file"
    elif kind == "fifo":
        os.mkfifo(path)
        why = "is a FIFO (named pipe), not a model file"
    else:
        shutil.copy(own[3], path)
        real_open = builtins.open

        def refusing(file, *args, **kwargs):
            if os.fspath(file) in (str(path), os.fsencode(str(path))):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(builtins, "open", refusing)
        why = "cannot be read (permission denied)"
    for make, flag, role in ((Body, "--from", "model"), (Teacher, "--distil", "teacher")):
        with pytest.raises(UserError) as refused:
            make(str(path), progress=False)
        message = str(refused.value)
        assert message.startswith(f"{role} {str(path)!r} ({path}) ") and why in message, message
        assert f"; {flag} takes a pretrained name (tagger-pretrained list) or a .keras/.hdf5 " \
               "model file" in message and "\n" not in message
    assert hashed == []


@pytest.fixture(scope="module")
def two_bodies(own, tmp_path_factory):
    """(run folder, second body) of a head trained on two bodies' embeddings
    of the tones (train.py --from body --from body_2)."""
    _, source, _, body_path = own
    folder = tmp_path_factory.mktemp("two_bodies")
    records = records_copy(source, folder / "records")
    second = write_body(folder / "body_2.keras", seed=2, tags=("d", "e"))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = train_cli.main(["--data-dir", records, "--from", body_path, "--from", second,
                               "--train-dir", str(folder / "runs"), "--lr", "0.03",
                               "--max-epochs-per-stage", "3", "--no-progress"])
    assert code in (0, None), out.getvalue()
    assert "training windows of " + f"{body_path}'s and {second}'s embeddings (16 values)" \
        in out.getvalue()
    return folder / "runs" / "from-body+body_2", second


def embedding_of(path, x) -> np.ndarray:
    body = keras.models.load_model(path, compile=False)
    return np.asarray(keras.Model(body.inputs, body.get_layer("embedding").output)(x))


def head_scores(tagger, embedding, suffix="") -> np.ndarray:
    """The scores of a head of `tagger` (its layers ending in `suffix`) on
    `embedding`, in NumPy."""
    w1, b1 = tagger.get_layer(tag_head.HIDDEN + suffix).get_weights()
    w2, b2 = tagger.get_layer(tag_head.OUTPUT + suffix).get_weights()
    return 1 / (1 + np.exp(-(np.maximum(embedding @ w1 + b1, 0) @ w2 + b2)))


@pytest.mark.slow
def test_a_tagger_on_two_bodies_averages_a_head_on_each(two_bodies, own, capsys):
    """The default: a head on each body's embedding, the tagger's scores their
    mean; each head learnt the tags on its own."""
    from sklearn.metrics import roc_auc_score

    run_dir, second = two_bodies
    music, body_path = pathlib.Path(own[0]), own[3]
    tagger, info = load_tagger(str(run_dir / "model.keras"))
    assert info.base_model["name"] == body_path
    assert info.base_model["also"] == [{
        "name": second, "file": "body_2.keras", "sha256": model_fingerprint(second),
        "model": "tiny_conv", "embedding_layer": "embedding", "tag_names": ["d", "e"]}]
    assert info.base_model["combine_bodies"] == "average"
    assert tag_head.head_outputs(tagger) == ["tags_1", "tags_2"]
    audio, rate = soundfile.read(music / "02.wav", dtype="float32")
    audio = resample(audio, rate, BODY_RATE)
    x = np.stack([w for _, w in audio_windows(audio, BODY_RATE, BODY_WINDOW)])
    each = [head_scores(tagger, embedding_of(path, x), f"_{i}")
            for i, path in enumerate((body_path, second), 1)]
    expected = (each[0] + each[1]) / 2
    np.testing.assert_allclose(np.asarray(tagger(x)), expected, atol=1e-5)
    files = sorted(music.glob("*.wav"))
    audio = [resample(soundfile.read(f, dtype="float32")[0], 22050, BODY_RATE) for f in files]
    firsts = np.stack([a[:BODY_WINDOW] for a in audio])  # a window of each file
    truth = np.array([[t in file_tags(int(f.stem)) for t in info.tag_names] for f in files])
    for i, path in enumerate((body_path, second), 1):
        scores = head_scores(tagger, embedding_of(path, firsts), f"_{i}")
        assert roc_auc_score(truth, scores, average="macro") > 0.8, i
    hdf5, _ = load_tagger(str(run_dir / "model.hdf5"))
    np.testing.assert_allclose(np.asarray(hdf5(x)), expected, atol=1e-5)
    code, out, err = call_main(tag_cli.main, capsys, run_dir / "model.keras",
                               music / "02.wav", "--top-k", "3", "--no-progress")
    assert code in (0, None), err
    printed = {line.split()[0]: float(line.split()[1]) for line in out.strip().splitlines()[1:]}
    file_scores = dict(zip(info.tag_names, expected.mean(axis=0)))
    assert printed == pytest.approx(file_scores, abs=1e-3)


@pytest.mark.slow
def test_eval_py_scores_a_tagger_on_two_bodies_as_its_run_did(two_bodies, capsys, tmp_path):
    run_dir, _ = two_bodies
    records = run_dir.parent.parent / "records"
    report = tmp_path / "eval.json"
    code, _, err = call_main(eval_cli.main, capsys, run_dir / "model.keras", "--data-dir",
                             records, "--bootstrap", "0", "--out-json", report, "--no-progress")
    assert code in (0, None), err
    ours = json.loads(report.read_text())
    theirs = json.loads((run_dir / "metrics.json").read_text())["test"]
    assert ours["clips"] == 6
    assert ours["roc_auc"] == pytest.approx(theirs["roc_auc"], abs=1e-6)
    assert ours["pr_auc"] == pytest.approx(theirs["pr_auc"], abs=1e-6)


@pytest.mark.slow
def test_export_py_writes_a_tagger_on_two_bodies_as_tflite(two_bodies, tmp_path, capsys):
    import tensorflow as tf

    from tagger.commands import export as export_cli

    run_dir, _ = two_bodies
    out = tmp_path / "tagger.tflite"
    code, _, err = call_main(export_cli.main, capsys, run_dir / "model.keras", "--format",
                             "tflite", "--out", out)
    assert code in (0, None), err
    tagger, _ = load_tagger(str(run_dir / "model.keras"))
    x = np.random.default_rng(1).standard_normal((1, BODY_WINDOW)).astype(np.float32) * 0.3
    interpreter = tf.lite.Interpreter(model_path=str(out))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    scores = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(scores, np.asarray(tagger(x)), atol=1e-4)


def test_bodies_of_other_windows_or_fine_tuning_two_bodies_are_refused(own, capsys, tmp_path):
    import dataclasses

    _, records, _, body_path = own
    model, info = load_tagger(body_path)
    other = str(tmp_path / "other.keras")
    save_tagger(model, dataclasses.replace(info, sample_rate=22050), other)
    code, _, err = call_main(train_cli.main, capsys, "--data-dir", records, "--from",
                             body_path, "--from", other, "--train-dir", tmp_path,
                             "--no-progress")
    one_line_error(code, err, f"--from {body_path!r} and --from {other!r} read different "
                              "windows", "'sample_rate': 16000", "'sample_rate': 22050",
                   "give bodies of one rate and window, or one --from")
    second = write_body(tmp_path / "second.keras", seed=2)
    code, _, err = call_main(train_cli.main, capsys, "--data-dir", records, "--from",
                             body_path, "--from", second, "--fine-tune", "--train-dir",
                             tmp_path, "--no-progress")
    one_line_error(code, err, "--fine-tune trains one body; give one --from with it")
    copy = tmp_path / "copy.keras"
    shutil.copyfile(body_path, copy)  # one model under another name
    code, _, err = call_main(train_cli.main, capsys, "--data-dir", records, "--from",
                             body_path, "--from", second, "--from", copy, "--train-dir",
                             tmp_path, "--no-progress")
    one_line_error(code, err, f"--from {body_path!r} and --from {str(copy)!r} are one model",
                   "give each body once")
    assert not list(tmp_path.glob("from-*"))


def test_from_given_twice_names_both_bodies_in_the_config(capsys):
    from tagger.config import from_dict, saved_train_config, to_dict

    args = train_cli.parse_args(["--from", "MTT_musicnn", "--from", "MSD_musicnn"])
    config = train_cli.config_from_args(args)
    assert config.pretrained == PretrainedConfig(from_model="MTT_musicnn",
                                                 also_from=("MSD_musicnn",),
                                                 combine_bodies="average")
    saved = json.loads(json.dumps(to_dict(config.pretrained)))  # as config.json keeps it
    assert saved["also_from"] == ["MSD_musicnn"] and saved["combine_bodies"] == "average"
    assert from_dict(PretrainedConfig, saved) == config.pretrained
    joined = train_cli.config_from_args(train_cli.parse_args(
        ["--from", "MTT_musicnn", "--from", "MSD_musicnn", "--combine-bodies", "join"]))
    assert joined.pretrained.combine_bodies == "join"
    del saved["combine_bodies"]  # a run of an earlier version, which joined them
    earlier = saved_train_config({"pretrained": {**saved, "join_val": True}})
    assert earlier.pretrained.combine_bodies == "join" and earlier.pretrained.joins_val
    package = train_cli.config_from_args(train_cli.parse_args(["--from", "musicnn-package"]))
    assert package.pretrained == PretrainedConfig(  # the set of bodies by its name
        from_model="MSD_musicnn", also_from=("MTT_musicnn", "MSD_vgg", "MTT_vgg"))
    from tagger.training.run import default_run_name

    assert default_run_name(package) == "from-musicnn-package"
    code, _, err = call_main(train_cli.main, capsys, "--from", "MTT_musicnn",
                             "--combine-bodies", "join")
    one_line_error(code, err, "--combine-bodies applies with --from given more than once "
                              "only (one body has one head)")


def test_joined_bodies_have_one_head_and_averaged_ones_a_head_each(own, tmp_path):
    """attach_head on two bodies: 'join', one head on the 16 joined values;
    'average', a head on each body's 8 values, trained side by side
    (`heads_of`: each head's scores, heads x tags)."""
    bodies = [(*load_tagger(path), "embedding")
              for path in (own[3], write_body(tmp_path / "b.keras", seed=2))]
    joined = tag_head.attach_head(bodies, 3, 4, "join")
    assert tag_head.head_outputs(joined) == []
    assert joined.get_layer(tag_head.HIDDEN).get_weights()[0].shape == (16, 4)
    averaged = tag_head.attach_head(bodies, 3, 4, "average")
    assert [averaged.get_layer(f"{tag_head.HIDDEN}_{i}").get_weights()[0].shape
            for i in (1, 2)] == [(8, 4), (8, 4)]
    embedding = np.random.default_rng(0).standard_normal((5, 16)).astype(np.float32)
    heads = np.asarray(tag_head.heads_of(averaged, bodies[0][1])(embedding))
    assert heads.shape == (5, 6)
    np.testing.assert_allclose(heads[:, :3], head_scores(averaged, embedding[:, :8], "_1"),
                               atol=1e-5)
    np.testing.assert_allclose(heads[:, 3:], head_scores(averaged, embedding[:, 8:], "_2"),
                               atol=1e-5)
    scores = np.asarray(tag_head.head_of(averaged, bodies[0][1])(embedding))
    np.testing.assert_allclose(scores, (heads[:, :3] + heads[:, 3:]) / 2, atol=1e-6)


def mean_embedding(predictor, path) -> np.ndarray:
    """A file's mean embedding by `predictor`, over its windows as tag.py cuts them."""
    from tagger.inference.engine.tagging import tag_files

    (result,) = tag_files(predictor, [str(path)], workers=1)
    assert result.ok, result.error
    return result.embeddings.mean(axis=0)


@pytest.mark.slow
def test_a_tagger_on_two_bodies_has_one_embedding_the_joined_one(two_bodies, own, capsys,
                                                                 tmp_path):
    """tag.py --embeddings, tagger-similar and the beets plugin's --suggest
    read the bodies' joined embedding, as the head and train.py --suggest do."""
    from tagger.inference.engine.keras import embedding_layer_name
    from tagger.inference.library import similar
    from tagger.inference.library.results_reader import ResultsReader

    run_dir, second = two_bodies
    song, tagger_path = pathlib.Path(own[0]) / "02.wav", run_dir / "model.keras"
    joined = np.concatenate([mean_embedding(Body(path, progress=False).predictor(True), song)
                             for path in (own[3], second)])
    assert joined.shape == (16,)
    assert embedding_layer_name(*load_tagger(str(tagger_path))) == tag_head.JOINED
    db = tmp_path / "library.sqlite"
    code, _, err = call_main(tag_cli.main, capsys, tagger_path, song, "--db", db,
                             "--embeddings", "--windows", "all", "--no-progress")
    assert code in (0, None), err
    with ResultsReader(str(db)) as results:
        model = results.choose_model()
        np.testing.assert_allclose(results.stored_embedding(model, str(song)), joined,
                                   atol=1e-5)
    np.testing.assert_allclose(similar.embed(model, str(song)), joined, atol=1e-5)


@pytest.mark.slow
def test_the_beets_plugin_suggests_on_a_two_body_taggers_joined_embedding(two_bodies, own):
    pytest.importorskip("beets")
    from beetsplug.musictagger import _Tagger

    run_dir, second = two_bodies
    song = pathlib.Path(own[0]) / "02.wav"
    tagger = _Tagger(str(run_dir / "model.keras"), embeddings=True)  # as --suggest loads it
    assert tagger.predictor.embedding_layer == tag_head.JOINED
    joined = np.concatenate([mean_embedding(Body(path, progress=False).predictor(True), song)
                             for path in (own[3], second)])
    np.testing.assert_allclose(mean_embedding(tagger.predictor, song), joined, atol=1e-5)


FRONT_END = {"n_fft": 256, "hop_length": 160, "n_mels": 16}  # 11 frames of a body's window


def write_features_body(path, seed, reads="logmel", **logmel):
    """A tiny untrained tagger of the body's windows (`write_body`'s) on
    log-mel frames of its own settings (FRONT_END, `logmel` over it):
    reading the frames (input `log_mel`, as a tagger trained on --features
    logmel records) or, `reads="waveform"`, the window through its own
    `log_mel` layer. Its `embedding` gives 8 values."""
    from tagger.layers import LogMel

    settings = {**FRONT_END, **logmel}
    keras.utils.set_random_seed(seed)
    front = LogMel(sample_rate=BODY_RATE, segment_length=BODY_WINDOW, name="log_mel",
                   **settings)
    if reads == "logmel":
        inputs = x = keras.Input((front.frames_for(BODY_WINDOW), settings["n_mels"]),
                                 name="log_mel")
    else:
        inputs = keras.Input((BODY_WINDOW,), name="waveform")
        x = front(inputs)
    x = keras.layers.Rescaling(0.01)(keras.layers.Flatten()(x))  # dB to about 1
    x = keras.layers.Dense(8, name="embedding")(x)
    scores = keras.layers.Dense(2, activation="sigmoid", name="tags")(x)
    save_tagger(keras.Model(inputs, scores), TaggerMetadata(
        model="tiny_conv", model_args={}, tag_names=("a", "b"), sample_rate=BODY_RATE,
        segment_length=BODY_WINDOW, window_segments=1, input_kind=reads.replace(
            "waveform", "raw"), logmel=settings), str(path))
    return str(path)


@pytest.mark.slow
@pytest.mark.parametrize("others", [
    [{"f_max": 4000.0}],  # frames of the first's shape, other features
    [{"n_mels": 24}, {"reads": "waveform", "n_mels": 12, "hop_length": 100}],
], ids=["same-shape", "other-shapes-and-a-waveform-body"])
def test_bodies_of_other_log_mel_settings_each_compute_their_own_features(own, capsys,
                                                                         tmp_path, others):
    """Bodies that read log-mel frames of other settings are joined, each
    behind a front end of its own: the saved tagger reads the waveform and
    gives each body's embedding as the body alone gives it (its own
    scoring path, which its stored embeddings came from), and the scores
    of the head on them."""
    _, source, _, _ = own
    records = records_copy(source, tmp_path / "records")
    paths = [write_features_body(tmp_path / "body_1.keras", seed=1)] + [
        write_features_body(tmp_path / f"body_{i}.keras", seed=i, **settings)
        for i, settings in enumerate(others, start=2)]
    code, _, err = call_main(train_cli.main, capsys, "--data-dir", records,
                             *[flag for path in paths for flag in ("--from", path)],
                             "--train-dir", tmp_path / "runs", "--max-epochs-per-stage", "2",
                             "--no-progress")
    assert code in (0, None), err
    run_dir = tmp_path / "runs" / ("from-" + "+".join(f"body_{i}" for i in
                                                      range(1, len(paths) + 1)))
    tagger, info = load_tagger(str(run_dir / "model.keras"))
    assert info.input_kind == "raw" and tuple(tagger.inputs[0].shape) == (None, BODY_WINDOW)
    song = pathlib.Path(own[0]) / "03.wav"
    own_scoring = np.concatenate([mean_embedding(Body(path, progress=False).predictor(True),
                                                 song) for path in paths])
    assert own_scoring.shape == (8 * len(paths),)
    from tagger.inference.engine.registry import EngineOptions, make_predictor

    saved = make_predictor("keras", tagger, info, EngineOptions(
        embeddings=True, embedding_layer=tag_head.JOINED))
    np.testing.assert_allclose(mean_embedding(saved, song), own_scoring, rtol=1e-4, atol=1e-4)
    report = tmp_path / "eval.json"  # the saved tagger over the test files, as tag.py runs it
    code, _, err = call_main(eval_cli.main, capsys, run_dir / "model.keras", "--data-dir",
                             records, "--bootstrap", "0", "--out-json", report,
                             "--no-progress")
    assert code in (0, None), err
    test = json.loads((run_dir / "metrics.json").read_text())["test"]  # on stored embeddings
    assert json.loads(report.read_text())["roc_auc"] == pytest.approx(test["roc_auc"],
                                                                       abs=1e-6)
