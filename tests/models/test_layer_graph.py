"""The layer graph of a functional model, from its public config: calls
counted in the model asked about (not in another model sharing the layer),
readers, the only reader, the outputs in `model.outputs`' order."""

import keras

from tagger.models.layer_graph import (
    calls,
    inputs_of,
    layer_graph,
    only_reader,
    output_layer,
    readers,
)


def shared_model():
    """conv -> bn -> relu -> dense -> conv again (a shared layer), the
    model's outputs the sum of the second conv with itself and the relu."""
    x = keras.Input((8, 4), name="x")
    conv = keras.layers.Conv1D(4, 3, padding="same", name="conv")
    relu = keras.layers.ReLU(name="relu")(keras.layers.BatchNormalization(name="bn")(conv(x)))
    again = conv(keras.layers.Dense(4, name="dense")(relu))
    return keras.Model(x, [keras.layers.Add(name="add")([again, again]), relu])


def test_calls_and_readers_are_the_models_own():
    model = shared_model()
    layer = model.get_layer
    assert calls(model, layer("conv")) == 2 and calls(model, layer("bn")) == 1
    assert [reader.name for reader in readers(model, layer("conv"))] == ["bn", "add"]
    assert [reader.name for reader in readers(model, layer("relu"))] == ["dense"]
    assert [source.name for source in inputs_of(model, layer("add"))] == ["conv"]  # once
    assert only_reader(model, layer("bn")).name == "relu"
    assert only_reader(model, layer("relu")) is None  # one of the model's outputs
    assert only_reader(model, layer("conv")) is None  # called twice
    assert layer_graph(model).outputs == ("add", "relu")
    # a model sharing the layers (as a training form does) counts its own calls
    clone = keras.models.clone_model(model, clone_function=lambda shared: shared)
    assert clone.get_layer("conv") is layer("conv")
    assert calls(clone, layer("conv")) == 2 and calls(model, layer("conv")) == 2
    part = keras.Model(model.input, model.get_layer("bn").output)
    assert calls(part, layer("conv")) == 1 and only_reader(part, layer("conv")).name == "bn"
    assert [reader.name for reader in readers(part, layer("conv"))] == ["bn"]


def test_the_output_layer_is_that_of_the_first_output():
    x = keras.Input((3,))
    scores = keras.layers.Dense(2, name="scores")(x)
    embedding = keras.layers.Dense(2, name="embedding")(x)
    for outputs, first in (([scores, embedding], "scores"), (scores, "scores"),
                           ({"scores": scores, "embeddings": embedding}, "embedding")):
        model = keras.Model(x, outputs)
        assert output_layer(model).name == first == model.output_names[0]
    sequential = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="last")])
    assert layer_graph(sequential) is None and output_layer(sequential).name == "last"


class Subclassed(keras.Model):
    def __init__(self, helper):  # an argument its config cannot hold
        super().__init__()
        self.helper, self.dense = helper, keras.layers.Dense(2)

    def call(self, x):
        return self.dense(x)


def test_a_subclassed_model_has_no_layer_graph_and_keeps_its_form():
    from tagger.models.inference_graph import inference_model
    from tagger.models.training_graph import training_model

    model = Subclassed(object())
    model(keras.ops.zeros((1, 3)))
    assert layer_graph(model) is None
    assert training_model(model) is model and inference_model(model) is model
