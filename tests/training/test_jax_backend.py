"""train.py and eval.py under Keras's JAX backend (requirements-jax.txt), each
in a process of its own where `import tensorflow` fails, as on the GPU
machines JAX drives (the TensorFlow-free reader serves the records): a run
that is killed resumes to the uninterrupted run's history, over two
devices trains as over one, evaluates as eval.py under TensorFlow does and
saves a tagger that tags under TensorFlow with the same scores; and a run
TensorFlow started continues under JAX with TensorFlow installed (tf.data
serves the records). The processes share the session's cache of compiled
programs ($TAGGER_HOME/jax)."""

import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.checks import HANG_S

pytest.importorskip("jax", reason="the JAX backend's tests need requirements-jax.txt")

pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = "samplecnn-basic-multi"


def train_flags(records, train_dir):
    """The runs' flags: basic blocks (tests/presets.py, TINY_RUN_SAMPLECNN)."""
    return ["--data-dir", records, "--train-dir", str(train_dir), "--block", "basic",
            "--alpha", "2", "--width", "0.0625", "--batch-size", "8", "--num-stages", "2",
            "--max-epochs-per-stage", "2", "--patience", "9", "--steps-per-epoch", "2",
            "--no-progress"]


def command(script, *flags, backend="jax"):
    backend_flags = ["--backend", backend] if backend else []
    return [sys.executable, os.path.join(ROOT, script), *flags, *backend_flags]


def environment(without_tensorflow=True, **extra):
    """The commands' environment: this one, where with `without_tensorflow`
    an `import tensorflow` fails, as on a machine without it."""
    if without_tensorflow:
        from tests.checks import without_tensorflow_env

        env = without_tensorflow_env()
    else:
        env = dict(os.environ)
    env.pop("KERAS_BACKEND", None)
    env.update(extra)
    return env


def finished(argv, env=None) -> subprocess.CompletedProcess:
    """`argv` run to its end, successfully."""
    done = subprocess.run(argv, capture_output=True, text=True, env=env or environment(),
                          timeout=HANG_S, cwd=ROOT)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


def history(run_dir):
    return pd.read_csv(os.path.join(run_dir, "history.csv")).drop(columns="seconds")


@pytest.fixture(scope="module")
def jax_run(raw_records, tmp_path_factory):
    """The uninterrupted run under JAX without TensorFlow: (run folder, its
    stdout), after checking that TensorFlow cannot be imported there; made
    once for the workers that share this file's tests."""
    from tests.checks import built_once

    def make(train_dir):
        probe = subprocess.run([sys.executable, "-c", "import tensorflow"],
                               env=environment(), capture_output=True, text=True)
        assert probe.returncode != 0 and "tensorflow" in probe.stderr
        done = finished(command("train.py", *train_flags(raw_records[0], train_dir)))
        return os.path.join(train_dir, RUN), done.stdout

    return built_once(tmp_path_factory, "jax_run", make)


