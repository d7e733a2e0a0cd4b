"""The chain under Keras's JAX backend, in one process of its own where
`import tensorflow` fails: inside `jax.jit` on a traced seed and step, it
draws what it draws under TensorFlow (keys, flags and choices bit for bit,
parameters and noise to round-off) and computes the same augmented
windows to float32 round-off; the same seed gives the same windows on
every call.

The windows' tolerance, 5e-3: the pitch shift reads its input at float32
positions up to 4095 (an ulp of 5e-4 samples) from a ratio 2 ** (s / 12)
that each backend's power function may round to another ulp (2.4e-4
samples at the ends); XLA also fuses multiply-adds. A position off by
1e-3 samples moves a linear interpolation by 1e-3 times the signal's slope
between samples, at most 2 for these noised tones: 2e-3 in the worst case,
5e-5 seen. Every other transform differs by the backends' FFT and
transcendental functions' round-off, 1e-6 of the signal.
"""

from __future__ import annotations

import pathlib
import textwrap

import numpy as np
import pytest

from tagger.augment import (
    Augmentation,
    augment,
    delay,
    filters,
    gain,
    noise,
    pitch_shift,
    polarity,
    reverb,
    step_seed,
)
from tagger.augment.chain import AugmentConfig
from tagger.augment.threefry import as_key, split
from tests.checks import run_json_script, without_tensorflow_env

pytest.importorskip("jax", reason="the JAX backend's tests need requirements-jax.txt")

ROOT = pathlib.Path(__file__).parents[2]
SR = 22050
EVERY = AugmentConfig(1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)  # every transform on every window
TOLERANCE = 5e-3

SCRIPT = textwrap.dedent("""
    import json, os, sys
    sys.path.insert(0, {root!r})
    os.environ["KERAS_BACKEND"] = "jax"
    import jax
    import jax.numpy as jnp
    import numpy as np

    from tagger.augment import Augmentation, augment, step_seed
    from tests.augment.test_backends import EVERY, SR, draws, windows
    from tagger.augment.threefry import fold_in

    x = windows()

    @jax.jit
    def step(x, seed, step):
        return {{"every": augment(x, seed, SR, EVERY), "draws": draws(seed, len(x)),
                "key": step_seed(3, step, 1, 1),
                "augmentation": Augmentation(SR, seed=3, stream=1)(x, step)}}

    seed = jnp.array([1, 2], jnp.uint32)
    first, again = step(x, seed, jnp.int32(5)), step(x, seed, jnp.int32(5))
    other = step(x, jnp.array([1, 3], jnp.uint32), jnp.int32(6))
    key = jax.random.wrap_key_data(jnp.array([7, 9], jnp.uint32), impl="threefry2x32")
    import sitecustomize
    print(json.dumps({{
        "every": np.asarray(first["every"]).tolist(),
        "again": bool(np.array_equal(first["every"], again["every"])),
        "other_differs": float(np.abs(first["every"] - other["every"]).mean()),
        "draws": {{k: np.asarray(v).tolist() for k, v in first["draws"].items()}},
        "key": np.asarray(first["key"]).tolist(),
        "augmentation": np.asarray(first["augmentation"]).tolist(),
        "fold_in": [np.asarray(fold_in(jnp.array([7, 9], jnp.uint32), 123)).tolist(),
                    np.asarray(jax.random.key_data(jax.random.fold_in(key, 123))).tolist()],
        "backend": __import__("keras").backend.backend(),
        "tensorflow_asked_for": sitecustomize.BLOCKED}}))
""")


def windows():
    """(3, 4096) tones of 200 Hz to 2 kHz with a little noise, float32."""
    rng = np.random.default_rng(0)
    t = np.arange(4096) / SR
    tones = 0.5 * np.sin(2 * np.pi * rng.uniform(200, 2000, (3, 1)) * t)
    return (tones + 0.05 * rng.normal(size=(3, 4096))).astype(np.float32)


def draws(seed, batch: int) -> dict:
    """Every transform's draws from the keys the chain gives it."""
    keys = split(as_key(seed), 7)
    drawn = {"polarity": polarity.draw(keys[0], batch), "noise": noise.draw(keys[1], batch, 5),
             "gain": gain.draw(keys[2], batch), "filter": filters.draw(keys[3], batch),
             "delay": delay.draw(keys[4], batch, SR),
             "pitch_shift": pitch_shift.draw(keys[5], batch),
             "reverb": reverb.draw(keys[6], batch, 20)}  # at 20 Hz: tails of 20 taps
    return {f"{name}.{k}": v for name, d in drawn.items() for k, v in d.items()}


@pytest.mark.slow
def test_jax_draws_and_augments_as_tensorflow_does(tmp_path):
    import tensorflow as tf

    out = run_json_script(tmp_path / "jax_chain.py", SCRIPT.format(root=str(ROOT)),
                          env=without_tensorflow_env())
    assert out["backend"] == "jax" and out["tensorflow_asked_for"] == []
    assert out["fold_in"][0] == out["fold_in"][1]  # JAX's own fold_in of a threefry key
    # the same draws: flags and choices bit for bit (integer ops); parameters
    # to 1e-6 of their scale (XLA fuses low + (high - low) u into one
    # multiply-add, rounding once where TensorFlow's kernels round twice: an
    # ulp of (high - low) u, 1e-6 of the scale at most); the noise to the
    # round-off of each backend's log, sqrt, cos and sin (Box-Muller)
    expected = {k: np.asarray(v) for k, v in draws(tf.constant([1, 2]), 3).items()}
    assert set(out["draws"]) == set(expected)
    for name, values in out["draws"].items():
        values = np.asarray(values, expected[name].dtype)
        if name.endswith(".noise"):
            np.testing.assert_allclose(values, expected[name], rtol=1e-5, atol=1e-6)
        elif values.dtype == np.float32:
            scale = max(1.0, np.abs(expected[name]).max())
            np.testing.assert_allclose(values, expected[name], rtol=0, atol=1e-6 * scale)
        else:
            np.testing.assert_array_equal(values, expected[name], err_msg=name)
    assert out["key"] == step_seed(3, 5, 1, 1).numpy().tolist()
    # the same windows to round-off; the same on every call; another seed, others
    x = windows()
    np.testing.assert_allclose(out["every"], augment(x, tf.constant([1, 2]), SR, EVERY),
                               rtol=0, atol=TOLERANCE)
    np.testing.assert_allclose(out["augmentation"], Augmentation(SR, seed=3, stream=1)(x, 5),
                               rtol=0, atol=TOLERANCE)
    assert out["again"] and out["other_differs"] > 0.05
