"""An epoch's steps (`training.epoch_steps`, `Run._train_epoch`): Ctrl-C at
any point of a JAX epoch, whose thread reads the input ahead of the steps,
is a KeyboardInterrupt (one line from the CLI), the thread stopped before
the input is closed; and a non-finite loss, a step's or the validation's,
stops the run in one line naming where and what to change (the run folder
left as it was: tests/training/test_train.py, test_jax_backend.py)."""

import contextlib
import threading
import time
import types

import numpy as np
import pytest

from tagger import cli
from tagger.training import backend_jax
from tagger.training.run import Run, RunState

STEPS = 5
AHEAD = "batches to the devices"  # the name of JAX's input thread


class HostDevices:
    """A JAX backend's device side, kept in this process's memory."""

    input_seconds = step_seconds = 0.0

    def to_devices(self, batch, split=True):
        return batch

    def whole_on_devices(self, state):
        return state


def epoch_run(config=None, epochs: int = 0):
    """What `Run._train_epoch` reads of a run of `config` after `epochs`
    epochs: one epoch, its validation figures made up."""
    from tagger.config import TrainConfig

    run = types.SimpleNamespace(
        config=config or TrainConfig(progress=False), chief=True, state=RunState(epoch=epochs),
        info=None, _target_errors=contextlib.nullcontext,
        _validate=lambda: {"loss": 0.5, "roc_auc": 0.5, "pr_auc": 0.5})
    run._non_finite = lambda where, loss: Run._non_finite(run, where, loss)
    return run


class Rendezvous:
    """Holds the input thread inside the iterator's `next()` (making batch
    `at`) from the moment `interrupt()` starts until a little after it
    raises KeyboardInterrupt: Ctrl-C while that thread reads."""

    def __init__(self, at):
        self.at = at
        self._asked, self._inside = threading.Event(), threading.Event()

    def batch(self, i):
        if i == self.at:
            self._asked.wait(10)
            self._inside.set()
            time.sleep(0.3)

    def interrupt(self):
        self._asked.set()
        self._inside.wait(10)
        raise KeyboardInterrupt


def batches(rendezvous, raise_at=None, tags=True):
    """A generator of one-window batches (as the TensorFlow-free reader's
    and tf.data's windows alone are), batch `raise_at` a Ctrl-C."""
    i = 0
    while True:
        rendezvous.batch(i)
        if i == raise_at:
            raise KeyboardInterrupt
        window = np.full((1, 4), i, np.int16)
        yield (window, np.zeros((1, 2), np.float32)) if tags else (window,)
        i += 1


@pytest.mark.parametrize("point, at, noisy", [
    ("step", 0, False), ("step", 2, False), ("step", STEPS - 1, False), ("step", 2, True),
    ("source", 3, False), ("end of the epoch", None, False), ("end of the epoch", None, True)])
def test_ctrl_c_anywhere_in_a_jax_epoch_is_one_interrupted_line(point, at, noisy, capsys,
                                                                monkeypatch):
    """A step interrupted while the input thread is inside the batches'
    `next()` (the labelled one's, or a noisy student's unlabelled one),
    the source interrupted, the epoch's end interrupted while it waits for
    that thread: each gives the CLI's one line, the thread stopped and
    the batches closed."""
    rendezvous = Rendezvous(at + 1 if point == "step" else STEPS)
    stepped = []

    def step(state, constants, batch):
        if point == "step" and len(stepped) == at:
            rendezvous.interrupt()
        stepped.append(int(batch[0][0, 0]))
        return state, np.float32(0.5)

    if noisy:
        source = batches(Rendezvous(None)), batches(rendezvous, tags=False)
    else:
        source = batches(rendezvous, raise_at=at if point == "source" else None)
    if point == "end of the epoch":
        close = backend_jax._AheadOnDevices.close
        calls = []

        def interrupted_close(ahead):  # Ctrl-C while end_epoch waits for the thread
            calls.append(ahead)
            if len(calls) == 1:
                rendezvous.interrupt()
            close(ahead)

        monkeypatch.setattr(backend_jax._AheadOnDevices, "close", interrupted_close)
    model = types.SimpleNamespace(trainable_variables=[], non_trainable_variables=[])
    train_fn = backend_jax.TrainFunction(model, types.SimpleNamespace(variables=[]),
                                         HostDevices(), step)
    stage = types.SimpleNamespace(index=0, optimizer="sgd", learning_rate=0.1)
    code = cli.run(lambda _: Run._train_epoch(epoch_run(), train_fn, source, STEPS, stage))
    assert code == cli.EXIT_INTERRUPTED
    assert capsys.readouterr().err.strip().endswith(": interrupted")
    assert stepped == list(range({"step": at, "source": 3}.get(point, STEPS)))
    assert not [t for t in threading.enumerate() if t.name == AHEAD]
    for each in source if noisy else (source,):
        assert each.gi_frame is None  # closed


