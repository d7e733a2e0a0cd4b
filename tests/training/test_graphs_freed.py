"""A traced training step is freed with its function: the custom gradients
TensorFlow registers while tracing it (the training forms' own, tf.distribute's
all-reduce) are held by its graph, not by the process's registry
(tagger.models.training_sums.gradients_held_by_graph)."""

import gc
import weakref

import keras
import numpy as np
import tensorflow as tf

from tagger.models import training_sums
from tagger.training import trainer


def registered_gradients() -> set[str]:
    """The names in TensorFlow's registry of gradient functions (fails
    where `gradient_registry` cannot read it: requirements.txt)."""
    return set(training_sums.gradient_registry())


def traced_and_freed(make):
    """Traces `make()`'s (function, arguments), runs it, lets it go: returns
    (its result, whether its graph is still alive after a collection, the
    gradients it left registered)."""
    before = registered_gradients()
    function, arguments = make()
    result = function(*arguments)
    graph = weakref.ref(function.get_concrete_function(*arguments).graph)
    del function, arguments
    gc.collect()
    return result, graph() is not None, registered_gradients() - before


def test_a_custom_gradient_is_freed_with_its_graph_and_named_in_the_backward_scope():
    y = tf.constant(np.arange(12, dtype=np.float32).reshape(4, 3))

    def make():
        @tf.function
        def step(y, bias):
            with tf.GradientTape() as tape:
                tape.watch(bias)
                with tf.name_scope("block"):
                    loss = tf.reduce_sum(training_sums.bias_added(y, bias) ** 2)
            return tape.gradient(loss, bias)

        return step, (y, tf.ones(3))

    gradient, alive, left = traced_and_freed(make)
    np.testing.assert_allclose(gradient, 2 * (y.numpy() + 1).sum(0))
    assert not alive and not left

    before = registered_gradients()
    function, arguments = make()
    graph = function.get_concrete_function(*arguments).graph
    products = [op.name for op in graph.get_operations() if op.type == "MatMul"]
    assert products and all(name.startswith("gradient_tape/block/") for name in products)
    assert len(graph.get_collection(training_sums.HELD_GRADIENTS)) == 1
    assert len(registered_gradients() - before) == 1  # while its graph lives


def test_a_distributed_training_step_is_freed_with_its_function():
    keras.utils.set_random_seed(0)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        inputs = keras.Input((6,))
        model = keras.Model(inputs, keras.layers.Dense(2, activation="sigmoid")(inputs))
        optimizer = keras.optimizers.SGD(0.1)
    batches = tf.data.Dataset.from_tensors((tf.ones((4, 6)), tf.ones((4, 2)))).repeat()

    def make():
        train = trainer.make_train_function(model, optimizer, strategy, global_batch=4)
        return train, (iter(strategy.experimental_distribute_dataset(batches)), 1)

    loss, alive, left = traced_and_freed(make)
    assert np.isfinite(float(loss)) and float(loss) > 0
    assert not alive and not left
