"""Access to the attention of the Transformer families (self_attention,
transformer): every layer's scores, and a forced last-layer attention.

Encoder layers are `TransformerEncoderLayer`s named `encoder0`,
`encoder1`, ...; each returns `(hidden, scores)` with scores `(batch,
heads, T + 1, T + 1)` (queries x keys, position 0 is [CLS]).

Tag-wise contribution (Won et al. 2019, ICML workshop paper): for a time
step t, the last layer's attention is forced to one-hot on t for every
head and every query (as the original visualisation code does), and the
tag outputs are recorded. Only the [CLS] query reaches the tags after the
last layer, so this equals forcing the [CLS] query alone.
"""

from __future__ import annotations

import re

import keras
import numpy as np

_ENCODER = re.compile(r"^encoder(\d+)$")


def encoder_names(model: keras.Model) -> list[str]:
    """Names of the encoder layers, in order."""
    found = sorted((int(m.group(1)), layer.name) for layer in model.layers
                   if (m := _ENCODER.match(layer.name)))
    if not found:
        raise ValueError(
            f"model {model.name!r} has no encoder layers (encoder0, encoder1, "
            "...); attention access needs a self_attention or transformer model")
    return [name for _, name in found]


def attention_model(model: keras.Model) -> keras.Model:
    """A model with the same input whose outputs are a dict: `tags` and
    `encoder{i}_attention`, `(batch, heads, T + 1, T + 1)` float32 softmax
    scores of every encoder layer."""
    outputs = {"tags": model.output}
    for name in encoder_names(model):
        outputs[f"{name}_attention"] = model.get_layer(name).output[1]
    return keras.Model(model.inputs, outputs, name=f"{model.name}_attention")


def override_model(model: keras.Model, full: bool = False) -> keras.Model:
    """A model `[inputs, attention_override] -> tags` whose last encoder
    layer uses the given attention weights instead of its softmax.

    `full=False`: override `(batch, T + 1)`, one distribution over the keys
    used by every head and query (a one-hot row gives the contribution of
    that step). `full=True`: `(batch, heads, T + 1, T + 1)`, e.g. the
    scores from `attention_model` (which reproduces the normal output).
    """
    last = model.get_layer(encoder_names(model)[-1])
    hidden = last.input  # (batch, T + 1, dim)
    override = keras.Input(_override_shape(last, hidden, full), name="attention_override")
    outputs = _apply_tail(model, last, hidden, override)
    return keras.Model([*model.inputs, override], outputs,
                       name=f"{model.name}_override")


def tag_contributions(model: keras.Model, x, batch_size: int = 32) -> np.ndarray:
    """Tag-wise contribution matrix `(T, num_tags)` of one input `x`
    (without or with a batch axis of 1): row t holds the tag outputs when
    the last layer attends only to time step t (token t + 1; [CLS]
    excluded). The layers below the last one run once."""
    x = np.asarray(x, dtype="float32")
    if x.ndim == len(model.inputs[0].shape) - 1:
        x = x[None]
    if x.shape[0] != 1:
        raise ValueError(f"tag_contributions takes one example, got a batch of {x.shape[0]}")
    last = model.get_layer(encoder_names(model)[-1])
    trunk = keras.Model(model.inputs, last.input)
    hidden = np.asarray(trunk.predict_on_batch(x))  # (1, T + 1, dim)
    return contributions_from_hidden(contribution_tail(model), hidden, batch_size)


def contribution_tail(model: keras.Model) -> keras.Model:
    """A model `[hidden (batch, T + 1, dim), override (batch, T + 1)] -> tags`:
    the last encoder layer with its attention forced to `override`, and the
    layers after it. `hidden` is the last encoder layer's input. Build it
    once to compute the contributions of many inputs."""
    last = model.get_layer(encoder_names(model)[-1])
    hidden_in = keras.Input(last.input.shape[1:], name="hidden")
    override_in = keras.Input(_override_shape(last, last.input, False),
                              name="attention_override")
    return keras.Model([hidden_in, override_in],
                       _apply_tail(model, last, hidden_in, override_in),
                       name=f"{model.name}_contribution_tail")


def contributions_from_hidden(tail: keras.Model, hidden, batch_size: int = 32) -> np.ndarray:
    """`(T, num_tags)` contributions of one example from its last-encoder
    input `hidden` `(1, T + 1, dim)`, with `tail` from `contribution_tail`."""
    hidden = np.asarray(hidden, dtype="float32")
    length = hidden.shape[1]
    rows = []
    for start in range(1, length, batch_size):
        steps = np.arange(start, min(start + batch_size, length))
        override = np.eye(length, dtype="float32")[steps]
        repeated = np.repeat(hidden, len(steps), axis=0)
        rows.append(np.asarray(tail.predict_on_batch([repeated, override])))
    return np.concatenate(rows, axis=0)


def _override_shape(last, hidden, full):
    length = hidden.shape[1]
    return (last.num_heads, length, length) if full else (length,)


def _apply_tail(model, last, hidden, override):
    """Calls the last encoder with `override`, then the chain of layers
    that follows it in `model` up to the output."""
    x, _ = last(hidden, attention_override=override)
    current = last.output[0]
    while current is not model.output:
        consumers = [layer for layer in model.layers if _input_of(layer) is current]
        if len(consumers) != 1:
            raise ValueError(
                f"model {model.name!r}: expected a chain of single-input layers "
                f"after {last.name!r}, found {len(consumers)} consumers of one tensor")
        layer = consumers[0]
        x = layer(x)
        current = layer.output
    return x


def _input_of(layer):
    try:
        return layer.input
    except (AttributeError, ValueError):
        return None
