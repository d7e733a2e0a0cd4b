"""train.py with --teacher / --augment on synthetic records that hold an
unlabelled `student` split: runs, what each step receives, different teacher
and student windows, distillation into a compact transformer, rounds, flag
errors, resume after SIGKILL."""

import json
import pathlib
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
from tagger.config import NoisyStudentConfig, TrainConfig
from tagger.errors import UserError
from tagger.training.rounds import train_rounds
from tagger.training.run import resume_settings, train
from tests.checks import HANG_S, call_main
from tests.presets import TINY_RUN_SAMPLECNN as TINY

ROOT = pathlib.Path(__file__).parents[2]


def config(records, train_dir, **overrides):
    """A tiny run's settings; blocks of 64 segments, as `tests.presets.tiny_train_config`
    (the default's 2000, for each of a noisy student's two readers, are many passes over
    the synthetic dataset for two steps)."""
    settings = dict(data_dir=records, train_dir=str(train_dir), model="samplecnn",
                    model_args=dict(TINY), batch_size=4, num_stages=1,
                    max_epochs_per_stage=1, steps_per_epoch=2, validation_steps=1,
                    strategy="default", progress=False, evaluate_test=False,
                    shuffle_segments=64)
    settings.update(overrides)
    return TrainConfig(**settings)


@pytest.fixture(scope="module")
def teacher(student_records, tmp_path_factory):
    """A tiny Music Tagging Transformer (its own log-mel front end) whose window
    (2 segments) is longer than the samplecnn student's (1)."""
    runs = tmp_path_factory.mktemp("teacher")
    metrics = train(config(student_records[0], runs, model="transformer", window_segments=2,
                           model_args={"conv_ndim": 4, "attention_ndim": 8,
                                       "attention_layers": 1, "attention_heads": 2},
                           schedule="staged", run_name="teacher"))
    return str(pathlib.Path(metrics["run_dir"]) / "model.keras")


@pytest.mark.slow
def test_student_trains_with_a_longer_window_teacher(student_records, teacher, tmp_path):
    metrics = train(config(student_records[0], tmp_path, augment=True,
                           noisy_student=NoisyStudentConfig(teacher=teacher),
                           steps_per_execution=2))
    assert pathlib.Path(metrics["run_dir"]).name == "samplecnn-basic-multi-student"
    assert np.isfinite(metrics["best"]["train_loss"]) and metrics["epochs"] == 1
    saved = json.loads((pathlib.Path(metrics["run_dir"]) / "config.json").read_text())
    assert saved["noisy_student"]["teacher"] == teacher and saved["augment"] is True


def split_audio(records, info, split) -> list:
    """The int16 audio of every clip of `split`, as stored."""
    from tagger.records import reader

    clips = reader.clip_dataset(records, split, info, with_tags=False, as_stored=True)
    return [clip["segments"].numpy().ravel().tobytes() for clip in clips]


def is_cut_from(window, clips) -> bool:
    """Whether `window` (float32, as the step converted it from int16: within
    an ulp of stored / 32767, whichever way the graph divides) is a
    contiguous stretch of samples of one of `clips`."""
    from tagger.audio import INT16_SCALE

    data = np.round(np.asarray(window, np.float64) * INT16_SCALE).astype(np.int16).tobytes()
    for clip in clips:
        at = clip.find(data)
        while at != -1 and at % 2:
            at = clip.find(data, at + 1)
        if at != -1:
            return True
    return False


