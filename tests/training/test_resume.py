"""Continuing a run: same input order as an uninterrupted run, changed settings
refused, finished runs left alone, damaged or state-less run folders refused."""

import dataclasses
import gc
import json
import logging
import math
import os
import pathlib

import pandas as pd
import pytest

from tagger.commands import train as train_cli
from tagger.errors import UserError
from tagger.training.run import Run, read_state, train
from tests.checks import call_main, one_line_error
from tests.presets import tiny_train_config

RUN = "samplecnn-basic-multi"


def three_epochs(records, train_dir, **overrides):
    settings = dict(num_stages=1, max_epochs_per_stage=3, patience=9,
                    steps_per_epoch=3, evaluate_test=False)
    settings.update(overrides)
    return tiny_train_config(records, train_dir, **settings)


def interrupted_after_first_epoch(config, monkeypatch, train_run=train):
    """Trains `config` with `train_run` and stops it (as a kill would) once
    epoch 1 is committed."""
    original = Run._end_epoch

    def end_epoch(self, row, optimizer):
        original(self, row, optimizer)
        if self.state.epoch == 1:
            raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(Run, "_end_epoch", end_epoch)
        with pytest.raises(KeyboardInterrupt):
            train_run(config)


@pytest.fixture(scope="module")
def uninterrupted(raw_records, tmp_path_factory):
    config = three_epochs(raw_records[0], tmp_path_factory.mktemp("whole"))
    metrics = train(config)
    return pathlib.Path(metrics["run_dir"]), config


@pytest.mark.slow
def test_a_resumed_run_repeats_an_uninterrupted_one(uninterrupted, raw_records, tmp_path,
                                                    monkeypatch, caplog):
    whole_dir, _ = uninterrupted
    config = three_epochs(raw_records[0], tmp_path)
    interrupted_after_first_epoch(config, monkeypatch)
    run_dir = tmp_path / RUN
    assert list(pd.read_csv(run_dir / "history.csv").epoch) == [1]
    with caplog.at_level(logging.WARNING):
        train(dataclasses.replace(config, resume=True))
        gc.collect()  # TensorFlow warns about unread checkpoint values on deletion
    assert not [r for r in caplog.records if "could not be found" in r.getMessage()]
    resumed = pd.read_csv(run_dir / "history.csv").drop(columns="seconds")
    whole = pd.read_csv(whole_dir / "history.csv").drop(columns="seconds")
    assert list(resumed.epoch) == [1, 2, 3]
    pd.testing.assert_frame_equal(resumed, whole, rtol=1e-5, atol=1e-6)


def test_epoch_seeds_differ_per_epoch_and_run():
    from tagger.training.run import epoch_seed

    seeds = {epoch_seed(s, e) for s in range(3) for e in range(100)}
    assert len(seeds) == 300 and all(0 <= s < 2**31 for s in seeds)


def train_main(capsys, *argv):
    return call_main(train_cli.main, capsys, *argv)


def base_flags(records, train_dir):
    return ["--data-dir", records, "--train-dir", train_dir, "--block", "basic",
            "--alpha", "2", "--width", "0.0625", "--batch-size", "8",
            "--num-stages", "1", "--max-epochs-per-stage", "3", "--patience", "9",
            "--steps-per-epoch", "3", "--strategy", "default", "--no-test",
            "--no-progress"]


@pytest.mark.slow
def test_resume_refuses_changed_settings(uninterrupted, capsys):
    run_dir, config = uninterrupted
    flags = base_flags(config.data_dir, str(run_dir.parent))
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    code, _, err = train_main(capsys, *flags, "--resume", "--lr", "0.5", "--alpha", "4")
    one_line_error(code, err, "--lr 0.5 (the run has 0.01)", "--alpha 4 (the run has 2)",
                   "--run-name")
    code, _, err = train_main(capsys, *flags, "--resume", "--no-multi", "--seed", "3",
                              "--run-name", RUN)
    one_line_error(code, err, "--no-multi set (the run has not set)",
                   "--seed 3 (the run has 0)")
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before


@pytest.mark.slow
def test_resume_checks_flags_against_the_saved_schedule(uninterrupted, capsys):
    run_dir, config = uninterrupted  # a staged run
    flags = ["--train-dir", str(run_dir.parent), "--block", "basic", "--resume"]
    code, _, err = train_main(capsys, *flags, "--total-epochs", "9")
    one_line_error(code, err, "--total-epochs applies to the adam_then_sgd schedule only")
    code, _, err = train_main(capsys, *flags, "--schedule", "adam_then_sgd")
    one_line_error(code, err, "--schedule adam_then_sgd (the run has staged)")


