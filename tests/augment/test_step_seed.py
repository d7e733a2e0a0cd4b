"""The augmentation key of each training step (`step_seed`, `Augmentation`):
the same after a resume at the same step, different for every step, stream,
run seed and replica (a tf.distribute step folds its replica in:
`trainer.replica_index`)."""

from __future__ import annotations

import pathlib
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from tagger.augment import Augmentation, step_seed
from tagger.augment.threefry import as_key, fold_in
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


@pytest.mark.slow
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


def test_the_seed_changes_with_step_stream_run_seed_and_replica():
    seeds = {(seed, step, stream, replica): tuple(step_seed(seed, step, stream, replica).numpy())
             for seed in (0, 1) for step in (0, 1, 2) for stream in (0, 1)
             for replica in (0, 1)}
    assert len(set(seeds.values())) == len(seeds)
    assert tuple(step_seed(1, tf.constant(2, tf.int64), 1).numpy()) == seeds[1, 2, 1, 0]
    # its definition: fold_in(fold_in((seed, stream), step), replica)
    key = fold_in(fold_in(as_key([1, 1]), 2), 1)
    assert tuple(key.numpy()) == seeds[1, 2, 1, 1]


REPLICAS = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {root!r})
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tagger.augment import Augmentation, step_seed
    from tagger.training.trainer import replica_index

    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    x = np.random.default_rng(0).normal(size=(2, 4000)).astype(np.float32)
    augmentation = Augmentation(22050, seed=3, stream=1)

    @tf.function
    def replica_step(step):
        replica = replica_index()
        return step_seed(3, step, 1, replica), augmentation(tf.constant(x), step, replica)

    out = {{}}
    for step in (5, 6):
        seeds, noisy = strategy.run(replica_step, args=(tf.constant(step, tf.int64),))
        out[step] = {{"seeds": [s.numpy().tolist()
                                for s in strategy.experimental_local_results(seeds)],
                      "noisy": [n.numpy().ravel()[:2000].tolist()
                                for n in strategy.experimental_local_results(noisy)]}}
    single = step_seed(3, 5, 1, replica_index()).numpy().tolist()

    # the training steps hand each replica's index to the augmentation
    import keras
    from tagger.training.semi_supervised import PseudoLabeller, make_noisy_student_function
    from tagger.training.trainer import make_train_function

    seen = []

    def recording(x, step, replica=0):  # 0: as an Augmentation called without one
        record = lambda r: seen.append(int(r)) or np.int64(0)
        tf.numpy_function(record, [tf.cast(replica, tf.int64)], tf.int64, stateful=True)
        return x

    def tiny(samples):
        inputs = keras.Input((samples,))
        return keras.Model(inputs, keras.layers.Dense(3, activation="sigmoid")(inputs))

    with strategy.scope():
        student, teacher = tiny(8), tiny(8)
        optimizer = keras.optimizers.SGD(0.1)
    rng = np.random.default_rng(1)
    windows = rng.normal(size=(4, 8)).astype(np.float32)
    tags = (rng.random((4, 3)) < 0.5).astype(np.float32)
    batches = lambda *parts: iter(strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensors(parts if len(parts) > 1 else parts[0]).repeat()))
    make_train_function(student, optimizer, strategy, 4, augmentation=recording)(
        batches(windows, tags), 1)
    supervised = sorted(seen)
    seen.clear()
    make_noisy_student_function(student, PseudoLabeller(teacher, 8, lambda x: x), optimizer,
                                strategy, 4, 4, recording)(
        (batches(windows, tags), batches(windows)), 1)
    print(json.dumps({{"steps": out, "single": single, "supervised": supervised,
                      "noisy_student": sorted(seen)}}))
""")


@pytest.mark.slow
def test_every_replica_gets_its_own_seed(tmp_path):
    out = run_json_script(tmp_path / "replicas.py", REPLICAS.format(root=str(ROOT)))
    five, six = out["steps"]["5"], out["steps"]["6"]
    assert five["seeds"][0] != five["seeds"][1]  # the two replicas of one step
    assert not np.allclose(five["noisy"][0], five["noisy"][1])
    assert {tuple(s) for s in five["seeds"]}.isdisjoint({tuple(s) for s in six["seeds"]})
    assert five["seeds"][0] == out["single"]  # replica 0: as a single-device run
    # the supervised and noisy-student steps augment each replica's windows
    # with its own index
    assert out["supervised"] == [0, 1] and out["noisy_student"] == [0, 1]