@pytest.mark.slow
def test_each_step_gets_half_labelled_half_unlabelled_windows(student_records, teacher,
                                                              tmp_path, monkeypatch):
    """The real run: the step's labelled half comes from the labelled train
    split and its unlabelled half from the student split, batch / 2 each (seen
    where the step hands them to the augmentation, before any noise)."""
    from tagger.training import semi_supervised

    records, info = student_records
    received = []  # (augmentation stream: 2 * step (+1 unlabelled), windows)

    class Recording:
        def __init__(self, *args, **kwargs):
            pass

        def __call__(self, x, step, replica=0):
            def record(x, step):
                received.append((int(step), x.copy()))
                return x

            seen = tf.numpy_function(record, [x, tf.cast(step, tf.int64)], tf.float32,
                                     stateful=True)
            return tf.ensure_shape(seen, x.shape)

    monkeypatch.setattr(semi_supervised, "Augmentation", Recording)
    metrics = train(config(records, tmp_path, batch_size=8, augment=True,
                           noisy_student=NoisyStudentConfig(teacher=teacher)))
    assert metrics["epochs"] == 1
    # 2 steps, each with its two halves (in either order within the step)
    assert sorted(stream for stream, _ in received) == [0, 1, 2, 3]
    segment = info.segment_length
    labelled_audio = split_audio(records, info, "train")
    unlabelled_audio = split_audio(records, info, "student")
    for stream, windows in received:
        assert windows.shape == (4, segment)  # half of the batch of 8, the student's window
        labelled = stream % 2 == 0
        for window in windows:
            assert is_cut_from(window, labelled_audio) == labelled
            assert is_cut_from(window, unlabelled_audio) != labelled


@pytest.mark.slow
def test_distillation_into_a_compact_transformer_keeps_the_teacher_frozen(
        student_records, tmp_path, monkeypatch):
    """--model transformer --size student from a (tiny) teacher-size transformer:
    the teacher's weights are the saved ones, byte for byte, after the steps."""
    from tagger.models.saved import load_tagger
    from tagger.training import semi_supervised

    records = student_records[0]
    tiny = ["--conv-ndim", "4", "--attention-layers", "1", "--attention-heads", "2",
            "--window-segments", "1", "--schedule", "staged", "--optimizer", "adam",
            "--lr", "0.001", "--num-stages", "1", "--max-epochs-per-stage", "1",
            "--batch-size", "4", "--steps-per-epoch", "2", "--validation-steps", "1",
            "--strategy", "default", "--no-test", "--no-progress",
            "--data-dir", records, "--train-dir", str(tmp_path), "--model", "transformer"]
    assert train_cli.main([*tiny, "--size", "teacher", "--run-name", "teacher",
                           "--steps-per-epoch", "1"]) == 0
    teacher_path = str(tmp_path / "teacher" / "model.keras")
    saved_file = pathlib.Path(teacher_path).read_bytes()
    loaded = []

    def spy(*args, **kwargs):
        loaded.append(load_teacher(*args, **kwargs))
        return loaded[-1]

    load_teacher = semi_supervised.load_teacher
    monkeypatch.setattr(semi_supervised, "load_teacher", spy)
    assert train_cli.main([*tiny, "--size", "student", "--run-name", "student",
                           "--teacher", teacher_path]) == 0
    teacher_model = loaded[0].model
    assert not teacher_model.trainable
    reference, _ = load_tagger(teacher_path)
    assert [w.tobytes() for w in teacher_model.get_weights()] == [
        w.tobytes() for w in reference.get_weights()]
    assert pathlib.Path(teacher_path).read_bytes() == saved_file
    student_model, _ = load_tagger(str(tmp_path / "student" / "model.keras"))
    assert student_model.count_params() < teacher_model.count_params()
    saved = json.loads((tmp_path / "student" / "config.json").read_text())
    assert saved["model_args"]["size"] == "student"
    assert saved["noisy_student"]["teacher"] == teacher_path
    history = pd.read_csv(tmp_path / "student" / "history.csv")
    assert list(history.epoch) == [1] and np.isfinite(history.train_loss[0])


@pytest.mark.slow
def test_two_rounds_make_the_student_the_next_teacher(student_records, teacher, tmp_path):
    base = config(student_records[0], tmp_path, run_name="ns",
                  noisy_student=NoisyStudentConfig(teacher=teacher, pseudo_label_weight=0.5))
    metrics = train_rounds(base, 2)
    second = json.loads((tmp_path / "ns-round2" / "config.json").read_text())
    assert second["noisy_student"]["teacher"] == str(tmp_path / "ns" / "model.keras")
    assert second["noisy_student"]["pseudo_label_weight"] == 0.5
    assert metrics["run_dir"] == str(tmp_path / "ns-round2")


