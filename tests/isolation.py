"""What a test may change for the whole process, put back when it ends
(tests/conftest.py runs every test inside `kept_global_state`): the
environment, `tempfile`'s folder, Python's and NumPy's global random
state, TensorFlow's global seed and Keras's global seed, dtype policy and
float type, and the workers' fork server where the test removed its folder
(tagger.parallel). So no test, and no bench run in a test's
process, changes what a later one finds, whatever order they run in."""

from __future__ import annotations

import contextlib
import os
import random
import sys
import tempfile

import numpy as np


def _keras_state():
    if "keras" not in sys.modules:
        return None
    import keras
    from keras.src.backend.common import global_state

    return (keras.mixed_precision.global_policy(), keras.config.floatx(),
            {name: global_state.get_global_attribute(name)
             for name in ("global_random_seed", "global_seed_generator")})


def _restore_keras(state) -> None:
    if "keras" not in sys.modules:
        return
    import keras
    from keras.src.backend.common import global_state

    policy, floatx, attributes = state or (keras.DTypePolicy("float32"), "float32",
                                           {"global_random_seed": None,
                                            "global_seed_generator": None})
    keras.mixed_precision.set_global_policy(policy)
    keras.config.set_floatx(floatx)
    for name, value in attributes.items():
        global_state.set_global_attribute(name, value)


def _tf_seed():
    if "tensorflow" not in sys.modules:
        return None
    from tensorflow.python.eager import context

    return context.global_seed()


def _restore_tf_seed(seed) -> None:
    if "tensorflow" not in sys.modules:
        return
    import tensorflow as tf

    tf.random.set_seed(seed)


def _stop_unreachable_fork_server() -> None:
    """Stops a fork server whose socket or folder a test removed (a bench
    run in a folder of its own), so that the next test starts a new one."""
    if "tagger.parallel" in sys.modules:
        sys.modules["tagger.parallel"].restart_unreachable_fork_server()


@contextlib.contextmanager
def kept_global_state():
    """Runs the body, then puts back the process-wide state it changed."""
    environ = dict(os.environ)
    tempdir = tempfile.tempdir
    python_random, numpy_random = random.getstate(), np.random.get_state()
    keras_state, tf_seed = _keras_state(), _tf_seed()
    try:
        yield
    finally:
        tempfile.tempdir = tempdir
        _stop_unreachable_fork_server()
        if os.environ != environ:
            os.environ.clear()
            os.environ.update(environ)
        random.setstate(python_random)
        np.random.set_state(numpy_random)
        if tf_seed != _tf_seed():
            _restore_tf_seed(tf_seed)
        _restore_keras(keras_state)
