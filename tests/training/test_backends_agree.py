"""The same model, initial weights and batches give the same training losses
and weights under Keras's TensorFlow and JAX backends, for every family:
three steps of plain SGD at 1e-3 by each backend's own training step
(TensorFlow's in its `training_model` form, JAX's stateless jitted step),
dropout off (each backend draws its own masks). JAX compiles the step once:
its second and third steps compile nothing.

The tolerances: the first loss (the same weights) to 2e-4 of itself, each
later one to 2e-3, and the change of every variable over the steps (the
batch norms' moving statistics too), taken together as one vector, to
5e-3 of its length (L2). float32 rounding differs between the backends'
kernels, as much as between TensorFlow's training form and the model's
own layers, and these tiny models (batch norms over 8 windows) grow it
step by step: seen on the 2-core EPYC, the losses differed by up to 9e-4
after three steps and the changes by up to 1.1e-3 (a single variable's by
up to 11%: a first convolution whose gradient is small), and a larger step
(SGD at 1e-2 with Nesterov momentum) grows the losses' difference to 1e-2
within six. A step that differed in what it computes (a loss scaled
otherwise, statistics not updated, the int16 windows scaled otherwise)
differs by far more."""

import contextlib
import io
import json
import os
import subprocess
import sys
from unittest import mock

import numpy as np
import pytest

from tests.checks import HANG_S, without_tensorflow_env

pytest.importorskip("jax", reason="the JAX backend's tests need requirements-jax.txt")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS = 3
FIRST_LOSS = 2e-4  # relative: the same weights, each backend's kernels
LOSSES = 2e-3  # relative, over the steps
UPDATES = 5e-3  # relative: the change of every variable over the steps, taken together

