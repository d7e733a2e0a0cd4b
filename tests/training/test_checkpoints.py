"""A run's checkpoints (training/checkpoints.py): the variables' paths
stored and checked, Keras's per-process numbering taken out of them, and
checkpoints of earlier versions, which hold no paths, read by position."""

import io

import keras
import numpy as np
import pytest

from tagger.training import checkpoints


def two_dense(first: str, second: str, name: str = "tagger"):
    """Two Dense layers of 4 units on 4 inputs (kernels and biases of equal
    shapes), named `first` and `second` in that order."""
    return keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, name=first),
                             keras.layers.Dense(4, name=second)], name=name)


def unnamed(seed: int = 0):
    """A model whose layers and optimizer Keras names and numbers itself:
    (model, built SGD with momentum)."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4),
                              keras.layers.BatchNormalization(), keras.layers.Dropout(0.5),
                              keras.layers.Dense(2)])
    optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
    optimizer.build(model.trainable_variables)
    return model, optimizer


def test_variables_of_equal_shapes_in_another_order_are_refused(tmp_path):
    """The same shapes in the same order, but the model's first Dense is the
    checkpoint's second: refused, naming the first variable that differs;
    nothing is assigned."""
    written = two_dense("encoder", "decoder")
    prefix = str(tmp_path / "epoch-00001")
    checkpoints.write(prefix, written)
    other = two_dense("decoder", "encoder")
    before = [v.numpy().copy() for v in other.variables]
    with pytest.raises(checkpoints.CheckpointMismatch,
                       match="its model variable 0 is 'tagger/encoder/kernel', the "
                             "model's is 'tagger/decoder/kernel'"):
        checkpoints.read(prefix, other)
    for variable, value in zip(other.variables, before):
        np.testing.assert_array_equal(variable.numpy(), value)
    same = two_dense("encoder", "decoder")
    checkpoints.read(prefix, same)
    for mine, theirs in zip(same.variables, written.variables):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_paths_do_not_depend_on_the_models_built_before(tmp_path):
    """Keras numbers the layers, seed generators and optimizers a process
    makes (`dense_3`, `sgd_2`): the model and optimizer built after others
    have the stored paths of the first, and read its checkpoint back."""
    model, optimizer = unnamed(seed=1)
    prefix = str(tmp_path / "epoch-00001")
    optimizer.iterations.assign(7)
    checkpoints.write(prefix, model, optimizer)
    for _ in range(2):  # more layers, seed generators and optimizers numbered
        unnamed()
    again, again_optimizer = unnamed(seed=2)
    assert [v.path for v in again.variables] != [v.path for v in model.variables]
    with np.load(checkpoints.path_of(prefix)) as saved:
        stored = [[str(p) for p in saved[f"paths/{group}"]] for group in ("model", "optimizer")]
    assert stored == [p for _, _, p in checkpoints._groups(again, again_optimizer)]
    assert stored[0][:2] == ["sequential/dense/kernel", "sequential/dense/bias"]
    assert "seed_generator/seed_generator_state" in stored[0]
    assert stored[1][:3] == ["iteration", "learning_rate", "sequential/dense/kernel/momentum"]
    checkpoints.read(prefix, again, again_optimizer)
    assert int(again_optimizer.iterations) == 7
    for mine, theirs in zip(again.variables, model.variables):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_stable_paths_rank_each_names_numbers():
    assert checkpoints.stable_paths(
        ["functional_4/dense_7/kernel", "functional_4/dense_9/kernel", "dense_7_1/x",
         "block3_se_excite/kernel", "seed_generator_12/seed_generator_state",
         "seed_generator_3/seed_generator_state"]) == [
        "functional/dense/kernel", "functional/dense_1/kernel", "dense_7/x",
        "block3_se_excite/kernel", "seed_generator_1/seed_generator_state",
        "seed_generator/seed_generator_state"]


def test_a_checkpoint_of_an_earlier_version_reads_by_position(tmp_path):
    """An earlier version wrote the values alone: they are read by position
    and shape, as they were written."""
    written = two_dense("encoder", "decoder")
    arrays = {f"model/{i:05d}": v.numpy() for i, v in enumerate(written.variables)}
    prefix = tmp_path / "best-00002"
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    (tmp_path / "best-00002.npz").write_bytes(buffer.getvalue())
    other = two_dense("decoder", "encoder")
    checkpoints.read(str(prefix), other)
    for mine, theirs in zip(other.variables, written.variables):
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
