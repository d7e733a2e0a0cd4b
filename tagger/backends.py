"""Keras's backend for a process: TensorFlow (the default) or JAX.

Keras reads KERAS_BACKEND once, when it is first imported; `choose` sets it
before that (train.py and eval.py's --backend) and refuses a process whose
Keras already runs another. Under JAX, TensorFlow is optional: it serves
only as an input pipeline (tf.data) and file system (gs://) where it is
installed, and is kept off the accelerators there (`tensorflow_for_input`).
"""

from __future__ import annotations

import importlib.util
import os
import sys

from tagger.errors import UserError

BACKENDS = ("tensorflow", "jax")
DEFAULT = "tensorflow"


def choose(name: str | None) -> str:
    """Makes `name` (or KERAS_BACKEND, else TensorFlow) this process's
    backend and returns it; a UserError when Keras was imported already
    under another, or for a backend this project does not run on."""
    name = name or os.environ.get("KERAS_BACKEND") or DEFAULT
    if name not in BACKENDS:
        raise UserError(f"backend {name!r} is not one tagger trains on; valid: "
                        f"{', '.join(BACKENDS)} (--backend, or KERAS_BACKEND)")
    if "keras" in sys.modules:
        running = sys.modules["keras"].backend.backend()
        if running != name:
            raise UserError(f"Keras runs on {running} in this process already; start a new "
                            f"process for --backend {name}")
        return name
    os.environ["KERAS_BACKEND"] = name
    if name == "jax":
        keep_compiled_programs()
    return name


def keep_compiled_programs() -> None:
    """JAX keeps the programs it compiles in the cache folder
    (`$TAGGER_HOME/jax`, unless JAX_COMPILATION_CACHE_DIR says where): a
    resumed run, eval.py after train.py and a second run of one model
    compile nothing again. Set before JAX is imported; a cache folder that
    cannot be written is left unused."""
    from tagger.cache import CacheFolderError, cache_folder

    if "JAX_COMPILATION_CACHE_DIR" in os.environ or "jax" in sys.modules:
        return
    try:
        os.environ["JAX_COMPILATION_CACHE_DIR"] = cache_folder("jax")
    except CacheFolderError:
        pass


def current() -> str:
    """The backend Keras runs on in this process, or will once imported
    (read without importing Keras)."""
    keras = sys.modules.get("keras")
    if keras is not None:
        return keras.backend.backend()
    return os.environ.get("KERAS_BACKEND") or DEFAULT


def is_jax() -> bool:
    return current() == "jax"


def tensorflow_installed() -> bool:
    """Whether TensorFlow can be imported here (without importing it)."""
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):
        return False


def tensorflow_for_input():
    """TensorFlow, imported quietly, for input pipelines and file systems
    only: under another backend it sees no GPU or TPU, which belong to that
    backend (a TensorFlow built for CUDA would otherwise take the GPU's
    memory). None where TensorFlow is not installed."""
    if not tensorflow_installed():
        return None
    from tagger.runtime import quiet_tensorflow

    quiet_tensorflow()
    import tensorflow as tf

    if current() != "tensorflow":
        for kind in ("GPU", "TPU"):
            try:
                tf.config.set_visible_devices([], kind)
            except (RuntimeError, ValueError):  # devices in use already, or no such kind
                pass
    return tf
