"""train.py and the run folder on the synthetic records: outputs, resume, flags, errors."""

import json
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tagger.commands import train as train_cli
from tagger.config import DistillationConfig, TrainConfig
from tagger.errors import UserError
from tagger.evaluation.evaluate import evaluate
from tagger.models.saved import read_saved_info
from tagger.training import checkpoints
from tagger.training.run import train
from tests.checks import HANG_S, call_main
from tests.presets import tiny_train_config

ROOT = pathlib.Path(__file__).parents[2]


@pytest.fixture(scope="module")
def finished_run(raw_records, tmp_path_factory):
    records, _ = raw_records
    train_dir = tmp_path_factory.mktemp("runs")
    metrics = train(tiny_train_config(records, train_dir, steps_per_execution=2))
    return pathlib.Path(metrics["run_dir"]), metrics


@pytest.mark.slow
def test_run_folder_contents(finished_run, raw_records):
    run_dir, metrics = finished_run
    for name in ("config.json", "state.json", "history.csv", "model.keras", "model.hdf5",
                 "metrics.json"):
        assert (run_dir / name).exists(), name
    assert list((run_dir / "logs").iterdir())  # TensorBoard events
    history = pd.read_csv(run_dir / "history.csv")
    assert list(history.epoch) == [1, 2]
    assert list(history.stage) == [0, 1]
    np.testing.assert_allclose(history.lr, [0.01, 0.002])
    assert np.isfinite(history.val_loss).all()
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["model_args"]["block"] == "basic" and saved["schedule"] == "staged"
    assert [s["stage"] for s in metrics["stages"]] == [0, 1]
    state = json.loads((run_dir / "state.json").read_text())
    assert state["done"] and state["epoch"] == 2
    # Only the last epoch checkpoint and the best one remain.
    names = {p.name.split(".")[0] for p in (run_dir / "checkpoints").iterdir()}
    assert names == {state["last_checkpoint"], state["best_checkpoint"]}


@pytest.mark.slow
def test_saved_models_agree_and_describe_themselves(finished_run, raw_records):
    run_dir, _ = finished_run
    _, info = raw_records
    a = keras.models.load_model(run_dir / "model.keras")
    b = keras.models.load_model(run_dir / "model.hdf5")
    x = np.random.default_rng(0).uniform(-0.5, 0.5, (2, 59049)).astype("float32")
    np.testing.assert_allclose(a.predict(x, verbose=0), b.predict(x, verbose=0), atol=1e-6)
    meta = read_saved_info(run_dir / "model.keras")
    assert meta.tag_names == info.tag_names
    assert meta.window_segments == 1 and meta.input_kind == "raw"
    assert meta == read_saved_info(run_dir / "model.hdf5")


@pytest.mark.slow
def test_test_metrics_equal_eval(finished_run, raw_records):
    run_dir, metrics = finished_run
    records, _ = raw_records
    for name in ("model.keras", "model.hdf5"):
        result = evaluate(str(run_dir / name), records, "test")
        assert result.metrics.roc_auc == pytest.approx(metrics["test"]["roc_auc"], abs=1e-6)
        assert result.metrics.pr_auc == pytest.approx(metrics["test"]["pr_auc"], abs=1e-6)


@pytest.mark.slow
def test_existing_run_needs_resume(finished_run, raw_records):
    run_dir, _ = finished_run
    with pytest.raises(UserError, match="--resume"):
        train(tiny_train_config(raw_records[0], run_dir.parent))


@pytest.mark.slow
def test_initial_stage_continues_from_the_best_model(finished_run, raw_records, tmp_path):
    # a copy of the run: the other tests read the module's finished one
    run_dir = tmp_path / finished_run[0].name
    shutil.copytree(finished_run[0], run_dir)
    metrics = train(tiny_train_config(raw_records[0], run_dir.parent, initial_stage=1,
                                      evaluate_test=False))
    history = pd.read_csv(run_dir / "history.csv")
    assert list(history.stage) == [0, 1, 1]
    assert metrics["epochs"] == 3