def distilled_config(**overrides):
    from tagger.config import DistillationConfig, TrainConfig

    return TrainConfig(distillation=DistillationConfig(teachers=("teacher.keras",),
                                                       temperature=1e-38), **overrides)


@pytest.mark.parametrize("chunk, named", [(1, "step 3"), (2, "steps 3-4")])
def test_a_non_finite_loss_stops_a_jax_epoch_in_one_line(chunk, named, capsys):
    """A step's NaN loss (at a temperature the parser refuses, given through
    the config) stops the epoch once the next call is under way, naming
    the step (the call's steps) and the settings to change, the input
    thread stopped and the batches closed; no row is made for the epoch."""
    stepped = []

    def step(state, constants, batch):
        stepped.append(int(batch[0][0, 0]))
        return state, np.float32(np.nan if len(stepped) == 3 else 0.5)

    source = batches(Rendezvous(None))
    model = types.SimpleNamespace(trainable_variables=[], non_trainable_variables=[])
    train_fn = backend_jax.TrainFunction(model, types.SimpleNamespace(variables=[]),
                                         HostDevices(), step)
    run = epoch_run(distilled_config(steps_per_execution=chunk, progress=False), epochs=4)
    stage = types.SimpleNamespace(index=0, optimizer="sgd", learning_rate=0.1)
    code = cli.run(lambda _: Run._train_epoch(run, train_fn, source, 8, stage))
    err = capsys.readouterr().err
    assert code == cli.EXIT_USER_ERROR and len(err.strip().splitlines()) == 1, err
    assert (f"epoch 5, {named}: the training loss is nan, not a finite number; the run "
            "stops here, its folder keeping the checkpoints of epoch 4 (no model is "
            "written): train anew under another --run-name with a --temperature nearer 1 "
            "(1e-38) or a lower --lr (this run's 0.01)") in err
    assert stepped == list(range(4 if chunk == 1 else 6))  # one call more than the NaN's
    assert not [t for t in threading.enumerate() if t.name == AHEAD]
    assert source.gi_frame is None


def test_a_non_finite_validation_loss_stops_the_run_before_its_aucs():
    """Finite steps whose last update left the weights NaN: the val loss
    stops the run in one line (the AUCs would fail on NaN scores)."""
    from tagger.errors import UserError
    from tagger.evaluation.predict import ClipPredictions

    run = epoch_run(distilled_config(mixed_precision="float16"))
    run.info, run.distillation = types.SimpleNamespace(tag_names=["a", "b", "c"]), None
    scores = np.full((2, 3), np.nan, np.float32)
    predictions = ClipPredictions(np.arange(2), np.eye(2, 3, dtype=np.float32), scores,
                                  float("nan"), 2)
    run._predictions = lambda split, steps: predictions
    for method in ("_loss", "_tag_metrics"):
        setattr(run, method, lambda found, method=method: getattr(Run, method)(run, found))
    with pytest.raises(UserError) as stopped:
        Run._validate(run)
    assert str(stopped.value).startswith(
        "epoch 1, validation: the val loss is nan, not a finite number; the run stops "
        "here, no epoch of it finished, so it saved none (no model is written)")
    assert str(stopped.value).endswith("or --mixed-precision off")
