"""InferenceConv2D: a trained Conv2D computed in faster forms, giving its
outputs."""

import keras
import numpy as np
import pytest

from tagger.layers import InferenceConv2D
from tagger.layers.inference_conv2d import MAX_TAPS
from tests.checks import check_layer


def conv(kernel, padding, filters=5, seed=0):
    """A built Conv2D of one input channel with random weights and a ReLU."""
    layer = keras.layers.Conv2D(filters, kernel, padding=padding, activation="relu")
    layer.build((None, 40, 12, 1))
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.standard_normal(w.shape).astype("float32")
                       for w in layer.get_weights()])
    return layer


def signs(filters=5):
    return [1.0, -1.0, -1.0, 1.0, -1.0][:filters]


def image(seed=1):
    return np.random.default_rng(seed).standard_normal((2, 40, 12, 1)).astype("float32")


@pytest.mark.parametrize("kernel, padding, form", [
    ((7, 5), "valid", "taps"),  # musicnn's timbral filters, in small
    ((3, 3), "same", "taps"),
    ((MAX_TAPS + 4, 1), "same", "taps"),  # taller than MAX_TAPS: dilated rows
    ((MAX_TAPS + 4, 3), "valid", "taps"),
])
def test_taps_give_the_convolutions_output(kernel, padding, form):
    wrapped = conv(kernel, padding)
    x = image()
    for max_taps in (MAX_TAPS, 3):  # inference's, and fewer shifts at more dilated rows
        layer = InferenceConv2D(wrapped, max_taps=max_taps)
        got = np.asarray(layer(x))
        assert layer.form == form
        np.testing.assert_allclose(got, np.asarray(wrapped(x)), atol=1e-4)


@pytest.mark.parametrize("kernel, padding, form", [
    ((7, 5), "valid", "taps"),
    ((2 * MAX_TAPS, 1), "same", "polyphase"),  # musicnn's temporal filters, in small
    ((MAX_TAPS + 5, 3), "same", "polyphase"),  # rows that do not fill the last block
    ((MAX_TAPS + 5, 3), "valid", "polyphase"),
])
def test_signs_and_pooling_over_the_width_give_the_max_of_the_signed_convolution(
        kernel, padding, form):
    """With signs and pool_width: max over the width of signs * (the
    convolution before its ReLU), as a MaxPooling2D over the whole width."""
    wrapped = conv(kernel, padding)
    layer = InferenceConv2D(wrapped, signs=signs(), pool_width=True)
    x = image()
    got = np.asarray(layer(x))
    assert layer.form == form
    linear = np.asarray(keras.ops.conv(x, wrapped.kernel, padding=padding)) + wrapped.bias
    expected = (linear * np.array(signs(), np.float32)).max(axis=2, keepdims=True)
    assert got.shape == expected.shape == (2, expected.shape[1], 1, 5)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_a_convolution_of_several_channels_is_computed_as_it_is():
    wrapped = keras.layers.Conv2D(4, 3, padding="same")
    x = np.random.default_rng(2).standard_normal((2, 9, 7, 3)).astype("float32")
    layer = InferenceConv2D(wrapped)
    np.testing.assert_allclose(np.asarray(layer(x)), np.asarray(wrapped(x)), atol=1e-5)
    assert layer.form == "conv"


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="signs must be"):
        InferenceConv2D(conv((3, 3), "same"), signs=[1.0, 0.5, 1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="one value per filter"):
        InferenceConv2D(conv((3, 3), "same"), signs=[1.0, -1.0])(image())
    with pytest.raises(ValueError, match="pool_width goes with signs"):
        InferenceConv2D(conv((3, 3), "same"), pool_width=True)


def test_standard_layer_checks(tmp_path):
    check_layer(lambda: InferenceConv2D(keras.layers.Conv2D(3, (5, 2), padding="same"),
                                        name="inference"), (12, 6, 1), tmp_path)
    check_layer(lambda: InferenceConv2D(keras.layers.Conv2D(3, (20, 2)), signs=[1, -1, 1],
                                        pool_width=True), (24, 6, 1), tmp_path)
