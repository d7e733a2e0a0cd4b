"""PhiloxDropout: keras.layers.Dropout's behaviour, with a mask that XLA
compiles well on a CPU."""

import numpy as np
import pytest
import tensorflow as tf

from tagger.layers import PhiloxDropout
from tests.checks import check_layer


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