@pytest.mark.slow
def test_supervised_augmentation_changes_what_the_model_sees(raw_records, tmp_path):
    losses = {}
    for augment in (False, True):
        metrics = train(config(raw_records[0], tmp_path, augment=augment,
                               run_name=f"augment-{augment}", batch_size=8))
        losses[augment] = metrics["best"]["train_loss"]
    assert np.isfinite(losses[True]) and abs(losses[True] - losses[False]) > 1e-4


@pytest.mark.slow
def test_bad_settings_are_refused_before_anything_is_written(student_records, teacher,
                                                             raw_records, tmp_path):
    records = student_records[0]
    cases = [
        (dict(batch_size=5), "split into a labelled and an unlabelled"),
        (dict(noisy_student=NoisyStudentConfig(teacher=str(tmp_path / "none.keras"))),
         "not found"),
        (dict(noisy_student=NoisyStudentConfig(teacher=teacher, unlabelled_split="train")),
         "is labelled"),
        (dict(noisy_student=NoisyStudentConfig(teacher=teacher, unlabelled_split="extra")),
         "unlabelled splits there: student"),
        (dict(data_dir=raw_records[0]),
         "unlabelled splits there: none"),
    ]
    for overrides, message in cases:
        overrides.setdefault("noisy_student", NoisyStudentConfig(teacher=teacher))
        with pytest.raises(UserError, match=message):
            train(config(records, tmp_path / "runs", **overrides))
    assert not (tmp_path / "runs").exists()


def run_cli(capsys, *args):
    return call_main(train_cli.main, capsys, *args)


@pytest.mark.parametrize("flags", [["--pseudo-label-weight", "2"], ["--rounds", "2"],
                                   ["--unlabelled-split", "student"],
                                   ["--unlabelled-data-dir", "x"]])
def test_noisy_student_flags_need_a_teacher(flags):
    with pytest.raises(UserError, match=f"{flags[0]}.* with --teacher"):
        train_cli.config_from_args(train_cli.parse_args(flags))


def test_flags_become_the_config():
    args = train_cli.parse_args(["--teacher", "t.keras", "--pseudo-label-weight", "0.5",
                                 "--unlabelled-data-dir", "u", "--augment"])
    c = train_cli.config_from_args(args)
    assert c.augment and c.noisy_student == NoisyStudentConfig(
        teacher="t.keras", unlabelled_split="student", unlabelled_data_dir="u",
        pseudo_label_weight=0.5)
    assert train_cli.config_from_args(train_cli.parse_args([])).noisy_student.teacher is None


def test_cli_errors_are_one_line(student_records, capsys):
    code, _, err = run_cli(capsys, "--data-dir", student_records[0], "--rounds", "2")
    assert code == 2 and "--rounds applies with --teacher" in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = run_cli(capsys, "--teacher", "m.keras", "--pseudo-label-weight", "-1")
    assert code == 2 and "expected a number in [0, 1000]" in err and "Traceback" not in err