@pytest.mark.slow
def test_a_non_finite_loss_stops_the_run_keeping_its_last_good_epoch(finished_run, raw_records,
                                                                   tmp_path):
    """Its second stage started again at a learning rate --lr refuses (1e30,
    through the config), the run stops at its first NaN loss in one line
    naming the epoch, the step and --lr: its state, history, checkpoints
    and model are those it had, the last checkpoint finite."""
    from tests.training.non_finite_run import stopped_by_a_non_finite_loss

    shutil.copytree(finished_run[0], tmp_path / finished_run[0].name)
    out = stopped_by_a_non_finite_loss(raw_records[0], tmp_path)
    assert out["raised"].startswith(
        "UserError: epoch 3, step 2: the training loss is nan"), out
    assert "its folder keeping the checkpoints of epoch 2 (no model is written)" in out["raised"]
    assert out["raised"].endswith("with a lower --lr (this run's 1e+30)")
    assert {"model.keras", "state.json", "checkpoints/epoch-00002.npz"} <= set(out["before"])
    assert out["after"] == out["before"]
    assert (out["epoch"], out["last_checkpoint"], out["finite"]) == (2, "epoch-00002", True)


@pytest.mark.slow
def test_resume_after_sigkill_continues_the_same_stage(raw_records, tmp_path):
    records, _ = raw_records
    command = [sys.executable, str(ROOT / "train.py"), "--data-dir", records,
               "--train-dir", str(tmp_path), "--block", "basic", "--alpha", "2",
               "--width", "0.0625", "--batch-size", "8", "--num-stages", "2",
               "--max-epochs-per-stage", "3", "--patience", "9", "--steps-per-epoch", "2",
               "--strategy", "default", "--no-test", "--no-progress"]
    state_path = tmp_path / "samplecnn-basic-multi" / "state.json"
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + HANG_S
    while time.monotonic() < deadline:
        if state_path.exists() and json.loads(state_path.read_text())["epoch"] >= 2:
            break
        assert process.poll() is None, process.stderr.read().decode()
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = json.loads(state_path.read_text())
    assert 2 <= before["epoch"] < 6
    rows_before = pd.read_csv(state_path.parent / "history.csv")
    done = subprocess.run(command + ["--resume"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"resuming {state_path.parent} after epoch {before['epoch']}" in done.stdout
    assert "could not be found" not in done.stderr  # restored quietly
    history = pd.read_csv(state_path.parent / "history.csv")
    assert list(history.epoch) == [1, 2, 3, 4, 5, 6]
    assert list(history.stage) == [0, 0, 0, 1, 1, 1]
    np.testing.assert_allclose(history.lr, [0.01] * 3 + [0.002] * 3)
    pd.testing.assert_frame_equal(history.iloc[:len(rows_before)], rows_before)
    # Optimizer state came back: the stage-1 optimizer made 3 epochs x 2 steps.
    state = json.loads(state_path.read_text())
    model = keras.models.load_model(state_path.parent / "model.keras")
    optimizer = keras.optimizers.SGD(0.002, momentum=0.9, nesterov=True)
    optimizer.build(model.trainable_variables)
    checkpoints.read(str(state_path.parent / "checkpoints" / state["last_checkpoint"]),
                     model, optimizer)
    assert int(optimizer.iterations) == 6


def test_flags_become_the_config(tmp_path):
    args = train_cli.parse_args(["--data-dir", "d", "--model", "transformer", "--size",
                                 "student", "--attention-layers", "2",
                                 "--switch-epochs", "5,6,7", "--total-epochs", "9",
                                 "--mixed-precision", "bfloat16", "--jit-compile",
                                 "--monitor", "val_roc_auc"])
    config = train_cli.config_from_args(args)
    assert config.monitor == "val_roc_auc"
    assert config.model_args == {"size": "student", "attention_layers": 2}
    assert config.schedule == "adam_then_sgd" and tuple(config.switch_epochs) == (5, 6, 7)
    assert config.mixed_precision == "bfloat16" and config.jit_compile
    sample = train_cli.config_from_args(train_cli.parse_args(["--block", "rese",
                                                              "--no-multi"]))
    assert sample.schedule == "staged" and sample.batch_size == 23 and sample.lr == 0.01
    assert sample.monitor is None  # the run's own: val_loss, val_roc_auc for a distillation
    assert sample.model_args == {"block": "rese", "multi": False, "alpha": 16,
                                 "width": 1.0, "weight_decay": 0.0}


def xla_compiled(graph) -> bool:
    """Whether `graph` calls a function that XLA must compile (a
    tf.function(jit_compile=True) called from it)."""
    nodes = graph.as_graph_def().node
    return any(n.attr["_XlaMustCompile"].b for n in nodes if "_XlaMustCompile" in n.attr)


@pytest.mark.slow
@pytest.mark.parametrize("precision, policy, compute, jit", [
    ("bfloat16", "mixed_bfloat16", "bfloat16", False),
    ("float16", "mixed_float16", "float16", False),
    ("off", "float32", "float32", True)])
def test_mixed_precision_and_xla(raw_records, tmp_path, monkeypatch, capsys, precision,
                                 policy, compute, jit):
    """One training step of train() under each setting: the model computes in
    the dtype asked for, its variables and scores stay float32, float16 scales
    the loss, the step is XLA-compiled when asked and only then, the loss is
    finite and the float32 policy is back afterwards. On a CPU without
    bfloat16 units, bfloat16 is warned of in one line and trained as asked."""
    from tagger import cpu_features
    from tagger.training import backend_tf as run_module

    monkeypatch.setattr(cpu_features, "cpu_flags", lambda: {"avx2", "fma", "avx512f"})
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])

    seen, make = {}, run_module.make_train_function

    def recording(model, optimizer, *args):
        train_fn = make(model, optimizer, *args)
        seen.update(policy=keras.mixed_precision.dtype_policy().name, model=model,
                    optimizer=optimizer)

        def recorded(iterator, steps):
            seen["graph"] = train_fn.get_concrete_function(iterator, steps).graph
            return train_fn(iterator, steps)
        return recorded

    monkeypatch.setattr(run_module, "make_train_function", recording)
    metrics = train(tiny_train_config(raw_records[0], tmp_path, mixed_precision=precision,
                                      jit_compile=jit, num_stages=1, steps_per_epoch=1,
                                      validation_steps=1, evaluate_test=False))
    assert metrics["epochs"] == 1 and np.isfinite(metrics["best"]["val_loss"])
    model = seen["model"]
    assert seen["policy"] == policy and model.dtype_policy.name == policy
    assert model.get_layer("stem_conv").output.dtype == compute  # the activations
    assert model.get_layer("head_relu").output.dtype == compute
    assert {w.dtype for w in model.weights} == {"float32"} and model.output.dtype == "float32"
    assert isinstance(seen["optimizer"], keras.optimizers.LossScaleOptimizer) == (
        precision == "float16")
    assert xla_compiled(seen["graph"]) is jit
    assert keras.mixed_precision.dtype_policy().name == "float32"  # restored
    said = [line for line in capsys.readouterr().out.splitlines() if "bfloat16" in line]
    assert said == ([] if precision != "bfloat16" else [
        "warning: mixed bfloat16 will be slower than float32 here: this CPU has neither "
        "AMX-BF16 matrix units nor AVX-512 BF16 instructions; the run goes on in bfloat16 "
        "as asked (--mixed-precision off trains faster)"])


