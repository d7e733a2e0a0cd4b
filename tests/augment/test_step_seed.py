"""The augmentation seed of each training step (`step_seed`, `Augmentation`):
the same after a resume at the same step, different for every step, stream,
run seed and replica."""

from __future__ import annotations

import pathlib
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from tagger.augment import Augmentation, step_seed
from tests.checks import run_json_script

ROOT = pathlib.Path(__file__).parents[2]
SR = 22050


def windows(batch=3, n=4096):
    rng = np.random.default_rng(0)
    t = np.arange(n) / SR
    tones = np.sin(2 * np.pi * rng.uniform(200, 2000, (batch, 1)) * t)
    return (tones + 0.1 * rng.normal(size=(batch, n))).astype(np.float32)


def optimizer_at(steps):
    """An optimizer that has taken `steps` steps, and its variable."""
    variable = keras.Variable(np.zeros(3, np.float32))
    optimizer = keras.optimizers.SGD(0.1)
    optimizer.build([variable])
    for _ in range(steps):
        optimizer.apply_gradients([(tf.ones(3), variable)])
    return optimizer


def test_a_resumed_run_augments_its_step_as_the_uninterrupted_run_did(tmp_path):
    x = windows()
    augmentation = Augmentation(SR, seed=3, stream=1)  # the full chain
    optimizer = optimizer_at(0)
    seen = []
    for step in range(4):  # the uninterrupted run, one augmentation per step
        seen.append(augmentation(x, optimizer.iterations).numpy())
        optimizer.iterations.assign_add(1)
        if step == 1:  # the checkpoint written after step 2
            path = tf.train.Checkpoint(optimizer=optimizer).write(str(tmp_path / "ckpt"))
    # the resumed run: a new optimizer restored from the checkpoint, a new Augmentation
    restored = optimizer_at(0)
    tf.train.Checkpoint(optimizer=restored).read(path).assert_existing_objects_matched()
    assert int(restored.iterations) == 2
    again = Augmentation(SR, seed=3, stream=1)
    resumed = [again(x, restored.iterations).numpy()]
    restored.iterations.assign_add(1)
    resumed.append(again(x, restored.iterations).numpy())
    assert resumed[0].tobytes() == seen[2].tobytes()
    assert resumed[1].tobytes() == seen[3].tobytes()
    # in a compiled step too (the step a tensor inside the graph)
    compiled = tf.function(lambda x: again(x, restored.iterations))
    np.testing.assert_allclose(compiled(x).numpy(), seen[3], atol=1e-5)
    # every step noises the same windows differently
    flat = [s.tobytes() for s in seen]
    assert len(set(flat)) == len(flat)
    assert not np.allclose(seen[0], x)


def test_the_seed_changes_with_step_stream_and_run_seed():
    seeds = {(seed, step, stream): tuple(step_seed(seed, step, stream).numpy())
             for seed in (0, 1) for step in (0, 1, 2) for stream in (0, 1)}
    assert len(set(seeds.values())) == len(seeds)
    assert tuple(step_seed(1, tf.constant(2, tf.int64), 1).numpy()) == seeds[1, 2, 1]


REPLICAS = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {root!r})
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tagger.augment import Augmentation, step_seed

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    x = np.random.default_rng(0).normal(size=(2, 4000)).astype(np.float32)
    augmentation = Augmentation(22050, seed=3, stream=1)

    @tf.function
    def replica_step(step):
        return step_seed(3, step, 1), augmentation(tf.constant(x), step)

    out = {{}}
    for step in (5, 6):
        seeds, noisy = strategy.run(replica_step, args=(tf.constant(step, tf.int64),))
        out[step] = {{"seeds": [s.numpy().tolist()
                                for s in strategy.experimental_local_results(seeds)],
                      "noisy": [n.numpy().ravel()[:2000].tolist()
                                for n in strategy.experimental_local_results(noisy)]}}
    single = step_seed(3, 5, 1).numpy().tolist()
    print(json.dumps({{"steps": out, "single": single}}))
""")


@pytest.mark.slow
def test_every_replica_gets_its_own_seed(tmp_path):
    out = run_json_script(tmp_path / "replicas.py", REPLICAS.format(root=str(ROOT)))
    five, six = out["steps"]["5"], out["steps"]["6"]
    assert five["seeds"][0] != five["seeds"][1]  # the two replicas of one step
    assert not np.allclose(five["noisy"][0], five["noisy"][1])
    assert {tuple(s) for s in five["seeds"]}.isdisjoint({tuple(s) for s in six["seeds"]})
    assert five["seeds"][0] == out["single"]  # replica 0: as a single-device run
