"""The sample-level CNNs' stem norm trains from the statistics of the
waveform's frames (tagger.models.stem_norm): the same outputs, gradients
and moving statistics as the convolution and the norm."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tagger.models import training_graph
from tagger.models.stem_norm import NormedStem, stem_norm


def stem(samples=60, width=3, filters=8, channels=1, strides=None, before=None):
    """A model: input (samples, channels) -> [before] -> Conv1D -> BN -> ReLU."""
    inputs = keras.Input((samples, channels))
    x = before(inputs) if before is not None else inputs
    x = keras.layers.Conv1D(filters, width, strides=strides or width, name="conv")(x)
    x = keras.layers.BatchNormalization(momentum=0.9, name="norm")(x)
    return keras.Model(inputs, keras.layers.ReLU()(x))


def test_which_convolutions_have_their_norm_trained_from_the_inputs_frames():
    model = stem()
    assert stem_norm(model, model.get_layer("conv")) is model.get_layer("norm")
    assert stem_norm(model, model.get_layer("norm")) is None
    overlapping = stem(strides=1)
    assert stem_norm(overlapping, overlapping.get_layer("conv")) is None
    weighted = stem(before=keras.layers.Dense(1))  # an input a weight acts on
    assert stem_norm(weighted, weighted.get_layer("conv")) is None
    normed = stem(before=keras.layers.BatchNormalization(trainable=False))  # a frozen one's
    assert stem_norm(normed, normed.get_layer("conv")) is None
    assert any(isinstance(layer, NormedStem)
               for layer in training_graph.training_model(model).layers)


@pytest.mark.parametrize("samples, channels", [(60, 1), (61, 2), (120_001, 1)])
def test_the_stem_norm_trains_as_the_convolution_then_the_norm(samples, channels):
    """Outputs, the gradients of every weight, and the moving statistics,
    against the model's own layers in float64, on a waveform of nonzero
    mean (and a tail the stride leaves out): to float32 rounding, over
    200,000 frames too (sums of the rows in one sequence are 1e-5 off)."""
    rng = np.random.default_rng(0)
    x = 0.3 + 0.5 * rng.standard_normal((5, samples, channels))
    upstream = rng.standard_normal((5, samples // 3, 8))
    models = {}
    for dtype in ("float32", "float64"):
        keras.config.set_dtype_policy(dtype)
        try:
            keras.utils.set_random_seed(0)
            models[dtype] = stem(samples, channels=channels)
        finally:
            keras.config.set_dtype_policy("float32")
    start = [np.asarray(v) for v in models["float32"].weights]
    start[1] = rng.standard_normal(8)  # the convolution's bias
    start[2], start[3] = rng.uniform(-1.5, 1.5, 8), rng.standard_normal(8)  # gamma, beta

    def run(dtype, fast):
        model = models[dtype]
        conv, norm = model.get_layer("conv"), model.get_layer("norm")
        for variable, value in zip(model.weights, start):
            variable.assign(np.asarray(value, dtype))
        forward = NormedStem(norm, conv) if fast else lambda v, training: norm(
            conv(v), training=training)
        with tf.GradientTape() as tape:
            y = forward(tf.constant(x, dtype), training=True)
            loss = tf.reduce_sum(y * tf.constant(upstream, dtype))
        gradients = tape.gradient(loss, model.trainable_weights)
        return [np.asarray(v, np.float64) for v in
                [y, *gradients, norm.moving_mean, norm.moving_variance]]

    got, exact = run("float32", True), run("float64", False)
    for value, expected in zip(got, exact):
        assert value.shape == expected.shape
        assert np.max(np.abs(value - expected)) <= 1e-5 * np.max(np.abs(expected)) + 1e-6