@pytest.mark.slow
def test_bad_inputs_get_one_line(finished_run, synthetic_mtt, tmp_path, capsys):
    from tagger.commands import eval as eval_cli

    run_dir, _ = finished_run
    code, _, err = call_main(train_cli.main, capsys, "--data-dir", str(tmp_path),
                             "--train-dir", str(tmp_path / "runs"))
    assert code == 2 and "dataset_info.json" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = call_main(train_cli.main, capsys, "--block", "inception")
    assert code == 2 and "invalid choice" in err and len(err.strip().splitlines()) == 1
    # A model and a dataset that do not fit: 12 tags instead of 50.
    from tests.checks import build_mtt

    twelve = tmp_path / "twelve"
    build_mtt(synthetic_mtt[0], twelve, top_k=12)
    code, _, err = call_main(eval_cli.main, capsys, str(run_dir / "model.keras"),
                             "--data-dir", str(twelve))
    assert code == 2 and "predicts 50 tags but the dataset has 12" in err
    assert "Traceback" not in err
    before = {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}
    with pytest.raises(UserError, match="does not fit the model"):
        train(tiny_train_config(str(twelve), run_dir.parent, initial_stage=1))
    assert {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()} == before


@pytest.mark.slow
def test_best_epoch_follows_the_monitor(finished_run):
    run_dir, metrics = finished_run
    history = pd.read_csv(run_dir / "history.csv")
    history = history[history.epoch <= metrics["epochs"]]  # other tests continue the run
    assert metrics["monitor"] == "val_loss"
    assert metrics["best_epoch"] == int(history.epoch[history.val_loss.idxmin()])
    assert metrics["best"]["val_loss"] == pytest.approx(history.val_loss.min())