SCRIPT = r'''
import json, os, sys
sys.path.insert(0, os.environ["TAGGER_ROOT"])
import keras
import numpy as np

from tagger.models import FAMILIES
from tagger.training import backend, checkpoints
from tests.models.common import nested_layers

folder, steps = sys.argv[1], int(sys.argv[2])
cases = json.loads(sys.argv[3])
devices = backend.for_run("default")
compiles = []  # XLA's compilations, under JAX
if devices.name == "jax":
    import jax.monitoring

    # the models' initial weights are TensorFlow's, read from its checkpoints:
    # JAX's own draws are thrown away, and its threefry that is not
    # partitionable compiles them (a program per weight shape) in half the time
    jax.config.update("jax_threefry_partitionable", False)

    # the event JAX reports for each compilation (checked with JAX 0.10.2)
    jax.monitoring.register_event_duration_secs_listener(
        lambda event, seconds, **_: compiles.append(event)
        if event == "/jax/core/compile/backend_compile_duration" else None)
losses, compiled_again = {}, {}


def dropout_off(model):
    """Dropout off (each backend draws its own masks)."""
    for layer in nested_layers(model):
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0


def run_steps(name, model, train, batches):
    """`steps` steps of `train`, their losses and the compilations after
    the first kept under `name`, the weights after them written."""
    losses[name] = [float(train(batches, 1))]
    after_first = len(compiles)
    losses[name] += [float(train(batches, 1)) for _ in range(steps - 1)]
    compiled_again[name] = len(compiles) - after_first
    getattr(train, "end_epoch", lambda: None)()  # JAX's: its state written back
    checkpoints.write(os.path.join(folder, f"{name}-{devices.name}-after"), model)


for name, family, extra in cases:
    spec = FAMILIES[family]
    keras.utils.set_random_seed(0)
    with devices.scope():
        model = spec.build(num_tags=5, **{**spec.tiny, **extra})
        optimizer = keras.optimizers.SGD(1e-3)
    dropout_off(model)
    weights = os.path.join(folder, name)
    if devices.name == "tensorflow":
        checkpoints.write(weights, model)
        rng = np.random.default_rng(0)
        windows = rng.integers(-3000, 3000, (steps, 8, model.input_shape[1]), dtype=np.int16)
        np.savez(weights + "-batches.npz", x=windows,
                 y=(rng.random((steps, 8, 5)) < 0.4).astype(np.float32))
    else:
        checkpoints.read(weights, model)
    with np.load(weights + "-batches.npz") as saved:
        x, y = saved["x"], saved["y"]
    train = devices.train_function(model, optimizer, 8)
    if devices.name == "tensorflow":
        import tensorflow as tf

        batches = iter(tf.data.Dataset.from_tensor_slices((x, y)))
    else:
        batches = iter(zip(x, y))
    run_steps(name, model, train, batches)

# noisy-student and distillation steps: a tiny sample-level CNN student of
# STUDENT samples; a teacher of TEACHER samples (the student sees the
# centred crop of its windows); the training runs' tiny basic blocks, the
# cases above holding the others
from tagger.augment import Augmentation, AugmentConfig
from tagger.training.distillation import SoftTargetLoss
from tagger.training.semi_supervised import PseudoLabeller
from tests.presets import TINY_RUN_SAMPLECNN

for name, method in json.loads(sys.argv[4]).items():
    spec = FAMILIES["samplecnn"]
    keras.utils.set_random_seed(0)
    with devices.scope():
        model = spec.build(num_tags=5, input_length=method["student"], **TINY_RUN_SAMPLECNN)
        teacher = spec.build(num_tags=5, input_length=method["teacher"], **TINY_RUN_SAMPLECNN)
        optimizer = keras.optimizers.SGD(1e-3)
    teacher.trainable = False
    dropout_off(model)
    weights = os.path.join(folder, name)
    if devices.name == "tensorflow":
        checkpoints.write(weights, model)
        checkpoints.write(weights + "-teacher", teacher)
        rng = np.random.default_rng(1)
        np.savez(weights + "-batches.npz",
                 x=rng.integers(-3000, 3000, (steps, 4, method["student"]), dtype=np.int16),
                 y=rng.random((steps, 4, 5)).astype(np.float32),  # soft targets too
                 u=rng.integers(-3000, 3000, (steps, 4, method["teacher"]), dtype=np.int16))
    else:
        checkpoints.read(weights, model)
        checkpoints.read(weights + "-teacher", teacher)
    with np.load(weights + "-batches.npz") as saved:
        x, y, u = saved["x"], saved["y"], saved["u"]
    chain = AugmentConfig() if method["augment"] else AugmentConfig.none()
    augmentation = Augmentation(22050, seed=3, stream=1, config=chain)
    if method["kind"] == "noisy student":
        train = devices.noisy_student_function(
            model, PseudoLabeller(teacher, method["teacher"], lambda windows: windows),
            optimizer, 4, augmentation, 0.5, method["augment"])
        if devices.name == "tensorflow":
            import tensorflow as tf

            batches = (iter(tf.data.Dataset.from_tensor_slices((x, y))),
                       iter(tf.data.Dataset.from_tensor_slices(u)))
        else:
            batches = (iter(zip(x, y)), iter((window,) for window in u))
    else:  # distillation: soft targets, the loss on the logits, at temperature 2
        x = np.concatenate([x, u[:, :, :method["student"]]], 1)  # a global batch of 8
        y = np.concatenate([y, y[:, ::-1]], 1)
        train = devices.train_function(model, optimizer, 8, augmentation=augmentation
                                       if method["augment"] else None, loss=SoftTargetLoss(2.0))
        if devices.name == "tensorflow":
            import tensorflow as tf

            batches = iter(tf.data.Dataset.from_tensor_slices((x, y)))
        else:
            batches = iter(zip(x, y))
    run_steps(name, model, train, batches)
print(json.dumps({"losses": losses, "compiled_again": compiled_again}))
'''

# Noisy-student training (augmentation off, and on: the same draws on both
# backends, the labelled half noised too) and distillation (T = 2, on the
# `tags` layer's logits, augmented), each on a tiny student of 6561 samples
# with basic blocks.
METHODS = {
    "noisy-student": {"kind": "noisy student", "augment": False, "student": 6561,
                      "teacher": 19683},
    "noisy-student-augment": {"kind": "noisy student", "augment": True, "student": 6561,
                              "teacher": 19683},
    "distillation-augment": {"kind": "distillation", "augment": True, "student": 6561,
                             "teacher": 19683},
}


