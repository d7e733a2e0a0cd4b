"""tests/isolation.py: what a test changes for the whole process is put back."""

import os
import random
import shutil
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.isolation import kept_global_state, keras_globals, tf_seed_state


def test_the_process_wide_state_a_test_changes_is_put_back():
    policy, floatx = keras.mixed_precision.global_policy().name, keras.config.floatx()
    tempdir = tempfile.tempdir
    random.seed(1)
    np.random.seed(1)
    expected = (random.random(), np.random.random())
    random.seed(1)
    np.random.seed(1)
    os.environ.pop("TAGGER_ISOLATION_PROBE", None)
    with kept_global_state():
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        keras.config.set_floatx("float16")
        tempfile.tempdir = "/nonexistent"
        os.environ["TAGGER_ISOLATION_PROBE"] = "1"
    assert (random.random(), np.random.random()) == expected
    assert keras.mixed_precision.global_policy().name == policy
    assert keras.config.floatx() == floatx
    assert tempfile.tempdir == tempdir and "TAGGER_ISOLATION_PROBE" not in os.environ


def next_draws():
    """The next values of Keras's global seed generator (`keras.random`
    without a seed) and of TensorFlow's global seed and op-seed counter
    (`tf.random` without a seed)."""
    return np.asarray(keras.random.uniform((4,))), np.asarray(tf.random.uniform((4,)))


def seeded(seed):
    """Seeds every generator, and draws once from each (so that Keras's
    global seed generator exists and both have advanced)."""
    keras.utils.set_random_seed(seed)
    next_draws()


def draw_twice():
    next_draws()
    next_draws()


def reseed():
    keras.utils.set_random_seed(123)
    next_draws()


def reseed_tensorflow():
    tf.random.set_seed(123)
    next_draws()


@pytest.mark.parametrize("body", [draw_twice, reseed, reseed_tensorflow])
def test_keras_and_tensorflow_random_draws_go_on_as_if_the_test_had_not_run(body):
    """After the test, the generators' next draws are those they would
    have given without it: Keras's global seed generator is the same
    object in the same state, TensorFlow's seed and op-seed counter are
    put back even where the test drew without reseeding."""
    seeded(5)
    expected = next_draws()
    seeded(5)
    before = keras_globals()
    generator = before["global_seed_generator"]
    state, tf_state = np.array(generator.state), tf_seed_state()
    with kept_global_state():
        body()
    assert keras_globals() == before and before["global_random_seed"] == 5
    np.testing.assert_array_equal(generator.state, state)
    assert tf_seed_state() == tf_state and tf_state[0] == 5
    for ours, theirs in zip(next_draws(), expected):
        np.testing.assert_array_equal(ours, theirs)


def test_the_private_state_read_is_the_state_the_generators_draw_from():
    """What `keras_globals` and `tf_seed_state` read is what Keras and
    TensorFlow use: a new seed shows in both, a draw advances Keras's
    generator and TensorFlow's counter, and a generator put in place is
    the one `keras.random` draws from."""
    keras.utils.set_random_seed(7)
    assert keras_globals() == {"global_random_seed": 7, "global_seed_generator": None}
    seed, counter = tf_seed_state()
    assert seed == 7
    next_draws()
    generator = keras_globals()["global_seed_generator"]
    assert isinstance(generator, keras.random.SeedGenerator)
    state = np.array(generator.state)
    next_draws()
    assert not np.array_equal(generator.state, state)
    assert tf_seed_state()[1] != counter
    own = keras.random.SeedGenerator(11)
    keras_globals({"global_seed_generator": own})
    keras.random.uniform((2,))
    assert not np.array_equal(own.state, [11, 0])  # drawn from
    tf_seed_state((7, counter))
    assert tf_seed_state() == (7, counter)


@pytest.mark.slow
def test_a_fork_server_in_a_removed_folder_does_not_outlive_the_test():
    """A bench run in a test's process starts the fork server in its own
    short folder, which is removed after it: the server is stopped."""
    from tagger.multiprocessing_internals import fork_server_address, temporary_folder
    from tagger.parallel import forget_temporary_folder, ordered_map, stop_fork_server
    from tests.test_parallel import square

    stop_fork_server()
    forget_temporary_folder()
    folder = tempfile.mkdtemp(prefix="iso-")
    with kept_global_state():
        tempfile.tempdir = folder
        assert list(ordered_map(square, range(3), 2)) == [0, 1, 4]
        address = fork_server_address()
        assert address.startswith(folder)
        tempfile.tempdir = None
        shutil.rmtree(folder)
    assert fork_server_address() is None
    assert temporary_folder() is None


def test_a_keras_training_step_leaves_the_gradient_registry_with_its_test():
    """Keras's own step (train_on_batch) registers tf.distribute's
    all-reduce gradient when traced; after the test neither that entry nor
    the step's graph is left."""
    import gc
    import weakref

    from tensorflow.python.framework import func_graph

    from tagger.models.training_sums import gradient_registry

    def step_graphs():
        gc.collect()
        # type(), not isinstance(): gc's list can hold dead weak proxies
        # (PyTorch's), on which isinstance raises ReferenceError.
        return [weakref.ref(g) for g in gc.get_objects()
                if issubclass(type(g), func_graph.FuncGraph)
                and g.name.startswith("one_step_on_data")]

    class Referent:
        pass

    referent = Referent()
    dead_proxy = weakref.proxy(referent)  # as other libraries leave in gc's list
    del referent
    before, graphs_before = set(gradient_registry()), step_graphs()
    with kept_global_state():
        inputs = keras.Input((3,))
        model = keras.Model(inputs, keras.layers.Dense(2, activation="sigmoid")(inputs))
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="binary_crossentropy")
        loss = model.train_on_batch(np.ones((4, 3), "float32"), np.ones((4, 2), "float32"))
        added = set(gradient_registry()) - before
        del model
    assert np.isfinite(loss) and added  # what the step registered while it lived
    assert set(gradient_registry()) - before == set()
    assert len([g for g in step_graphs() if g() is not None]) == len(graphs_before)
    del dead_proxy
