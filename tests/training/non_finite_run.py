"""A run stopped by a non-finite loss, shared by the tests of it under
TensorFlow (tests/training/test_train.py, in their process) and JAX
(tests/training/test_jax_backend.py, a script's process)."""

from __future__ import annotations

import numpy as np


def stopped_by_a_non_finite_loss(records, train_dir) -> dict:
    """The tiny run in `train_dir` (`presets.tiny_train_config`, finished)
    started again at its second stage (`initial_stage`) at a learning rate
    that --lr refuses, 1e30, given through the config: what it raised, its
    folder's files (sha256) before and after, its state.json's epoch and
    last checkpoint, and whether that checkpoint's values are all finite
    (JSON-able, for a script under JAX too)."""
    import hashlib
    import json
    import os

    from tagger.training.run import train
    from tests.presets import tiny_train_config

    run_dir = os.path.join(str(train_dir), "samplecnn-basic-multi")

    def files():
        return {os.path.relpath(os.path.join(folder, name), run_dir):
                hashlib.sha256(open(os.path.join(folder, name), "rb").read()).hexdigest()
                for folder, _, names in os.walk(run_dir) for name in names
                if not name.startswith("events.") and name != "config.json"}

    before, raised = files(), None
    try:
        train(tiny_train_config(records, str(train_dir), initial_stage=1, lr=1e30,
                                evaluate_test=False))
    except Exception as error:  # noqa: BLE001  reported, for the test to judge
        raised = f"{type(error).__name__}: {error}"
    state = json.loads(open(os.path.join(run_dir, "state.json")).read())
    with np.load(os.path.join(run_dir, "checkpoints",
                              f"{state['last_checkpoint']}.npz")) as saved:
        finite = all(np.isfinite(saved[key]).all() for key in saved.files
                     if saved[key].dtype.kind == "f")
    return {"raised": raised, "before": before, "after": files(), "epoch": state["epoch"],
            "last_checkpoint": state["last_checkpoint"], "finite": finite}