def cases():
    from tagger.models import FAMILY_NAMES

    extra = [(f"samplecnn-{block}", "samplecnn", {"block": block})
             for block in ("basic", "res")]  # rese (with multi) is the family's tiny preset
    extra.append(("samplecnn-se-no-multi", "samplecnn", {"block": "se", "multi": False}))
    return [(name, name, {}) for name in FAMILY_NAMES] + extra


# the cases in groups, each a test the suite's two workers share (about a
# minute of CPU each, most of it XLA compiling under JAX): the families
# dealt round-robin into FAMILY_GROUPS, then the methods
FAMILY_GROUPS = 4
GROUPS = [f"families-{i}" for i in range(FAMILY_GROUPS)] + ["methods"]


@pytest.mark.slow
@pytest.mark.parametrize("group", GROUPS)
def test_every_family_trains_alike_under_both_backends(tmp_path, group):
    index = GROUPS.index(group)
    chosen = cases()[index::FAMILY_GROUPS] if index < FAMILY_GROUPS else []
    methods = METHODS if group == "methods" else {}
    losses = {}
    argv = [str(tmp_path), str(STEPS), json.dumps(chosen), json.dumps(methods)]
    for backend in ("tensorflow", "jax"):
        outcome = run_here(argv) if backend == "tensorflow" else run_under_jax(argv)
        losses[backend] = outcome["losses"]
        # the steps after the first run the program it compiled
        assert not {name: n for name, n in outcome["compiled_again"].items() if n}, backend
    assert set(losses["jax"]) == {name for name, _, _ in chosen} | set(methods)
    losses_differ, updates_differ = {}, {}
    for name, tensorflow in losses["tensorflow"].items():
        jax = losses["jax"][name]
        assert len(tensorflow) == STEPS and tensorflow[0] != tensorflow[-1], (name, tensorflow)
        relative = [abs(j - t) / t for t, j in zip(tensorflow, jax)]
        if relative[0] > FIRST_LOSS or max(relative) > LOSSES:
            losses_differ[name] = [f"{r:.1e}" for r in relative]
        change = {backend: update(tmp_path, name, backend) for backend in ("tensorflow", "jax")}
        difference = np.linalg.norm(change["jax"] - change["tensorflow"]) / np.linalg.norm(
            change["tensorflow"])
        if difference > UPDATES:
            updates_differ[name] = f"{difference:.1e}"
    assert not losses_differ, f"relative differences of each step's loss: {losses_differ}"
    assert not updates_differ, f"relative differences of the updates: {updates_differ}"


def run_here(argv: list) -> dict:
    """SCRIPT run in this process, whose Keras backend is TensorFlow: the
    JSON object it printed last."""
    import keras

    assert keras.backend.backend() == "tensorflow"
    out = io.StringIO()
    with mock.patch.object(sys, "argv", ["-c", *argv]), \
            mock.patch.object(sys, "path", sys.path[:]), \
            mock.patch.dict(os.environ, TAGGER_ROOT=ROOT), contextlib.redirect_stdout(out):
        exec(compile(SCRIPT, "<the cross-backend script>", "exec"), {"__name__": "__main__"})
    return json.loads(out.getvalue().strip().splitlines()[-1])


def run_under_jax(argv: list) -> dict:
    """SCRIPT run in a process of its own under Keras's JAX backend, where
    TensorFlow cannot be imported (as on the machines JAX drives; its steps
    read NumPy batches): the JSON object it printed last."""
    env = without_tensorflow_env({**os.environ, "KERAS_BACKEND": "jax", "TAGGER_ROOT": ROOT})
    done = subprocess.run([sys.executable, "-c", SCRIPT, *argv], capture_output=True,
                          text=True, env=env, timeout=HANG_S)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def update(folder, name: str, backend: str) -> np.ndarray:
    """The change of every float variable of `name` over the steps under
    `backend`, as one vector."""
    with np.load(folder / f"{name}.npz") as before, \
            np.load(folder / f"{name}-{backend}-after.npz") as after:
        return np.concatenate([(after[key] - before[key]).ravel() for key in before.files
                               if before[key].dtype.kind == "f"])
