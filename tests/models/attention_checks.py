"""Checks shared by the two attention families (self_attention, transformer)."""

from __future__ import annotations

import math

import keras
import numpy as np

from tagger.models.attention import (
    attention_model,
    encoder_names,
    override_model,
    tag_contributions,
)

_erf = np.vectorize(math.erf)


def check_attention_outputs(model, x, heads, layers):
    """attention_model gives tags equal to the model's and per-layer scores
    `(batch, heads, T + 1, T + 1)` that are softmax rows."""
    assert encoder_names(model) == [f"encoder{i}" for i in range(layers)]
    outputs = attention_model(model).predict(x, verbose=0)
    expected = {"tags"} | {f"encoder{i}_attention" for i in range(layers)}
    assert set(outputs) == expected
    np.testing.assert_allclose(outputs["tags"], model.predict(x, verbose=0), atol=1e-6)
    tokens = model.get_layer("encoder0").input.shape[1]
    for i in range(layers):
        scores = outputs[f"encoder{i}_attention"]
        assert scores.shape == (x.shape[0], heads, tokens, tokens)
        assert scores.dtype == np.float32
        np.testing.assert_allclose(scores.sum(-1), 1.0, atol=1e-5)
    return outputs


def check_natural_override(model, x, outputs):
    """Forcing the last layer's attention to its own softmax changes nothing."""
    last = encoder_names(model)[-1]
    forced = override_model(model, full=True).predict(
        [x, outputs[f"{last}_attention"]], verbose=0)
    np.testing.assert_allclose(forced, outputs["tags"], atol=1e-6)


def check_contributions(model, x, norm_first):
    """tag_contributions: shape (T, tags); row t equals the override model
    with a one-hot on token t + 1 and a by-hand computation of the last
    layer; different steps give different outputs."""
    example = x[:1]
    contributions = tag_contributions(model, example[0], batch_size=4)
    last = model.get_layer(encoder_names(model)[-1])
    tokens = last.input.shape[1]
    num_tags = model.output.shape[-1]
    assert contributions.shape == (tokens - 1, num_tags)
    assert np.ptp(contributions, axis=0).max() > 1e-4  # steps differ

    hidden = keras.Model(model.inputs, last.input).predict(example, verbose=0)[0]
    single = override_model(model)
    for t in (1, tokens // 2, tokens - 1):
        one_hot = np.eye(tokens, dtype="float32")[None, t]
        via_model = single.predict([example, one_hot], verbose=0)[0]
        np.testing.assert_allclose(contributions[t - 1], via_model, atol=1e-6)
        cls = _last_layer_cls_by_hand(last, hidden, t, norm_first)
        by_hand = _head(model, cls)
        np.testing.assert_allclose(via_model, by_hand, atol=2e-5)


def _layer_norm(layer, x):
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return ((x - mean) / np.sqrt(var + layer.epsilon) * layer.gamma.numpy()
            + layer.beta.numpy())


def _dense(layer, x):
    return x @ layer.kernel.numpy() + layer.bias.numpy()


def _last_layer_cls_by_hand(layer, hidden, t, norm_first):
    """The [CLS] output of an encoder layer whose every query attends only
    to key t: the attention output of every query is the value vector of
    step t through the output projection."""
    attention = layer.attention
    source = _layer_norm(layer.attention_norm, hidden) if norm_first else hidden
    value = np.einsum("d,dhk->hk", source[t], attention.value_kernel.numpy())
    if attention.use_qkv_bias:
        value = value + attention.value_bias.numpy()
    attended = (np.einsum("hk,hkd->d", value, attention.output_kernel.numpy())
                + attention.output_bias.numpy())

    def feed_forward(x):
        h = _dense(layer.intermediate, x)
        h = 0.5 * h * (1.0 + _erf(h / math.sqrt(2.0)))  # exact GELU
        return _dense(layer.ffn_output, h)

    if norm_first:
        x = hidden[0] + attended
        return x + feed_forward(_layer_norm(layer.ffn_norm, x))
    x = _layer_norm(layer.attention_norm, hidden[0] + attended)
    return _layer_norm(layer.ffn_norm, x + feed_forward(x))


def _head(model, cls):
    """The layers after `cls_select` (standard Keras layers) on one vector."""
    names = [layer.name for layer in model.layers]
    x = cls[None].astype("float32")
    for layer in model.layers[names.index("cls_select") + 1:]:
        x = layer(x, training=False) if isinstance(layer, keras.layers.Dropout) else layer(x)
    return np.asarray(x)[0]
