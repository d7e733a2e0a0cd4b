"""The same model, initial weights and batches give the same training losses
under Keras's TensorFlow and JAX backends, for every family: three steps of
plain SGD at 1e-3 by each backend's own training step (TensorFlow's in its
`training_model` form, JAX's stateless jitted step), dropout off (each
backend draws its own masks). Agreement to 1e-4 of the loss: float32
rounding differs between the backends' kernels (and between TensorFlow's
training form and the model's own layers, by as much), and a larger step
(SGD at 1e-2 with Nesterov momentum) grows such differences to 1e-3 and
more within a few steps on these tiny models."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("jax", reason="the JAX backend's tests need requirements-jax.txt")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS = 3
TOLERANCE = 1e-4

SCRIPT = r'''
import json, os, sys
sys.path.insert(0, os.environ["TAGGER_ROOT"])
import keras
import numpy as np

from tagger.models import FAMILIES
from tagger.training import backend, checkpoints

folder, steps = sys.argv[1], int(sys.argv[2])
cases = json.loads(sys.argv[3])
devices = backend.for_run("default")
losses = {}
for name, family, extra in cases:
    spec = FAMILIES[family]
    keras.utils.set_random_seed(0)
    with devices.scope():
        model = spec.build(num_tags=5, **{**spec.tiny, **extra})
        optimizer = keras.optimizers.SGD(1e-3)
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0
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
    losses[name] = [float(train(batches, 1)) for _ in range(steps)]
    checkpoints.write(os.path.join(folder, f"{name}-{devices.name}-after"), model)
print(json.dumps(losses))
'''


def cases():
    from tagger.models import FAMILY_NAMES

    extra = [(f"samplecnn-{block}", "samplecnn", {"block": block})
             for block in ("basic", "res", "rese")]
    extra.append(("samplecnn-se-no-multi", "samplecnn", {"block": "se", "multi": False}))
    return [(name, name, {}) for name in FAMILY_NAMES] + extra


@pytest.mark.slow
def test_every_family_trains_alike_under_both_backends(tmp_path):
    chosen = cases()
    losses = {}
    for backend in ("tensorflow", "jax"):
        env = dict(os.environ, KERAS_BACKEND=backend, TAGGER_ROOT=ROOT)
        done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), str(STEPS),
                               json.dumps(chosen)], capture_output=True, text=True, env=env,
                              timeout=3600)
        assert done.returncode == 0, done.stderr[-3000:]
        losses[backend] = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(losses["jax"]) == {name for name, _, _ in chosen}
    differ = {name: [f"{abs(j - t) / t:.1e}" for t, j in zip(tensorflow, losses["jax"][name])]
              for name, tensorflow in losses["tensorflow"].items()
              if losses["jax"][name] != pytest.approx(tensorflow, rel=TOLERANCE)}
    print(json.dumps(losses))
    for name in losses["jax"]:
        after = {backend: np.load(tmp_path / f"{name}-{backend}-after.npz")
                 for backend in ("tensorflow", "jax")}
        print(name, max(float(np.max(np.abs(after["jax"][key] - value)) /
                               (float(np.max(np.abs(value))) + 1e-6))
                        for key, value in after["tensorflow"].items()))
    assert not differ, f"relative differences of each step's loss: {differ}"
    for name, tensorflow in losses["tensorflow"].items():
        assert len(tensorflow) == STEPS and tensorflow[0] != tensorflow[-1], (name, tensorflow)
