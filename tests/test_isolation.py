"""tests/isolation.py: what a test changes for the whole process is put back."""

import os
import random
import shutil
import tempfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.isolation import kept_global_state


def test_the_process_wide_state_a_test_changes_is_put_back():
    from keras.src.backend.common import global_state
    from tensorflow.python.eager import context

    policy, floatx = keras.mixed_precision.global_policy().name, keras.config.floatx()
    tempdir, tf_seed = tempfile.tempdir, context.global_seed()
    random.seed(1)
    np.random.seed(1)
    expected = (random.random(), np.random.random())
    random.seed(1)
    np.random.seed(1)
    os.environ.pop("TAGGER_ISOLATION_PROBE", None)
    with kept_global_state():
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        keras.config.set_floatx("float16")
        keras.utils.set_random_seed(123)
        tf.random.set_seed(123)
        tempfile.tempdir = "/nonexistent"
        os.environ["TAGGER_ISOLATION_PROBE"] = "1"
    assert (random.random(), np.random.random()) == expected  # not reseeded to 123
    assert keras.mixed_precision.global_policy().name == policy
    assert keras.config.floatx() == floatx
    assert global_state.get_global_attribute("global_random_seed") != 123
    assert context.global_seed() == tf_seed
    assert tempfile.tempdir == tempdir and "TAGGER_ISOLATION_PROBE" not in os.environ


@pytest.mark.slow
def test_a_fork_server_in_a_removed_folder_does_not_outlive_the_test():
    """A bench run in a test's process starts the fork server in its own
    short folder, which is removed after it: the server is stopped."""
    import multiprocessing.forkserver

    from tagger.parallel import forget_temporary_folder, ordered_map, stop_fork_server
    from tests.test_parallel import square

    stop_fork_server()
    forget_temporary_folder()
    folder = tempfile.mkdtemp(prefix="iso-")
    with kept_global_state():
        tempfile.tempdir = folder
        assert list(ordered_map(square, range(3), 2)) == [0, 1, 4]
        address = multiprocessing.forkserver._forkserver._forkserver_address
        assert address.startswith(folder)
        tempfile.tempdir = None
        shutil.rmtree(folder)
    assert multiprocessing.forkserver._forkserver._forkserver_address is None
    assert multiprocessing.process.current_process()._config.get("tempdir") is None