# train.py, killed (SIGKILL) by itself once epoch TAGGER_KILL_AFTER_EPOCH is
# committed: the state a kill at that moment leaves, whatever the machine's pace
KILLED_AFTER_AN_EPOCH = r"""
import os, runpy, signal, sys
from tagger.training.run import Run

end_epoch = Run._end_epoch


def end_epoch_then_die(self, row, optimizer):
    end_epoch(self, row, optimizer)
    if self.state.epoch >= int(os.environ["TAGGER_KILL_AFTER_EPOCH"]):
        os.kill(os.getpid(), signal.SIGKILL)


Run._end_epoch = end_epoch_then_die
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def killed_after(argv, state_path, epochs: int, backend: str = "jax",
                 without_tensorflow: bool = True) -> int:
    """Runs `argv` (a command's) killed by SIGKILL once its state.json has
    committed `epochs` epochs; the epochs it had committed."""
    env = environment(without_tensorflow, KERAS_BACKEND=backend,
                      TAGGER_KILL_AFTER_EPOCH=str(epochs))
    done = subprocess.run([argv[0], "-c", KILLED_AFTER_AN_EPOCH, *argv[1:]], env=env,
                          capture_output=True, text=True, timeout=HANG_S, cwd=ROOT)
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    return json.loads(state_path.read_text())["epoch"]


def test_a_run_killed_under_jax_resumes_to_the_uninterrupted_history(jax_run, raw_records,
                                                                      tmp_path):
    from tagger.host_memory import HUGE_PAGES, huge_page_environment, huge_pages_in_effect
    from tagger.xla_cpu import SCHEDULER_SETTING, SETTING, in_effect, settings_here

    whole_dir, stdout = jax_run
    # started again with malloc asking for huge pages, where the machine gives them,
    # and with XLA's settings where they apply
    asked = (huge_page_environment(environment()) is not None
             or huge_pages_in_effect(environment()))
    notes = f", its buffers on huge pages (GLIBC_TUNABLES={HUGE_PAGES})" if asked else ""
    xla_flags = {"XLA_FLAGS": (settings_here(environment()) or environment()).get(
        "XLA_FLAGS", "")}
    if in_effect(SETTING, xla_flags):
        notes += f", its matrix products XLA's own (XLA_FLAGS={SETTING})"
    if in_effect(SCHEDULER_SETTING, xla_flags):
        notes += f", its operations in an order for memory (XLA_FLAGS={SCHEDULER_SETTING})"
    assert f"training on JAX's 1 cpu device{notes}\n" in stdout
    assert "read by the TensorFlow-free reader" in stdout
    argv = command("train.py", *train_flags(raw_records[0], tmp_path))
    killed_at = killed_after(argv, tmp_path / RUN / "state.json", 2)
    assert killed_at == 2
    done = finished(argv + ["--resume"])
    assert f"resuming {tmp_path / RUN} after epoch {killed_at}" in done.stdout
    resumed, whole = history(tmp_path / RUN), history(whole_dir)
    assert list(resumed.epoch) == [1, 2, 3, 4] and list(resumed.stage) == [0, 0, 1, 1]
    pd.testing.assert_frame_equal(resumed, whole, rtol=1e-6, atol=1e-7)


def test_a_run_continues_on_its_stream_under_the_other_reader(jax_run, raw_records, tmp_path):
    """Started under JAX where TensorFlow is installed (tf.data serves the
    records) and killed after its second epoch, the run goes on where
    TensorFlow is not (the TensorFlow-free reader): one order for both
    readers, so its history is that of the run read by the TensorFlow-free
    reader throughout."""
    argv = command("train.py", *train_flags(raw_records[0], tmp_path))
    killed_at = killed_after(argv, tmp_path / RUN / "state.json", 2, without_tensorflow=False)
    assert killed_at == 2
    done = finished(argv + ["--resume"])
    assert f"resuming {tmp_path / RUN} after epoch 2" in done.stdout
    assert "read by the TensorFlow-free reader" in done.stdout
    pd.testing.assert_frame_equal(history(tmp_path / RUN), history(jax_run[0]), rtol=1e-6,
                                  atol=1e-7)


def test_two_devices_split_the_batch_and_train_as_one(jax_run, raw_records, tmp_path):
    """Over two devices (JAX's CPU split in two) the global batch is split
    between them: an odd batch is refused in one line, and the run's
    figures are those of one device (batch statistics are the global
    batch's under JAX): the first epoch's training loss to float32
    rounding, every figure to 1e-2 (the two programs' float32 reduction
    orders part the weights from the first epoch's updates on: 3e-4 of
    the loss after four epochs on a CPU with AVX-512, 6e-3 on one with
    AVX2 alone). Each device's own batch statistics or dropout masks, or
    gradients not averaged, would move the first epoch's loss."""
    env = environment()
    env["XLA_FLAGS"] = " ".join(filter(None, [env.get("XLA_FLAGS"),
                                              "--xla_force_host_platform_device_count=2"]))
    flags = train_flags(raw_records[0], tmp_path)
    odd = subprocess.run(command("train.py", *flags, "--batch-size", "7"), env=env,
                         capture_output=True, text=True, timeout=HANG_S, cwd=ROOT)
    assert odd.returncode == 2 and odd.stderr.strip().splitlines() == [
        "train.py: error: --batch-size 7 is not divisible by the 2 replicas (JAX's 2 cpu "
        "devices); use a multiple of 2"]
    done = finished(command("train.py", *flags), env=env)
    assert "training on JAX's 2 cpu devices" in done.stdout
    two, one = history(tmp_path / RUN), history(jax_run[0])
    assert two.train_loss[0] == pytest.approx(one.train_loss[0], rel=1e-5)
    pd.testing.assert_frame_equal(two, one, rtol=1e-2, atol=1e-5)


def test_eval_under_jax_gives_tensorflows_figures(jax_run, raw_records, tmp_path):
    whole_dir, _ = jax_run
    model = os.path.join(whole_dir, "model.keras")
    figures = {}
    for backend in ("jax", "tensorflow"):
        out = tmp_path / f"{backend}.json"
        finished(command("eval.py", model, "--data-dir", raw_records[0], "--bootstrap", "0",
                         "--out-json", str(out), "--no-progress", backend=backend),
                 env=environment(without_tensorflow=backend == "jax"))
        figures[backend] = json.loads(out.read_text())
    for key in ("roc_auc", "pr_auc", "loss"):
        assert figures["jax"][key] == pytest.approx(figures["tensorflow"][key], abs=1e-4)
    assert figures["jax"]["clips"] == figures["tensorflow"]["clips"] > 0
    metrics = json.loads(open(os.path.join(whole_dir, "metrics.json")).read())
    assert metrics["test"]["roc_auc"] == pytest.approx(figures["jax"]["roc_auc"], abs=1e-6)


def test_a_tagger_trained_under_jax_tags_under_tensorflow_with_its_scores(jax_run,
                                                                          tmp_path, capsys):
    """tag.py under JAX without TensorFlow, and under TensorFlow (this
    process's backend), gives the JAX-trained tagger's scores alike."""
    from tagger.commands import tag
    from tests.checks import call_main, write_audio

    whole_dir, _ = jax_run
    song = tmp_path / "song.wav"
    write_audio(song, 22050 * 8, seed=3)
    argv = [os.path.join(whole_dir, "model.keras"), str(song), "--top-k", "50", "--format",
            "json", "--no-progress"]
    outputs = {"jax": finished([sys.executable, os.path.join(ROOT, "tag.py"), *argv],
                               env=environment(KERAS_BACKEND="jax")).stdout}
    code, outputs["tensorflow"], err = call_main(tag.main, capsys, *argv)
    assert code == 0, err
    scores = {}
    for backend, out in outputs.items():
        (report,) = json.loads(out)
        scores[backend] = dict(zip(report["tags"], report["scores"]))
    assert len(scores["jax"]) == len(scores["tensorflow"]) > 0
    for tag_name, score in scores["tensorflow"].items():
        assert scores["jax"][tag_name] == pytest.approx(score, abs=1e-5)


def test_a_run_tensorflow_started_continues_under_jax(raw_records, tmp_path):
    """Killed under TensorFlow after its first epoch, the run goes on under
    JAX from that epoch's checkpoint: the same stage, learning rate and
    optimizer state (its step count goes on)."""
    flags = train_flags(raw_records[0], tmp_path) + ["--no-test"]
    run_dir = tmp_path / RUN
    state_path = run_dir / "state.json"
    env = environment(without_tensorflow=False)
    killed_at = killed_after(command("train.py", *flags, backend="tensorflow"), state_path, 1,
                             backend="tensorflow", without_tensorflow=False)
    before = history(run_dir)
    done = finished(command("train.py", *flags, "--resume"), env)
    assert f"resuming {run_dir} after epoch {killed_at}" in done.stdout
    assert "read by tf.data" in done.stdout
    after = history(run_dir)
    pd.testing.assert_frame_equal(after.iloc[:len(before)], before)
    assert list(after.epoch) == [1, 2, 3, 4] and np.isfinite(after.val_loss).all()
    state = json.loads(state_path.read_text())
    with np.load(run_dir / "checkpoints" / f"{state['last_checkpoint']}.npz") as saved:
        assert int(saved["optimizer/00000"]) == 2 * 2  # stage 1's two epochs of two steps


def test_a_head_on_a_tensorflow_saved_body_trains_under_jax_and_tags_alike(own, tmp_path):
    """train.py --from twice, under JAX without TensorFlow, on bodies saved
    under TensorFlow: each body's embeddings are computed and stored, a
    head on each trains on them, and the saved tagger (their scores
    averaged) scores the test split under JAX as eval.py under TensorFlow
    does."""
    from tests.training.own_tags_data import write_body

    _, records, _, body = own
    records = shutil.copytree(records, tmp_path / "records")
    second = write_body(tmp_path / "body_2.keras", seed=2)
    done = finished(command("train.py", "--data-dir", str(records), "--train-dir",
                            str(tmp_path / "runs"), "--from", body, "--from", second,
                            "--max-epochs-per-stage", "3", "--no-progress"))
    assert "embeddings of train" in done.stdout and "training on JAX's" in done.stdout
    assert "a head on each body's embeddings, their scores averaged" in done.stdout
    run_dir = tmp_path / "runs" / "from-body+body_2"
    assert list(history(run_dir).epoch) == [1, 2, 3]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    out = tmp_path / "eval.json"
    finished(command("eval.py", str(run_dir / "model.keras"), "--data-dir", str(records),
                     "--bootstrap", "0", "--out-json", str(out), "--no-progress",
                     backend="tensorflow"), env=environment(without_tensorflow=False))
    assert json.loads(out.read_text())["roc_auc"] == pytest.approx(
        metrics["test"]["roc_auc"], abs=1e-4)


def test_noisy_student_with_augmentation_trains_and_resumes_under_jax(jax_run,
                                                                      student_records,
                                                                      tmp_path):
    """The paper's semi-supervised recipe without TensorFlow: a student
    trained with a frozen teacher (the JAX run's tagger) and the
    augmentation chain, killed after its first epoch, resumes to the
    uninterrupted run's history."""
    teacher = os.path.join(jax_run[0], "model.keras")
    flags = [*train_flags(student_records[0], tmp_path / "whole"), "--run-name", "ns",
             "--teacher", teacher, "--augment", "--no-test", "--num-stages", "1"]
    done = finished(command("train.py", *flags))
    assert "training on JAX's 1 cpu device" in done.stdout
    whole = history(tmp_path / "whole" / "ns")
    assert list(whole.epoch) == [1, 2] and np.isfinite(whole.train_loss).all()
    argv = command("train.py", *[str(tmp_path / "cut") if f == str(tmp_path / "whole")
                                 else f for f in flags])
    assert killed_after(argv, tmp_path / "cut" / "ns" / "state.json", 1) == 1
    finished(argv + ["--resume"])
    pd.testing.assert_frame_equal(history(tmp_path / "cut" / "ns"), whole, rtol=1e-6,
                                  atol=1e-7)
    saved = json.loads((tmp_path / "whole" / "ns" / "config.json").read_text())
    assert saved["noisy_student"]["teacher"] == teacher and saved["augment"] is True


def test_distillation_and_eval_against_under_jax(jax_run, raw_records, tmp_path):
    """train.py --distil without TensorFlow keeps the epoch of the best val
    agreement with its teacher, and eval.py --against gives under JAX the
    figures it gives under TensorFlow."""
    teacher = os.path.join(jax_run[0], "model.keras")
    records = shutil.copytree(raw_records[0], tmp_path / "records")  # the targets go there
    info = json.loads((records / "dataset_info.json").read_text())
    for split in info["splits"].values():
        split["labelled"] = False  # a distillation's records: audio without tags
    (records / "dataset_info.json").write_text(json.dumps(info))
    done = finished(command("train.py", *train_flags(str(records), tmp_path), "--run-name",
                            "distilled", "--distil", teacher, "--no-test"))
    run_dir = tmp_path / "distilled"
    rows = history(run_dir)
    assert len(rows) == 4 and "val_roc_auc" in rows
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["best_epoch"] == int(rows.epoch[rows.val_roc_auc.idxmax()]), done.stdout
    figures = {}
    for backend in ("jax", "tensorflow"):
        out = tmp_path / f"{backend}.json"
        finished(command("eval.py", str(run_dir / "model.keras"), "--data-dir", str(records),
                         "--against", teacher, "--bootstrap", "0", "--out-json", str(out),
                         "--no-progress", backend=backend),
                 env=environment(without_tensorflow=backend == "jax"))
        figures[backend] = json.loads(out.read_text())
    assert figures["jax"]["clips"] == figures["tensorflow"]["clips"] > 0
    for key in ("roc_auc", "pr_auc"):
        assert figures["jax"][key] == pytest.approx(figures["tensorflow"][key], abs=1e-4)


def test_what_trains_under_tensorflow_only_is_refused_in_one_line(raw_records, tmp_path):
    """Under JAX: --xla off and a tf.distribute strategy, each one line
    naming what to do; nothing is written."""
    cases = [(command("train.py", *train_flags(raw_records[0], tmp_path), "--xla", "off"),
              "train.py: error: --xla off does not apply under jax"),
             (command("train.py", *train_flags(raw_records[0], tmp_path), "--strategy",
                      "mirrored"), "train.py: error: --strategy mirrored is tf.distribute's")]
    for argv, start in cases:
        done = subprocess.run(argv, env=environment(), capture_output=True, text=True,
                              timeout=HANG_S, cwd=ROOT)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith(start), lines
    assert not list(tmp_path.iterdir())


STEP_CACHE = r"""
import json, sys

if __name__ == "__main__":  # the reader's workers load this module too
    import keras
    import numpy as np

    from tagger.training import backend, backend_jax
    from tagger.training.run import train
    from tests.presets import tiny_train_config

    made = []  # the optimizers the compiled steps were made for
    make_step = backend_jax.jax_step
    backend_jax.jax_step = lambda model, optimizer, *rest: made.append(
        type(optimizer).__name__) or make_step(model, optimizer, *rest)
    records, train_dir = sys.argv[1:]
    # a run of two stages, each a fresh SGD (lr 0.01 then 0.002)
    train(tiny_train_config(records, train_dir, evaluate_test=False, steps_per_epoch=2))
    run_steps = list(made)
    # two stages' optimizers of the same kind, other learning rates, on one
    # model from the same weights and batch: each is the one applied
    devices = backend.for_run("default")
    keras.utils.set_random_seed(0)
    with devices.scope():
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3, activation="sigmoid")])
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 4, 6)).astype(np.float32)
    y = (rng.random((1, 4, 3)) < 0.5).astype(np.float32)
    start = [v.numpy().copy() for v in model.trainable_variables]
    changes, iterations = [], []
    for lr in (0.1, 0.02):
        for variable, value in zip(model.trainable_variables, start):
            variable.assign(value)
        optimizer = keras.optimizers.SGD(lr)
        step = devices.train_function(model, optimizer, 4)
        step(iter(zip(x, y)), 1)
        step.end_epoch()
        changes.append(np.concatenate([(v.numpy() - s).ravel()
                                       for v, s in zip(model.trainable_variables, start)]))
        iterations.append(int(optimizer.iterations))
    # the run's second stage again at a learning rate --lr refuses: a NaN loss
    from tests.training.non_finite_run import stopped_by_a_non_finite_loss

    stopped = stopped_by_a_non_finite_loss(records, train_dir)
    print(json.dumps({"run_steps": run_steps, "made": made[:2], "iterations": iterations,
                      "ratio": (changes[1] / changes[0]).tolist(), "stopped": stopped}))
"""


def test_a_stage_steps_with_the_compiled_step_and_its_own_optimizer(raw_records, tmp_path):
    """The step is compiled once for a run's stages (a fresh SGD each, which
    Keras names sgd, sgd_1, ...), and the optimizer a stage steps with is
    its own: from the same weights and batch, SGD at lr 0.02 changes every
    weight by a fifth of what SGD at lr 0.1 does, each counting its step.
    And the run's second stage started again at lr 1e30 stops at its first
    NaN loss in one line, its folder as it was, as under TensorFlow
    (tests/training/test_train.py)."""
    from tests.checks import run_json_script

    out = run_json_script(tmp_path / "step_cache.py", STEP_CACHE, raw_records[0],
                          tmp_path / "runs", env=environment(KERAS_BACKEND="jax"))
    assert out["run_steps"] == ["SGD"]
    assert out["made"] == ["SGD", "SGD"]  # the run's model, then the other model
    assert out["iterations"] == [1, 1]
    assert len(out["ratio"]) == 6 * 3 + 3
    np.testing.assert_allclose(out["ratio"], 0.2, rtol=1e-3)  # float32 rounding
    stopped = out["stopped"]
    assert stopped["raised"].startswith(
        "UserError: epoch 3, step 2: the training loss is nan"), stopped
    assert stopped["raised"].endswith("with a lower --lr (this run's 1e+30)")
    assert "model.keras" in stopped["before"] and stopped["after"] == stopped["before"]
    assert (stopped["epoch"], stopped["last_checkpoint"], stopped["finite"]) == (
        2, "epoch-00002", True)
