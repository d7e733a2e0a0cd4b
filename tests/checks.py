"""Standard checks every custom layer and model goes through.

`check_layer` asserts, for a layer built from `make_layer()`:
1. get_config -> from_config gives an equal config;
2. a model holding the layer, saved as .keras and as .hdf5, loads with a
   plain `keras.models.load_model` (no custom_objects) and predicts the
   same values;
3. one training step of that model on a fixed batch runs and changes the
   weights.
"""

from __future__ import annotations

import numpy as np
import keras


def check_layer(make_layer, input_shape, tmp_path, atol=1e-5, seed=0):
    """Runs the standard checks on a layer; returns the test model."""
    layer = make_layer()
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()

    inputs = keras.Input(input_shape)
    features = layer(inputs)
    pooled = keras.layers.Flatten()(features)
    outputs = keras.layers.Dense(3, activation="sigmoid", name="check_head")(pooled)
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(seed).standard_normal((4, *input_shape)).astype("float32")
    y = (np.arange(12).reshape(4, 3) % 2).astype("float32")
    check_saved_model(model, x, tmp_path, atol=atol)
    check_training_step(model, x, y)
    return model


def check_saved_model(model, x, tmp_path, atol=1e-5):
    """Saves `model` as .keras and .hdf5, reloads both, compares outputs."""
    expected = _as_arrays(model.predict(x, verbose=0))
    for suffix in ("keras", "hdf5"):
        path = tmp_path / f"{model.name}_check.{suffix}"
        model.save(path)
        reloaded = keras.models.load_model(path)
        got = _as_arrays(reloaded.predict(x, verbose=0))
        assert len(got) == len(expected)
        for a, b in zip(expected, got):
            np.testing.assert_allclose(b, a, atol=atol, err_msg=suffix)


def check_training_step(model, x, y):
    """One optimiser step on a fixed batch must change the weights and give
    a finite loss."""
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="binary_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    after = model.get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))


def _as_arrays(outputs):
    if isinstance(outputs, dict):
        return [np.asarray(outputs[k]) for k in sorted(outputs)]
    if isinstance(outputs, (list, tuple)):
        return [np.asarray(o) for o in outputs]
    return [np.asarray(outputs)]


def call_main(main, capsys, *argv):
    """Runs a command-line `main(argv)` in-process; returns (exit code,
    stdout, stderr), argparse's own exits included."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as exit:
        code = exit.code
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, *fragments):
    """A user's mistake: exit code 2, one line on stderr holding every
    fragment, no traceback."""
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, err


def read_only_path(name: str) -> str:
    """A path under a folder that refuses new files even to root (chmod
    does not stop root): /sys, where nothing but the kernel creates
    entries. Skips the test where /sys accepts a new file."""
    import os

    import pytest

    probe = os.path.join("/sys", ".tagger-probe")
    try:
        with open(probe, "wb"):
            pass
    except OSError:
        return os.path.join("/sys", name)
    os.remove(probe)
    pytest.skip("/sys accepts new files here")


def run_json_script(path, source: str, *args, timeout: int = 300) -> dict:
    """Writes `source` to `path`, runs it with this Python in a fresh
    process (with `args`) and returns the JSON object it printed last."""
    import json
    import subprocess
    import sys

    path.write_text(source)
    result = subprocess.run([sys.executable, str(path), *map(str, args)],
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def tiny_conv_tagger(samples: int = 64, tags: int = 5, seed: int = 1):
    """A seeded 4-filter 1-D CNN tagger, (batch, samples) -> (batch, tags)
    sigmoid scores: small enough to compare training steps exactly."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((samples,))
    x = keras.layers.Reshape((samples, 1))(inputs)
    x = keras.layers.Conv1D(4, 3, strides=3, activation="relu")(x)
    x = keras.layers.GlobalMaxPooling1D()(x)
    return keras.Model(inputs, keras.layers.Dense(tags, activation="sigmoid")(x))
