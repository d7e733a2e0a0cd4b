"""Keras's backend for a process: TensorFlow (the default) or JAX.

Keras reads KERAS_BACKEND once, when it is first imported; every command
checks it and sets it before that (`choose`, from tagger.cli.main; train.py
and eval.py's --backend), refusing in one line a backend tagger does not
run on and a process whose Keras already runs another. Under JAX,
TensorFlow is optional: it serves only as an input pipeline (tf.data) and
file system (gs://) where it is installed, and is kept off the
accelerators there (`tensorflow_for_input`); what only TensorFlow writes
(SavedModel, TFLite) says why it cannot run (`without_keras_on_tensorflow`)."""

from __future__ import annotations

import os
import sys

from tagger.errors import UserError

BACKENDS = ("tensorflow", "jax")
DEFAULT = "tensorflow"


def check(name: str | None = None) -> str:
    """The backend this process computes on: `name` (--backend), else
    KERAS_BACKEND, else the one Keras runs on where it is imported
    already, else TensorFlow; read without importing Keras. A UserError
    for a backend tagger does not run on (`torch`; `JAX` too: Keras takes
    the name as written and knows it in lower case only), or where Keras
    runs on another one in this process already."""
    asked = name or os.environ.get("KERAS_BACKEND") or None
    if asked is not None and asked not in BACKENDS:
        where = "--backend" if name else "KERAS_BACKEND"
        raise UserError(f"{where} {asked!r} is not a Keras backend tagger runs on; valid: "
                        f"{', '.join(BACKENDS)}, in lower case as Keras reads them (set "
                        "KERAS_BACKEND to one, or leave it unset: tensorflow)")
    keras = sys.modules.get("keras")
    if keras is None:
        return asked or DEFAULT
    running = keras.backend.backend()
    if running not in BACKENDS or (asked and running != asked):
        raise UserError(f"Keras runs on {running} in this process already; start a new "
                        f"process with KERAS_BACKEND={asked or DEFAULT}")
    return running


def require_tensorflow(backend: str, name: str | None) -> None:
    """A UserError where Keras would run on TensorFlow (`backend`, from
    `name`, --backend, else KERAS_BACKEND, else the default: `check`'s)
    and TensorFlow cannot be imported: one line saying how to run under
    JAX, not Keras's traceback."""
    from tagger.runtime import tensorflow_installed

    if backend != "tensorflow" or "keras" in sys.modules or tensorflow_installed():
        return
    said = ("--backend tensorflow" if name else "KERAS_BACKEND=tensorflow"
            if os.environ.get("KERAS_BACKEND") else "KERAS_BACKEND unset: tensorflow")
    raise UserError(f"Keras would run on TensorFlow here ({said}), which cannot be imported: "
                    "set KERAS_BACKEND=jax (or --backend jax) to run under JAX, or install "
                    "requirements.txt")


def choose(name: str | None) -> str:
    """Makes `name` (or KERAS_BACKEND, else TensorFlow) this process's
    backend and returns it, before Keras is imported (train.py and
    eval.py's --backend); a UserError as `check` says."""
    name = check(name)
    if "keras" not in sys.modules:
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


def quiet_tensorflow_for_keras() -> None:
    """Before Keras is first imported: TensorFlow imported quietly
    (`runtime.quiet_tensorflow`: no start-up chatter) where Keras will run
    on it and it is installed; nothing under JAX."""
    from tagger.runtime import quiet_tensorflow, tensorflow_installed

    if current() == "tensorflow" and tensorflow_installed():
        quiet_tensorflow()


def without_keras_on_tensorflow() -> str | None:
    """Why what needs Keras on TensorFlow (a SavedModel, a TFLite
    conversion: TensorFlow's own formats) cannot run in this process:
    TensorFlow cannot be imported here, or Keras runs on another backend;
    None where it can."""
    from tagger.runtime import tensorflow_installed

    if not tensorflow_installed():
        return "TensorFlow cannot be imported here"
    if current() != "tensorflow":
        return f"Keras runs on {current()} in this process (KERAS_BACKEND)"
    return None


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
