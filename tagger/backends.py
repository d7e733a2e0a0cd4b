"""Keras's backend for a process: TensorFlow (the default) or JAX.

Keras reads KERAS_BACKEND once, when it is first imported; `choose` sets it
before that (train.py and eval.py's --backend) and refuses a process whose
Keras already runs another. Under JAX, TensorFlow is optional: it serves
only as an input pipeline (tf.data) and file system (gs://) where it is
installed, and is kept off the accelerators there (`tensorflow_for_input`).
"""

from __future__ import annotations

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
    return name


def current() -> str:
    """The backend Keras runs on in this process, or will once imported
    (read without importing Keras)."""
    keras = sys.modules.get("keras")
    if keras is not None:
        return keras.backend.backend()
    return os.environ.get("KERAS_BACKEND") or DEFAULT


def is_jax() -> bool:
    return current() == "jax"


def tensorflow_for_input():
    """TensorFlow, imported quietly, for input pipelines and file systems
    only: under another backend it sees no GPU or TPU, which belong to that
    backend (a TensorFlow built for CUDA would otherwise take the GPU's
    memory). None where TensorFlow is not installed."""
    from tagger.runtime import quiet_tensorflow, tensorflow_installed

    if not tensorflow_installed():
        return None

    quiet_tensorflow()
    import tensorflow as tf

    if current() != "tensorflow":
        for kind in ("GPU", "TPU"):
            try:
                tf.config.set_visible_devices([], kind)
            except (RuntimeError, ValueError):  # devices in use already, or no such kind
                pass
    return tf