@pytest.mark.slow
def test_a_finished_run_says_so(uninterrupted, capsys, monkeypatch):
    run_dir, config = uninterrupted
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    evaluated = []
    monkeypatch.setattr(Run, "_finish", lambda self: evaluated.append(1))
    # Flags left out come from the run (its model size, its schedule).
    code, out, err = train_main(capsys, "--train-dir", str(run_dir.parent), "--block",
                                "basic", "--resume", "--strategy", "default")
    assert code == 0, err
    assert f"run {run_dir} is already finished: 3 epochs" in out
    assert not evaluated
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before


def copy_run(run_dir, target):
    import shutil

    shutil.copytree(run_dir, target / run_dir.name)
    return target / run_dir.name


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["missing", "truncated"])
def test_a_run_without_readable_state_is_refused_not_wiped(uninterrupted, tmp_path,
                                                            capsys, damage):
    run_dir, config = uninterrupted
    copy = copy_run(run_dir, tmp_path)
    state = copy / "state.json"
    if damage == "missing":
        state.unlink()
    else:
        state.write_bytes(state.read_bytes()[:40])
    before = {p.relative_to(copy): p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    flags = base_flags(config.data_dir, str(tmp_path))
    for extra in ([], ["--resume"]):
        code, _, err = train_main(capsys, *flags, *extra)
        if damage == "missing":
            one_line_error(code, err, f"{str(copy)!r} holds checkpoints (best-", "history.csv",
                           "no state.json", "--run-name or --train-dir")
        elif extra:
            one_line_error(code, err, f"{str(state)!r} is damaged", "--run-name")
        else:
            one_line_error(code, err, "already holds a run", "--resume")
    after = {p.relative_to(copy): p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    assert after == before


def unfinished_copy(run_dir, tmp_path):
    """A copy of a finished run folder whose state.json says it is not."""
    copy = copy_run(run_dir, tmp_path)
    state = json.loads((copy / "state.json").read_text())
    state["done"] = False  # as if killed before the end
    (copy / "state.json").write_text(json.dumps(state))
    return copy, state


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["cut", "flipped"])
def test_a_damaged_checkpoint_is_named(uninterrupted, tmp_path, capsys, damage):
    run_dir, config = uninterrupted
    copy, state = unfinished_copy(run_dir, tmp_path)
    target = copy / "checkpoints" / f"{state['last_checkpoint']}.npz"
    data = bytearray(target.read_bytes())
    if damage == "cut":
        data = data[:len(data) // 2]
    else:  # a byte inside the first array's values: its CRC no longer matches
        data[len(data) // 3] ^= 0xFF
    target.write_bytes(bytes(data))
    code, _, err = train_main(capsys, *base_flags(config.data_dir, str(tmp_path)),
                              "--resume")
    one_line_error(code, err, f"checkpoint file {str(target)!r} is damaged", "--run-name")


@pytest.mark.slow
def test_a_run_whose_best_checkpoint_is_cut_ends_from_its_last(uninterrupted, tmp_path,
                                                               capsys):
    """The best checkpoint of a run killed before it saved its model, cut:
    --resume refuses before training, naming it; with
    --drop-damaged-checkpoints the run ends on its last epoch's checkpoint,
    the best from then on, and saves it as its model."""
    run_dir, config = uninterrupted
    copy, state = unfinished_copy(run_dir, tmp_path)
    best = copy / "checkpoints" / f"{state['best_checkpoint']}.npz"
    best.write_bytes(best.read_bytes()[:len(best.read_bytes()) // 2])
    flags = [*base_flags(config.data_dir, str(tmp_path)), "--resume"]
    code, _, err = train_main(capsys, *flags)
    one_line_error(code, err, f"checkpoint file {str(best)!r} is damaged",
                   "pass --drop-damaged-checkpoints to go on from epoch 3's checkpoint, which "
                   "holds its best model too")
    code, out, err = train_main(capsys, *flags, "--drop-damaged-checkpoints")
    assert code == 0, err
    assert "--drop-damaged-checkpoints: checkpoint file" in out
    metrics = json.loads((copy / "metrics.json").read_text())
    assert metrics["best_epoch"] == metrics["epochs"] == 3
    assert json.loads((copy / "state.json").read_text())["done"] is True
    import numpy as np

    from tagger.models.saved import load_tagger

    model, _ = load_tagger(str(copy / "model.keras"))  # the last epoch's weights
    last = np.load(copy / "checkpoints" / f"{state['last_checkpoint']}.npz")
    assert last["paths/model"][0] == model.variables[0].path == "stem_conv/kernel"
    np.testing.assert_array_equal(model.variables[0].numpy(), last["model/00000"])


@pytest.mark.slow
def test_a_run_checkpointed_in_tensorflows_format_resumes(uninterrupted, raw_records,
                                                         tmp_path, monkeypatch):
    """A run started before checkpoints were NumPy files wrote TensorFlow
    checkpoints: it resumes from them, as an uninterrupted run goes on."""
    import tensorflow as tf

    from tagger.training import checkpoints

    whole_dir, _ = uninterrupted
    config = three_epochs(raw_records[0], tmp_path)
    interrupted_after_first_epoch(config, monkeypatch)
    run = Run(dataclasses.replace(config, resume=True), *_run_parts(config))
    folder = tmp_path / RUN / "checkpoints"
    state = json.loads((tmp_path / RUN / "state.json").read_text())
    with run.backend.scope():
        model = run._build_model()
        from tagger.training.schedule import make_optimizer

        optimizer = make_optimizer(run.stages[0])
        optimizer.build(model.trainable_variables)
    for name, with_optimizer in ((state["last_checkpoint"], True),
                                 (state["best_checkpoint"], False)):
        prefix = str(folder / name)
        checkpoints.read(prefix, model, optimizer if with_optimizer else None)
        objects = {"model": model, "rng": [v.value for v in model.non_trainable_variables
                                           if v.path.endswith("seed_generator_state")]}
        if with_optimizer:
            objects["optimizer"] = optimizer
        tf.train.Checkpoint(**objects).write(prefix)  # the earlier format
        os.remove(checkpoints.path_of(prefix))
    assert not list(folder.glob("*.npz")) and list(folder.glob("*.index"))
    train(dataclasses.replace(config, resume=True))
    resumed = pd.read_csv(tmp_path / RUN / "history.csv").drop(columns="seconds")
    whole = pd.read_csv(whole_dir / "history.csv").drop(columns="seconds")
    pd.testing.assert_frame_equal(resumed, whole, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_a_tensorflow_format_checkpoint_of_another_model_is_said_not_to_fit(
        uninterrupted, tmp_path, capsys, caplog):
    import tensorflow as tf

    from tests.checks import tiny_conv_tagger

    run_dir, config = uninterrupted
    copy, state = unfinished_copy(run_dir, tmp_path)
    prefix = copy / "checkpoints" / state["last_checkpoint"]
    os.remove(f"{prefix}.npz")
    other = tiny_conv_tagger()
    tf.train.Checkpoint(model=other, rng=[]).write(str(prefix))  # the earlier format
    with caplog.at_level(logging.WARNING):
        code, _, err = train_main(capsys, *base_flags(config.data_dir, str(tmp_path)),
                                  "--resume")
        gc.collect()  # the refused checkpoint warns nothing when collected, later
    assert not [r for r in caplog.records if "could not be found" in r.getMessage()]
    one_line_error(code, err, f"checkpoint {str(prefix)!r} does not fit the model built",
                   "--run-name")


def _run_parts(config) -> tuple:
    """(info, backend, precision) of `config`'s run."""
    from tagger.training.run import prepare

    _, info, backend, precision = prepare(config)
    return info, backend, precision


def test_a_new_run_writes_its_state_before_any_checkpoint(raw_records, tmp_path,
                                                          monkeypatch):
    """So a run killed during its first epoch can be resumed, not refused."""
    seen = {}

    def first_epoch(self, *args):
        seen["files"] = sorted(os.listdir(self.run_dir))
        seen["checkpoints"] = os.listdir(os.path.join(self.run_dir, "checkpoints"))
        raise KeyboardInterrupt

    monkeypatch.setattr(Run, "_train_epoch", first_epoch)
    with pytest.raises(KeyboardInterrupt):
        train(three_epochs(raw_records[0], tmp_path))
    assert "state.json" in seen["files"] and seen["checkpoints"] == []
    state = strict_json_loads((tmp_path / RUN / "state.json").read_text())
    assert state["epoch"] == 0 and not state["done"]
    # no best score yet: written as null (not the invalid bare Infinity), read as inf
    assert state["best_score"] is None
    assert read_state(str(tmp_path / RUN / "state.json")).best_score == math.inf


def strict_json_loads(text):
    """json.loads that refuses the bare NaN/Infinity strict parsers refuse."""
    def refuse(constant):
        raise ValueError(f"invalid JSON constant {constant}")
    return json.loads(text, parse_constant=refuse)


@pytest.mark.slow
def test_run_files_are_strict_json(uninterrupted):
    run_dir, _ = uninterrupted
    for name in ("state.json", "metrics.json", "config.json"):
        strict_json_loads((run_dir / name).read_text())


def _row(epoch, roc_auc):
    return {"epoch": epoch, "stage": 0, "stage_epoch": epoch, "optimizer": "sgd",
            "lr": 0.01, "train_loss": 0.7, "val_loss": 0.69, "val_roc_auc": roc_auc,
            "val_pr_auc": 0.1, "seconds": 1.0}


def test_state_with_undefined_numbers_reads_back_as_written(tmp_path):
    """NaN (an undefined validation ROC-AUC) and an unset best score are
    written as null and read back as NaN and inf; an older state.json that
    holds a bare Infinity or NaN reads as it always did."""
    import dataclasses as dc

    from tagger.training.run_state import RunState, state_text

    state = RunState(epoch=1, history=[_row(1, math.nan)])
    path = tmp_path / "state.json"
    path.write_text(state_text(state))
    strict_json_loads(path.read_text())
    back = read_state(str(path))
    assert back.best_score == math.inf and math.isnan(back.history[0]["val_roc_auc"])
    assert dc.replace(back, history=[]) == dc.replace(state, history=[])
    assert {k: v for k, v in back.history[0].items() if k != "val_roc_auc"} == \
        {k: v for k, v in _row(1, 0).items() if k != "val_roc_auc"}
    old = tmp_path / "old.json"
    old.write_text('{"epoch": 2, "best_score": Infinity, "history": ['
                   + json.dumps(_row(1, math.nan)) + "]}")
    assert "NaN" in old.read_text()
    back = read_state(str(old))
    assert back.epoch == 2 and back.best_score == math.inf
    assert math.isnan(back.history[0]["val_roc_auc"])



def test_a_run_saved_under_the_schedules_former_name_reads_as_adam_then_sgd(tmp_path):
    """A config.json from before the rename (schedule "won") still resumes."""
    from tagger.config import TrainConfig, to_dict
    from tagger.training.run import saved_config

    config = TrainConfig(train_dir=str(tmp_path), run_name="old", model="fcn",
                         schedule="adam_then_sgd", switch_epochs=(1, 2, 3), total_epochs=4)
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.json").write_text(
        json.dumps(dict(json.loads(json.dumps(to_dict(config))), schedule="won")))
    assert saved_config(config) == dataclasses.replace(config, switch_epochs=[1, 2, 3])


def test_a_run_saved_with_its_monitor_named_resumes_without_naming_it(tmp_path):
    """A config.json from before the monitor defaulted to the run's own
    (`"monitor": "val_loss"` written out) continues from a library call
    (demo.py's resume) that names none, and from one that names the same;
    another monitor is refused."""
    from tagger.config import TrainConfig, to_dict
    from tagger.training.run import resume_settings

    config = TrainConfig(train_dir=str(tmp_path), run_name="old", resume=True)
    assert config.monitor is None
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.json").write_text(json.dumps(
        dict(json.loads(json.dumps(to_dict(config))), monitor="val_loss")))
    assert resume_settings(config).monitor == "val_loss"
    assert resume_settings(dataclasses.replace(config, monitor="val_loss")).monitor == "val_loss"
    with pytest.raises(UserError, match="--monitor val_roc_auc \\(the run has val_loss\\)"):
        resume_settings(dataclasses.replace(config, monitor="val_roc_auc"))


def test_a_run_saved_with_num_lr_decays_resumes_with_as_many_stages(tmp_path):
    """A config.json from before `num_lr_decays` was named for what it counts."""
    from tagger.config import TrainConfig, to_dict
    from tagger.training.run import saved_config

    config = TrainConfig(train_dir=str(tmp_path), run_name="old", num_stages=2)
    saved = json.loads(json.dumps(to_dict(config)))
    saved["num_lr_decays"] = saved.pop("num_stages")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "config.json").write_text(json.dumps(saved))
    assert saved_config(config) == dataclasses.replace(config, switch_epochs=[80, 100, 120])
    assert saved_config(config).num_stages == 2

@pytest.mark.slow
def test_disk_full_while_checkpointing(raw_records, tmp_path, monkeypatch, capsys):
    import errno

    from tagger.training import checkpoints

    def full(prefix, model, optimizer=None):
        with open(checkpoints.path_of(prefix), "wb") as f:  # a partial file
            f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(checkpoints, "write", full)
    with pytest.raises(UserError, match=r"cannot write checkpoint .*epoch-00001\.npz.*: the "
                                        "disk is full"):
        train(three_epochs(raw_records[0], tmp_path))
    assert os.listdir(tmp_path / RUN / "checkpoints") == []


@pytest.mark.parametrize("layout", ["file", "parent_is_file"])
def test_train_dir_that_cannot_hold_runs(raw_records, tmp_path, capsys, layout):
    (tmp_path / "file").write_text("keep")
    train_dir = tmp_path / "file" if layout == "file" else tmp_path / "file" / "runs"
    code, _, err = train_main(capsys, *base_flags(raw_records[0], str(train_dir)))
    one_line_error(code, err, "cannot write the run folder (--train-dir)",
                   "a part of the path is a file")
    assert (tmp_path / "file").read_text() == "keep"


def test_a_read_only_train_dir_is_one_line(raw_records, capsys, monkeypatch):
    from tests.checks import read_only_path

    train_dir = read_only_path("runs")
    monkeypatch.setattr(Run, "_train_stages", lambda self: pytest.fail("trained"))
    code, _, err = train_main(capsys, *base_flags(raw_records[0], train_dir))
    one_line_error(code, err, f"cannot write the run folder (--train-dir) '{train_dir}/",
                   "permission denied")
    assert not os.path.exists(train_dir)


@pytest.fixture(scope="module")
def two_teachers(tmp_path_factory):
    """Two tiny teachers of the same tags and rate, of other weights."""
    from tests.checks import tiny_teacher

    folder = tmp_path_factory.mktemp("teachers")
    return [tiny_teacher(folder / f"{seed}.keras", ["guitar", "classical"], seed=seed)
            for seed in (1, 2)]


@pytest.mark.parametrize("flag", ["--teacher", "--distil"])
def test_a_resume_whose_teacher_file_was_replaced_is_refused(raw_records, two_teachers,
                                                             tmp_path, monkeypatch, capsys,
                                                             flag):
    """A student's run keeps its teachers' SHA-256 in state.json: a resume
    whose teacher path holds another model is refused in one line before the
    teacher scores anything; a run started before the SHA-256 was kept
    resumes on the file it finds, says so, and keeps its SHA-256."""
    import shutil

    from tagger.config import DistillationConfig, NoisyStudentConfig
    from tagger.inference.common import model_fingerprint
    from tagger.training import distillation, semi_supervised, started_models

    teacher = str(tmp_path / "teacher.keras")
    shutil.copy(two_teachers[0], teacher)
    config = three_epochs(raw_records[0], tmp_path, **(
        {"noisy_student": NoisyStudentConfig(teacher=teacher)} if flag == "--teacher" else
        {"distillation": DistillationConfig(teachers=(teacher,))}))
    parts = _run_parts(config)
    run = Run(config, *parts)
    run._open_run_dir()  # a new run, as train() opens it
    run._write_config()
    run._commit()
    started = model_fingerprint(teacher)
    state_path = pathlib.Path(run.run_dir) / "state.json"
    assert json.loads(state_path.read_text())["teacher_sha256"] == started
    os.replace(shutil.copy(two_teachers[1], tmp_path / "other.keras"), teacher)
    now = model_fingerprint(teacher)
    assert now != started

    def set_up(*args, **kwargs):
        raise AssertionError("the teacher was set up")

    monkeypatch.setattr(distillation, "setup", set_up)
    monkeypatch.setattr(semi_supervised, "setup", set_up)
    resumed = dataclasses.replace(config, resume=True)
    with pytest.raises(UserError) as refused:
        train(resumed)
    assert str(refused.value) == (
        f"--resume: {flag} {teacher!r} is now the file of SHA-256 {now}, but the run in "
        f"{run.run_dir!r} was started on the file of SHA-256 {started}; put that file back "
        "to continue the run, or start a new one with --run-name")
    with pytest.raises(UserError) as refused:  # a later stage's restart: the same, its flag named
        Run(dataclasses.replace(config, initial_stage=1, num_stages=2), *parts)._open_run_dir()
    assert str(refused.value) == (
        f"--initial-stage 1: {flag} {teacher!r} is now the file of SHA-256 {now}, but the run "
        f"in {run.run_dir!r} was started on the file of SHA-256 {started}; put that file back "
        "to continue the run, or start a new one with --run-name")

    state = json.loads(state_path.read_text())  # as an earlier version wrote it, one epoch on
    del state["teacher_sha256"]
    state_path.write_text(json.dumps({**state, "epoch": 1, "history": [_row(1, 0.5)]}))
    capsys.readouterr()
    started_models.check_teachers(resumed, run.run_dir)
    again = Run(resumed, *parts)
    again._open_run_dir()
    assert again.state.teacher_sha256 == now
    assert (f"keeps no SHA-256 of {flag} {teacher!r} (it was started by an earlier version): "
            f"taken to be the file(s) it started on, SHA-256 {now}") in capsys.readouterr().out


@pytest.mark.parametrize("damaged", ["best", "last", "both"])
def test_a_damaged_checkpoint_is_refused_before_training_and_can_be_dropped(
        raw_records, tmp_path, capsys, monkeypatch, damaged):
    """Every checkpoint state.json names is checked before the model is
    built: a cut one is named in one line with the way on, and the folder
    is left as it was; --drop-damaged-checkpoints goes on from the latest
    good one (the last epoch's, then the best from then on; else the best's,
    with a fresh optimizer), or from the start."""
    import numpy as np

    from tagger.config import to_dict
    from tagger.strict_json import dumps
    from tagger.training import damaged_checkpoints
    from tagger.training.run_state import RunState, state_text

    config = three_epochs(raw_records[0], tmp_path)
    run_dir = tmp_path / RUN
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "config.json").write_text(dumps(to_dict(config)))
    state = RunState(stage=1, epoch=3, best_epoch=2, best_score=0.5, wait=1,
                     best_checkpoint="best-00002", last_checkpoint="epoch-00003",
                     history=[_row(epoch, 0.5) for epoch in (1, 2, 3)], teacher_sha256="ab")
    (run_dir / "state.json").write_text(state_text(state))
    files = {name: run_dir / "checkpoints" / f"{name}.npz"
             for name in ("epoch-00003", "best-00002")}
    for seed, path in enumerate(files.values()):
        np.savez(path, values=np.random.default_rng(seed).random(1000))
    cut = ["best-00002", "epoch-00003"] if damaged == "both" else \
        ["best-00002" if damaged == "best" else "epoch-00003"]
    for name in cut:
        files[name].write_bytes(files[name].read_bytes()[:3000])
    before = {p.name: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()}
    monkeypatch.setattr(Run, "_build_model", lambda self: pytest.fail("built"))
    code, _, err = train_main(capsys, *base_flags(config.data_dir, str(tmp_path)), "--resume")
    where = {"best": "epoch 3's checkpoint, its best from then on (epoch 2's model is lost)",
             "last": "its best checkpoint (epoch 2) with a fresh optimizer",
             "both": "the start, as no checkpoint of it is good"}[damaged]
    one_line_error(code, err, *(f"checkpoint file {str(files[name])!r} is damaged"
                                for name in cut),
                   f"start a new run with --run-name, or pass --drop-damaged-checkpoints to "
                   f"go on from {where}")
    assert {p.name: p.read_bytes() for p in run_dir.rglob("*") if p.is_file()} == before

    lines = []
    repaired = damaged_checkpoints.checked(read_state(str(run_dir / "state.json")),
                                           str(run_dir), True, lambda row: row["val_loss"],
                                           log=lines.append)
    assert lines[0].startswith("--drop-damaged-checkpoints: checkpoint file")
    assert lines[0].endswith(f"going on from {where}")
    assert read_state(str(run_dir / "state.json")) == repaired
    left = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    if damaged == "best":
        assert repaired == dataclasses.replace(state, best_checkpoint="best-00003",
                                               best_epoch=3, best_score=0.69, wait=0)
        assert left == ["best-00003.npz", "epoch-00003.npz"]
        assert files["epoch-00003"].read_bytes() == \
            (run_dir / "checkpoints" / "best-00003.npz").read_bytes()
    elif damaged == "last":
        assert repaired == dataclasses.replace(state, last_checkpoint=None,
                                               stage_started=False)
        assert left == ["best-00002.npz"]
    else:
        assert repaired == RunState(teacher_sha256="ab") and left == []