@pytest.mark.slow
def test_student_resumes_after_sigkill(student_records, teacher, tmp_path):
    command = [sys.executable, str(ROOT / "train.py"), "--data-dir", student_records[0],
               "--train-dir", str(tmp_path), "--block", "basic", "--alpha", "2",
               "--width", "0.0625", "--batch-size", "4", "--num-stages", "1",
               "--max-epochs-per-stage", "3", "--patience", "9", "--steps-per-epoch", "2",
               "--validation-steps", "1", "--strategy", "default", "--no-test",
               "--no-progress", "--run-name", "ns", "--teacher", teacher, "--augment"]
    state_path = tmp_path / "ns" / "state.json"
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + HANG_S
    while time.monotonic() < deadline:
        if state_path.exists() and json.loads(state_path.read_text())["epoch"] == 2:
            break
        assert process.poll() is None, process.stderr.read().decode()
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = json.loads(state_path.read_text())
    assert before["epoch"] == 2
    rows_before = pd.read_csv(state_path.parent / "history.csv")
    # a resume takes the teacher and its settings from the run; other values are refused
    args = train_cli.parse_args(command[2:] + ["--resume", "--pseudo-label-weight", "0.5"])
    with pytest.raises(UserError, match=r"--pseudo-label-weight 0.5 \(the run has 1.0\)"):
        resume_settings(train_cli.config_from_args(args), train_cli.given_fields(args))
    plain = command[:command.index("--teacher")]
    done = subprocess.run(plain + ["--resume"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"resuming {state_path.parent} after epoch {before['epoch']}" in done.stdout
    history = pd.read_csv(state_path.parent / "history.csv")
    assert list(history.epoch) == [1, 2, 3]
    pd.testing.assert_frame_equal(history.iloc[:len(rows_before)], rows_before)
    saved = json.loads((state_path.parent / "config.json").read_text())
    assert saved["noisy_student"]["teacher"] == teacher and saved["augment"] is True


def test_augmentation_needs_raw_records(logmel_records, tmp_path):
    with pytest.raises(UserError, match="--augment reads the records. audio but .* holds logmel"):
        train(config(logmel_records[0], tmp_path / "runs", model="transformer", augment=True,
                     model_args={"conv_ndim": 4, "attention_ndim": 8}, schedule="staged"))
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_mixed_precision_student(student_records, teacher, tmp_path, monkeypatch):
    """One noisy-student step under mixed_bfloat16: the student computes in
    bfloat16 with float32 variables and scores, and the step's loss (labelled
    and pseudo-labelled terms) is finite; float32 is back afterwards. (The
    XLA-compiled step is checked on small models in test_semi_supervised.py.)"""
    from tagger.training.semi_supervised import NoisyStudent

    seen, make = {}, NoisyStudent.train_function

    def recording(self, model, optimizer, stage, jit_compile=False):
        train_fn = make(self, model, optimizer, stage, jit_compile)
        seen.update(policy=keras.mixed_precision.dtype_policy().name, model=model)

        def recorded(iterators, steps):
            loss = train_fn(iterators, steps)
            seen.setdefault("losses", []).append(float(loss))
            return loss
        return recorded

    monkeypatch.setattr(NoisyStudent, "train_function", recording)
    metrics = train(config(student_records[0], tmp_path, mixed_precision="bfloat16",
                           steps_per_epoch=1, noisy_student=NoisyStudentConfig(teacher=teacher)))
    assert np.isfinite(metrics["best"]["train_loss"]) and metrics["epochs"] == 1
    model = seen["model"]
    assert seen["policy"] == model.dtype_policy.name == "mixed_bfloat16"
    assert model.get_layer("stem_conv").output.dtype == "bfloat16"  # the activations
    assert {w.dtype for w in model.weights} == {"float32"} and model.output.dtype == "float32"
    assert len(seen["losses"]) == 1 and np.isfinite(seen["losses"][0])
    assert metrics["best"]["train_loss"] == pytest.approx(seen["losses"][0])
    assert keras.mixed_precision.dtype_policy().name == "float32"  # restored


@pytest.mark.slow
def test_multiworker_student_with_two_local_workers(student_records, teacher, tmp_path):
    from tests.checks import two_workers

    outputs = two_workers(student_records[0], tmp_path, "--block", "basic", "--alpha", "2",
                          "--width", "0.0625", "--num-stages", "1", "--steps-per-epoch", "2",
                          "--validation-steps", "1", "--no-test", "--teacher", teacher)
    run_dir = tmp_path / "samplecnn-basic-multi-student"
    assert list(pd.read_csv(run_dir / "history.csv").epoch) == [1]
    assert (run_dir / "model.keras").exists()
    assert "epoch 1:" in outputs[0][0] and "epoch" not in outputs[1][0]
