"""Keras's backend for a process (tagger/backends.py): the one check every
command makes, read without importing Keras again (this process's Keras
runs on TensorFlow), and what asks for Keras on TensorFlow or reads the
machine under JAX."""

from __future__ import annotations

import sys
import types

import pytest

from tagger import backends
from tagger.errors import UserError


@pytest.fixture(autouse=True)
def _keras_on_tensorflow(monkeypatch):
    import keras

    assert keras.backend.backend() == "tensorflow"
    monkeypatch.delenv("KERAS_BACKEND", raising=False)


@pytest.mark.parametrize("value", ["torch", "JAX", "numpy", "Tensorflow"])
def test_a_backend_tagger_does_not_run_on_is_refused(value, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", value)
    with pytest.raises(UserError) as refused:
        backends.check()
    assert str(refused.value) == (
        f"KERAS_BACKEND {value!r} is not a Keras backend tagger runs on; valid: tensorflow, "
        "jax, in lower case as Keras reads them (set KERAS_BACKEND to one, or leave it "
        "unset: tensorflow)")
    with pytest.raises(UserError, match=r"^--backend 'torch' is not"):
        backends.choose("torch")


def test_the_backend_keras_runs_on_is_checked_against_the_one_asked_for(monkeypatch):
    assert backends.check() == "tensorflow"  # unset: the one Keras runs on
    monkeypatch.setenv("KERAS_BACKEND", "")  # empty: unset, as Keras reads it
    assert backends.check() == "tensorflow"
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    with pytest.raises(UserError) as refused:
        backends.check()
    assert str(refused.value) == ("Keras runs on tensorflow in this process already; start a "
                                  "new process with KERAS_BACKEND=jax")
    assert backends.choose("tensorflow") == "tensorflow"


def test_choose_sets_the_variable_only_before_keras_is_imported(monkeypatch):
    import os

    monkeypatch.delitem(sys.modules, "keras")  # as if not imported yet
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert backends.choose(None) == "jax" and os.environ["KERAS_BACKEND"] == "jax"
    monkeypatch.delenv("KERAS_BACKEND")
    assert backends.choose(None) == "tensorflow" and os.environ["KERAS_BACKEND"] == "tensorflow"


def test_what_only_tensorflow_writes_says_why_it_cannot(monkeypatch):
    from tagger import runtime
    from tagger.inference.export.formats import check_tensorflow

    assert backends.without_keras_on_tensorflow() is None
    check_tensorflow("a SavedModel", "do this")  # nothing to refuse here
    monkeypatch.setattr(backends, "current", lambda: "jax")
    with pytest.raises(UserError) as refused:
        check_tensorflow("--format saved_model: a SavedModel", "do this")
    assert str(refused.value) == (
        "--format saved_model: a SavedModel is TensorFlow's own format, written by TensorFlow "
        "from Keras on TensorFlow, and Keras runs on jax in this process (KERAS_BACKEND); "
        "do this")
    monkeypatch.setattr(runtime, "tensorflow_installed", lambda: False)
    assert backends.without_keras_on_tensorflow() == "TensorFlow cannot be imported here"


def fake_jax(monkeypatch, *devices):
    """`jax.devices()` giving `devices` ((platform, device_kind, compute
    capability or None), ...), with JAX the backend."""
    listed = [types.SimpleNamespace(platform=platform, device_kind=kind,
                                    **({"compute_capability": cc} if cc else {}))
              for platform, kind, cc in devices]
    monkeypatch.setitem(sys.modules, "jax", types.SimpleNamespace(
        devices=lambda: listed, __version__="0.0-test"))
    monkeypatch.setattr(backends, "current", lambda: "jax")


@pytest.mark.parametrize("devices, capability", [
    ([("cpu", "cpu", None)], None),
    ([("gpu", "NVIDIA H100", "9.0")], (9, 0)),
    ([("gpu", "NVIDIA T4", "7.5"), ("gpu", "NVIDIA H100", "9.0")], (7, 5)),
    ([("gpu", "a GPU", None)], ()),
])
def test_under_jax_the_gpu_capability_is_jaxs_first_gpus(monkeypatch, devices, capability):
    from tagger import cpu_features

    fake_jax(monkeypatch, *devices)
    assert cpu_features.gpu_capability() == capability


def test_under_jax_timings_depend_on_jaxs_gpus_and_version(monkeypatch):
    import keras

    from tagger import timing_cache

    under_tensorflow = timing_cache.machine_fields()
    fake_jax(monkeypatch, ("gpu", "NVIDIA H100", "9.0"))
    fields = timing_cache.machine_fields()
    assert {key: value for key, value in fields.items() if key not in ("gpus", "jax")} == {
        key: value for key, value in under_tensorflow.items()
        if key not in ("gpus", "tensorflow")}
    assert fields["gpus"] == ["NVIDIA H100"] and fields["jax"] == "0.0-test"
    assert fields["keras"] == keras.__version__ and "tensorflow" not in fields
