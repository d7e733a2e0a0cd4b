"""The training step computes one-channel convolutions as stacked taps
(tagger.models.training_graph): the same layers and variables, the same
losses and weights as the plain convolutions, step by step."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tagger.models import FAMILIES
from tagger.training import trainer

BATCH = 2


def tiny_model(family):
    spec = FAMILIES[family]
    keras.utils.set_random_seed(0)
    return spec.build(num_tags=5, **spec.tiny)


def batch_of(model):
    rng = np.random.default_rng(0)
    windows = 0.1 * rng.standard_normal((BATCH, model.input_shape[1]))
    tags = rng.random((BATCH, 5)) < 0.4
    return windows.astype(np.float32), tags.astype(np.float32)


def three_steps(family):
    """The losses of three training steps of the tiny `family` and its
    weights after them."""
    model = tiny_model(family)
    strategy = tf.distribute.get_strategy()
    optimizer = keras.optimizers.SGD(0.05, momentum=0.9, nesterov=True)
    train = trainer.make_train_function(model, optimizer, strategy, global_batch=BATCH)
    iterator = iter(tf.data.Dataset.from_tensors(batch_of(model)).repeat())
    losses = [float(train(iterator, 1)) for _ in range(3)]
    return losses, [np.asarray(v) for v in model.weights], train, iterator


@pytest.mark.parametrize("family", ["pons_musicnn", "musicnn"])
def test_the_step_runs_one_channel_convolutions_as_taps(family):
    *_, train, iterator = three_steps(family)
    graph = train.get_concrete_function(iterator, 1).graph
    names = {op.name for op in graph.get_operations()}
    taps = {layer.name for layer in tiny_model(family).layers
            if any(f"/{layer.name}_taps" in name for name in names)}
    assert taps == {"timbral1_conv", "timbral2_conv"} | (
        {"temporal1_conv", "temporal2_conv", "temporal3_conv"} if family == "pons_musicnn"
        else set())


@pytest.mark.parametrize("family", ["pons_musicnn", "musicnn"])
def test_taps_train_as_the_plain_convolutions(family, monkeypatch):
    losses, weights, *_ = three_steps(family)
    monkeypatch.setattr(trainer, "training_model", lambda model: model)
    plain_losses, plain_weights, *_ = three_steps(family)
    np.testing.assert_allclose(losses, plain_losses, rtol=1e-5)
    assert len(weights) == len(plain_weights)
    for value, plain in zip(weights, plain_weights):  # float32 sums in another order
        np.testing.assert_allclose(value, plain, rtol=1e-4, atol=1e-4)
    assert losses[2] < losses[0]  # it trains


def test_the_training_form_shares_the_models_variables():
    from tagger.models.training_graph import training_model

    model = tiny_model("pons_musicnn")
    fast = training_model(model)
    assert fast is not model
    assert [id(v) for v in fast.trainable_variables] == [
        id(v) for v in model.trainable_variables]
    x, _ = batch_of(model)
    np.testing.assert_allclose(fast(x, training=False), model(x, training=False),
                               rtol=1e-5, atol=1e-6)
    for family in ("samplecnn", "multiscale", "pons_vgg"):  # 1-D, or kernels of 3 rows
        model = tiny_model(family)
        assert training_model(model) is model
