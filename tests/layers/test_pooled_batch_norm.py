"""PooledBatchNorm: the batch norm after a ReLU convolution, moved to
after the max pooling, gives the same outputs."""

import keras
import numpy as np

from tagger.layers import InferenceConv2D, PooledBatchNorm
from tests.checks import check_layer
from tests.layers.test_inference_conv2d import conv, image


def test_pooled_batch_norm_after_the_pooling_gives_the_batch_norm_before_it():
    """max over the width of bn(relu(z)) = PooledBatchNorm of the max of
    signs * z, signs the signs of the batch norm's scale (some negative)."""
    from tagger.layers.pooled_batch_norm import batch_norm_signs

    wrapped = conv((7, 5), "valid")
    bn = keras.layers.BatchNormalization()
    bn.build((None, 34, 8, 5))
    gamma = np.array([1.5, -0.7, 0.0, -2.0, 0.3], np.float32)
    bn.set_weights([gamma, np.linspace(-1, 1, 5, dtype="float32"),
                    np.linspace(0.5, -0.5, 5, dtype="float32"),
                    np.linspace(0.5, 2.0, 5, dtype="float32")])
    x = image(seed=3)
    expected = np.asarray(bn(wrapped(x), training=False)).max(axis=2, keepdims=True)
    chosen = batch_norm_signs(bn)
    assert chosen == [1.0, -1.0, 1.0, -1.0, 1.0]
    pooled = InferenceConv2D(wrapped, signs=chosen, pool_width=True)(x)
    np.testing.assert_allclose(np.asarray(PooledBatchNorm(bn, chosen)(pooled)), expected,
                               atol=1e-4)


def test_standard_layer_checks(tmp_path):
    check_layer(lambda: PooledBatchNorm(keras.layers.BatchNormalization(), [1, -1, 1]),
                (7, 3), tmp_path)
