"""What a test may change for the whole process, put back when it ends
(tests/conftest.py runs every test inside `kept_global_state`): the
environment, `tempfile`'s folder, Python's and NumPy's global random
state, TensorFlow's global seed and the counter of its op seeds, Keras's
global seed, its global seed generator's state, dtype policy and float
type, the workers' fork server where the test removed its folder
(tagger.parallel), and TensorFlow's registry of gradient functions (what
the test registered that no graph holds). So no test, and no bench run in a test's
process, changes what a later one finds, whatever order they run in."""

from __future__ import annotations

import contextlib
import os
import random
import sys
import tempfile

import numpy as np

KERAS_GLOBALS = ("global_random_seed", "global_seed_generator")


def keras_globals(new: dict | None = None) -> dict:
    """Keras's global random seed and global seed generator (the one
    `keras.random` draws from without a seed), after putting `new` in
    place where given. Keras has no public API to read or restore them:
    this function alone reads `keras.src`'s global state (checked with
    Keras 3.15; tests/test_isolation.py fails if it changes)."""
    from keras.src.backend.common import global_state

    for name, value in (new or {}).items():
        global_state.set_global_attribute(name, value)
    return {name: global_state.get_global_attribute(name) for name in KERAS_GLOBALS}


def tf_seed_state(new: tuple | None = None) -> tuple:
    """(TensorFlow's global seed, the state of the counter that gives
    each random op without a seed of its own the next op seed), after
    putting `new` in place where given (and clearing the cache of random
    kernels, whose states have advanced, as `tf.random.set_seed` does).
    TensorFlow has no public API to read them: this function alone reads
    its eager context's (checked with TensorFlow 2.21; tests/test_isolation.py
    fails if it changes)."""
    import tensorflow as tf
    from tensorflow.python.eager import context

    if new is not None:
        seed, counter = new
        tf.random.set_seed(seed)
        if counter is not None:
            context.context()._rng.setstate(counter)
    counter = getattr(context.context(), "_rng", None)
    return context.global_seed(), counter.getstate() if counter is not None else None


def _keras_state():
    if "keras" not in sys.modules:
        return None
    import keras

    attributes = keras_globals()
    generator = attributes["global_seed_generator"]
    return (keras.mixed_precision.global_policy(), keras.config.floatx(), attributes,
            None if generator is None else np.array(generator.state))


def _restore_keras(state) -> None:
    if "keras" not in sys.modules:
        return
    import keras

    policy, floatx, attributes, generator_state = state or (
        keras.DTypePolicy("float32"), "float32", dict.fromkeys(KERAS_GLOBALS), None)
    keras.mixed_precision.set_global_policy(policy)
    keras.config.set_floatx(floatx)
    keras_globals(attributes)
    generator = attributes["global_seed_generator"]
    if generator is not None and not np.array_equal(generator.state, generator_state):
        generator.state.assign(generator_state)


def _tf_seed():
    return tf_seed_state() if "tensorflow" in sys.modules else None


def _gradient_names():
    """The names in TensorFlow's registry of gradient functions, or None
    where TensorFlow is not imported (or its registry is not what
    `training_sums.gradient_registry` reads)."""
    if "tensorflow" not in sys.modules:
        return None
    from tagger.models.training_sums import gradient_registry

    entries = gradient_registry()
    return None if entries is None else set(entries)


def _drop_unheld_gradients(before: set | None) -> None:
    """Takes out of TensorFlow's registry the gradient functions registered
    since `before` that no graph holds (`training_sums.HeldGradient`):
    Keras's own training step under TensorFlow (`fit`, `train_on_batch`)
    registers tf.distribute's all-reduce gradient each time it is traced,
    and the registry would keep that step's whole graph to the end of the
    process. A registered step's gradients are built when it is traced, so
    nothing looks its entry up afterwards."""
    if before is None:
        return
    from tagger.models.training_sums import HeldGradient, gradient_registry

    entries = gradient_registry()
    for name in set(entries) - before:
        if not isinstance(entries[name].get("type"), HeldGradient):
            del entries[name]


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
    gradients = _gradient_names()
    try:
        yield
    finally:
        tempfile.tempdir = tempdir
        _drop_unheld_gradients(gradients)
        _stop_unreachable_fork_server()
        if os.environ != environ:
            os.environ.clear()
            os.environ.update(environ)
        random.setstate(python_random)
        np.random.set_state(numpy_random)
        if tf_seed != _tf_seed():
            tf_seed_state(tf_seed or (None, None))
        _restore_keras(keras_state)
