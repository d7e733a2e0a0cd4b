"""The graph of a functional model's layers, read from its public config
(`model.get_config()`: each layer's calls in the model and, for each call,
the layers whose outputs it reads), for the training and inference forms:
how often a model calls a layer, which layers read its output, and the
layer that alone reads it. A layer a model shares with another (a
training form calls the model's layers again) counts only the calls of
the model asked about.

    calls(model, layer) -> int            the model's calls of the layer
    readers(model, layer) -> [layer]      the layers reading its outputs there
    only_reader(model, layer) -> layer    the one reader of its one call, or None
    inputs_of(model, layer) -> [layer]    the layers its (first) call reads
    output_layer(model) -> layer          the layer giving its first output
"""

from __future__ import annotations

import weakref
from typing import NamedTuple


class LayerGraph(NamedTuple):
    """A functional model's layers by name: `calls[name]` lists, for each
    call of that layer in the model, the names of the layers whose outputs
    it reads (in order, once each); `outputs` the names of the layers
    giving the model's outputs, in order."""

    calls: dict
    outputs: tuple


_GRAPHS = weakref.WeakKeyDictionary()  # model -> its LayerGraph (a functional graph is fixed)


def layer_graph(model) -> LayerGraph | None:
    """The layer graph of the functional `model`; None for a model of no
    such graph (a subclassed model, which has no `outputs`, or a Sequential
    one, whose config lists its layers alone)."""
    if not hasattr(model, "outputs"):
        return None
    if model not in _GRAPHS:
        _GRAPHS[model] = _read_graph(model.get_config())
    return _GRAPHS[model]


def _read_graph(config: dict) -> LayerGraph | None:
    if not isinstance(config, dict) or "output_layers" not in config:
        return None
    calls = {layer["name"]: [_sources(node) for node in layer.get("inbound_nodes", [])]
             for layer in config["layers"]}
    return LayerGraph(calls, tuple(_output_names(config["output_layers"])))


def _output_names(value) -> list:
    """The layer names of `output_layers` ([name, node, tensor] entries, in
    the structure of the model's outputs), in the order of `model.outputs`
    (`keras.tree`'s: a dict's values by sorted key)."""
    if isinstance(value, dict):
        return [name for key in sorted(value) for name in _output_names(value[key])]
    if len(value) == 3 and isinstance(value[0], str) and not isinstance(value[1], (list, dict)):
        return [value[0]]
    return [name for item in value for name in _output_names(item)]


def _sources(node) -> list:
    """The names of the layers whose outputs a call reads, in order, each
    once: the `keras_history` of the tensors serialized in its arguments."""
    names = []
    for name in _tensor_layers(node):
        if name not in names:
            names.append(name)
    return names


def _tensor_layers(value) -> list:
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            return [value["config"]["keras_history"][0]]
        return [name for item in value.values() for name in _tensor_layers(item)]
    if isinstance(value, (list, tuple)):
        return [name for item in value for name in _tensor_layers(item)]
    return []


def calls(model, layer) -> int:
    """How many times `model` calls `layer`."""
    return len(layer_graph(model).calls.get(layer.name, ()))


def readers(model, layer) -> list:
    """The layers that read an output of `layer` in `model`, in the
    model's order, each once."""
    graph = layer_graph(model)
    return [model.get_layer(name) for name, inputs in graph.calls.items()
            if any(layer.name in sources for sources in inputs)]


def only_reader(model, layer):
    """The layer that alone reads `layer`'s output in `model`, both called
    once there, that output not one of the model's; or None."""
    graph = layer_graph(model)
    if calls(model, layer) != 1 or layer.name in graph.outputs:
        return None
    reading = [(name, index) for name, inputs in graph.calls.items()
               for index, sources in enumerate(inputs) if layer.name in sources]
    if len(reading) != 1 or len(graph.calls[reading[0][0]]) != 1:
        return None
    return model.get_layer(reading[0][0])


def inputs_of(model, layer) -> list:
    """The layers whose outputs the first call of `layer` in `model` reads."""
    return [model.get_layer(name) for name in layer_graph(model).calls[layer.name][0]]


def output_layer(model):
    """The layer giving `model`'s first output (a Sequential model's last)."""
    graph = layer_graph(model)
    return model.layers[-1] if graph is None else model.get_layer(graph.outputs[0])
