"""The training steps take windows as the records store them: int16
windows train exactly as their float32 conversion does."""

import keras
import numpy as np
import tensorflow as tf

from tagger.audio import INT16_SCALE
from tagger.training.trainer import make_train_function
from tests.checks import tiny_conv_tagger


def two_steps(windows, tags):
    strategy = tf.distribute.get_strategy()
    model = tiny_conv_tagger()
    optimizer = keras.optimizers.SGD(0.5, momentum=0.9)
    data = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensors((windows, tags)).repeat())
    train = make_train_function(model, optimizer, strategy, global_batch=8)
    iterator = iter(data)
    losses = [float(train(iterator, 1)), float(train(iterator, 1))]
    return losses, np.asarray(model.layers[-1].kernel)


def test_int16_windows_train_as_their_float32_conversion():
    rng = np.random.default_rng(0)
    stored = rng.integers(-20000, 20000, (8, 64)).astype(np.int16)
    tags = (rng.random((8, 5)) < 0.4).astype(np.float32)
    as_float = stored.astype(np.float32) / np.float32(INT16_SCALE)
    float_losses, float_kernel = two_steps(as_float, tags)
    int_losses, int_kernel = two_steps(stored, tags)
    np.testing.assert_allclose(int_losses, float_losses, rtol=1e-6)
    np.testing.assert_allclose(int_kernel, float_kernel, rtol=1e-5, atol=1e-7)
    assert float_losses[1] < float_losses[0]  # it trains
    # unscaled int16 would be a different input altogether
    raw_losses, _ = two_steps(stored.astype(np.float32), tags)
    assert abs(raw_losses[0] - float_losses[0]) > 1e-3