def test_monitored_score():
    from tagger.training.run import monitored_score

    row = {"val_loss": 0.3, "val_roc_auc": 0.8}
    assert monitored_score(row, "val_loss") == 0.3
    assert monitored_score(row, "val_roc_auc") == -0.8
    undefined = {"val_loss": 0.3, "val_roc_auc": float("nan")}  # no tag to rank on val
    assert monitored_score(undefined, "val_roc_auc") == 0.3  # by its loss, then
    worst_defined = monitored_score({"val_loss": 9.0, "val_roc_auc": 0.0}, "val_roc_auc")
    assert worst_defined < monitored_score(undefined, "val_roc_auc")
    assert monitored_score({"val_loss": float("nan"), "val_roc_auc": float("nan")},
                           "val_roc_auc") == float("inf")


def test_the_undefined_auc_line_says_why_and_what_would_define_it():
    from tagger.training.monitor import undefined_auc_line

    assert undefined_auc_line(1, 2, False) == (
        "validation: ROC-AUC and PR-AUC are undefined (nan) on 1 clip(s): no tag is among some "
        "clips' tags and not among others' (a larger --validation-steps reads more)")
    assert undefined_auc_line(3, 3, True) == (
        "validation: ROC-AUC and PR-AUC are undefined (nan) on 3 clip(s): no tag is among some "
        "clips' tags (the teachers' five best of each) and not among others' (the val split "
        "has no more)")


def test_a_distillation_follows_the_val_auc_unless_told_otherwise():
    from tagger.training.monitor import monitor_line, monitored

    distils = DistillationConfig(teachers=("MTT_musicnn",))
    assert monitored(TrainConfig()) == "val_loss"
    assert monitored(TrainConfig(distillation=distils)) == "val_roc_auc"
    assert monitored(TrainConfig(distillation=distils, monitor="val_loss")) == "val_loss"
    assert monitor_line(TrainConfig(distillation=distils)) == (
        "the best epoch and early stopping follow the val ROC-AUC against the teachers' "
        "five best tags of each clip, the val loss in an epoch where it is undefined (a "
        "distillation's default; --monitor val_loss follows the loss on the soft targets)")
    assert monitor_line(TrainConfig(monitor="val_roc_auc")) == (
        "the best epoch and early stopping follow the val ROC-AUC, the val loss in an epoch "
        "where it is undefined (--monitor val_roc_auc)")
    with pytest.raises(ValueError, match="monitor must be one of val_loss, val_roc_auc"):
        TrainConfig(monitor="val_pr_auc")


@pytest.mark.slow
def test_validation_reads_its_labels_once_and_each_epochs_reader_ends_with_it(
        raw_records, tmp_path, monkeypatch):
    """Over three epochs the val split's labels are read once (each read
    reads the split's records whole), and each epoch's reader (here the
    TensorFlow-free one, which JAX's runs read through) is closed when the
    epoch's steps end: its thread, and with it its worker processes, has
    stopped before validation and before the next epoch's reader starts."""
    import collections

    from tagger.records import batches as record_batches
    from tagger.records import plain_reader
    from tagger.training.backend_tf import TensorFlowBackend
    from tagger.training.run import Run, prepare

    read = collections.Counter()
    clip_labels = record_batches.clip_labels
    monkeypatch.setattr(record_batches, "clip_labels", lambda data_dir, split, info=None: (
        read.update([split]) or clip_labels(data_dir, split, info)))
    readers, reading = [], []  # each epoch's reader's thread; at each start, any alive

    class PlainInput(TensorFlowBackend):
        compiles_every_step = True  # no XLA timing: one reader an epoch

        def train_data(self, data_dir, info, global_batch, window, shuffle_segments, seed,
                       num_read_threads, targets=None):
            reading.append([thread.is_alive() for thread in readers])
            batches = plain_reader.train_batches(data_dir, global_batch, info=info, seed=seed,
                                                 workers=0, prefetch=2)
            readers.append(batches._thread)
            return batches

        def train_function(self, model, optimizer, global_batch, jit_compile=False,
                           augmentation=None, loss=None):
            def train(iterator, steps):
                for _ in range(steps):
                    assert next(iterator)[0].shape[0] == global_batch
                return 0.5

            return train

    config = tiny_train_config(raw_records[0], tmp_path, num_stages=1, max_epochs_per_stage=3,
                               patience=9, steps_per_epoch=2, evaluate_test=False)
    config, info, _, precision = prepare(config)
    validated = []
    validate = Run._validate
    monkeypatch.setattr(Run, "_validate", lambda self: validated.append(
        readers[-1].is_alive()) or validate(self))
    metrics = Run(config, info, PlainInput("default"), precision).execute()
    assert metrics["epochs"] == 3 and read["val"] == 1
    assert reading == [[], [False], [False, False]]
    assert validated == [False, False, False]
