"""PhiloxDropout: keras.layers.Dropout's behaviour, with a mask that XLA
compiles well on a CPU."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from tagger.layers import PhiloxDropout
from tests.checks import HANG_S, check_layer


def test_standard_layer_checks(tmp_path):
    check_layer(lambda: PhiloxDropout(0.3, seed=4, name="drop"), (12, 5), tmp_path)


@pytest.mark.parametrize("jit", [False, True])
def test_drops_the_rate_and_scales_the_rest(jit):
    layer = PhiloxDropout(0.2, seed=1)
    x = tf.ones((8, 4096, 4))
    call = tf.function(lambda v: layer(v, training=True), jit_compile=jit)
    y = call(x).numpy()
    kept = y != 0
    assert abs(kept.mean() - 0.8) < 0.01  # 131072 draws: the standard error is 0.0011
    np.testing.assert_allclose(y[kept], 1 / 0.8, rtol=1e-6)
    assert not np.array_equal(call(x).numpy() != 0, kept)  # each call draws a new mask
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x.numpy())


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_every_element_has_its_own_draw(dtype):
    """16 random bits an element: an odd count of elements, and neighbours
    (two halves of one 32-bit draw) kept together only as often as
    independent draws are."""
    layer = PhiloxDropout(0.4, seed=3, dtype=dtype)
    y = np.asarray(tf.cast(layer(tf.ones((7, 1001, 3), dtype), training=True), tf.float32))
    assert y.shape == (7, 1001, 3)
    kept = (y != 0).ravel()
    assert abs(kept.mean() - 0.6) < 0.01  # 21021 draws: the standard error is 0.0034
    together = (kept[:-1] == kept[1:]).mean()
    assert abs(together - (0.6 ** 2 + 0.4 ** 2)) < 0.02
    np.testing.assert_allclose(y[y != 0], 1 / 0.6, rtol=1e-2)


@pytest.mark.parametrize("rate", [1e-6, 0.999999])
def test_a_rate_near_zero_or_one_keeps_all_or_almost_none(rate):
    y = PhiloxDropout(rate, seed=5)(tf.ones((64, 1024)), training=True).numpy()
    kept = (y != 0).mean()
    assert kept == 1.0 if rate < 0.5 else kept < 1e-3
    np.testing.assert_allclose(y[y != 0], 1 / (1 - rate), rtol=1e-6)


def test_noise_shape_drops_whole_slices():
    layer = PhiloxDropout(0.5, noise_shape=(None, 1, 6), seed=2)
    y = layer(tf.ones((3, 50, 6)), training=True).numpy()
    assert np.all((y == 0).all(axis=1) | (y == 2).all(axis=1))  # a channel zeroed for every frame
    assert 0 < (y == 0).mean() < 1


def test_a_model_family_draws_its_dropout_with_philox():
    from tagger.models import build_model

    model = build_model("samplecnn", block="rese", width=0.125, input_length=3 ** 7)
    dropouts = [layer for layer in model.layers if "dropout" in layer.name]
    assert dropouts and all(type(layer) is PhiloxDropout for layer in dropouts)


@pytest.mark.slow
def test_under_another_keras_backend_it_is_keras_dropout():
    """Under Keras's JAX backend (TensorFlow not imported), the layer drops
    and scales as keras.layers.Dropout does."""
    pytest.importorskip("jax")
    code = ("import sys, numpy as np, keras\n"
            "from tagger.layers.philox_dropout import PhiloxDropout\n"
            "layer = PhiloxDropout(0.2, seed=1)\n"
            "x = np.ones((8, 4096, 4), 'float32')\n"
            "y = keras.ops.convert_to_numpy(layer(x, training=True))\n"
            "same = np.array_equal(keras.ops.convert_to_numpy(layer(x, training=False)), x)\n"
            "print(keras.backend.backend(), 'tensorflow' in sys.modules, same, (y != 0).mean(),\n"
            "      *np.unique(y[y != 0]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "KERAS_BACKEND": "jax"}, timeout=HANG_S,
                          cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr[-3000:]
    backend, tensorflow_imported, same, kept, *scales = done.stdout.split()
    assert (backend, tensorflow_imported, same) == ("jax", "False", "True")
    assert abs(float(kept) - 0.8) < 0.01
    assert [float(scale) for scale in scales] == pytest.approx([1 / 0.8])
