import math

import numpy as np
import pytest

from tagger.layers import (
    ClsToken,
    LearnedPositions,
    MultiHeadSelfAttention,
    SelectToken,
    SinusoidalPositions,
    TransformerEncoderLayer,
)
from tests.checks import check_layer


def test_sinusoidal_positions_formula():
    x = np.zeros((1, 5, 6), "float32")
    got = np.asarray(SinusoidalPositions()(x))[0]
    assert np.all(got[0] == 0.0)  # the [CLS] position is left alone
    pos, j = 3, 4
    assert got[pos, j] == pytest.approx(math.sin(pos / 10000 ** (4 / 6)), abs=1e-6)
    assert got[pos, j + 1] == pytest.approx(math.cos(pos / 10000 ** (4 / 6)), abs=1e-6)
    plain = np.asarray(SinusoidalPositions(zero_first=False)(x))[0]
    np.testing.assert_allclose(plain[0], np.tile([0.0, 1.0], 3), atol=1e-6)


def test_cls_select_and_positions():
    x = np.random.default_rng(0).standard_normal((2, 4, 3)).astype("float32")
    cls = ClsToken()
    y = np.asarray(cls(x))
    assert y.shape == (2, 5, 3)
    np.testing.assert_allclose(y[:, 1:], x)
    np.testing.assert_allclose(y[0, 0], y[1, 0])
    np.testing.assert_allclose(np.asarray(SelectToken(0)(y)), y[:, 0])
    positions = LearnedPositions(6)
    z = np.asarray(positions(x))
    np.testing.assert_allclose(z - x, np.broadcast_to(positions.embeddings.numpy()[:4], x.shape),
                               atol=1e-6)
    with pytest.raises(ValueError, match="longer than the position table"):
        LearnedPositions(3)(x)


def test_attention_override_broadcasts():
    x = np.random.default_rng(1).standard_normal((2, 5, 8)).astype("float32")
    layer = MultiHeadSelfAttention(2)
    out, weights = layer(x)
    assert out.shape == (2, 5, 8) and weights.shape == (2, 2, 5, 5)
    np.testing.assert_allclose(np.asarray(weights).sum(-1), 1.0, atol=1e-5)
    again, _ = layer(x, attention_override=weights)
    np.testing.assert_allclose(np.asarray(again), np.asarray(out), atol=1e-6)
    one_hot = np.eye(5, dtype="float32")[[2, 4]]  # (batch, keys)
    forced, used = layer(x, attention_override=one_hot)
    assert np.all(np.asarray(used)[0, :, :, 2] == 1.0)
    forced = np.asarray(forced)
    # Every query attends to the same key: identical rows per example.
    np.testing.assert_allclose(forced[:, 0:1].repeat(5, 1), forced, atol=1e-6)
    with pytest.raises(ValueError, match="not divisible"):
        MultiHeadSelfAttention(3)(x)


@pytest.mark.parametrize("make", [
    lambda: ClsToken(trainable=False),
    lambda: SelectToken(1),
    lambda: SinusoidalPositions(),
    lambda: LearnedPositions(8),
], ids=["cls", "select", "sinusoidal", "learned"])
def test_standard_layer_checks(make, tmp_path):
    check_layer(make, (6, 4), tmp_path)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer(norm_first):
    # Saving and loading inside whole models is checked in tests/models.
    layer = TransformerEncoderLayer(2, 16, norm_first=norm_first, dropout=0.0,
                                    use_qkv_bias=not norm_first)
    clone = TransformerEncoderLayer.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()
    x = np.random.default_rng(2).standard_normal((2, 6, 8)).astype("float32")
    out, weights = layer(x)
    assert out.shape == (2, 6, 8) and weights.shape == (2, 2, 6, 6)
    names = {w.path.split("/")[-2] for w in layer.weights}
    assert {"attention", "attention_norm", "intermediate", "ffn_output", "ffn_norm"} <= names
    # q, k, v and output kernels + output bias (+ q, k, v biases where BERT
    # has them), 2 layer norms, feed-forward 8 -> 16 -> 8
    d = 8
    qkv_bias = 0 if norm_first else 3 * d
    expected = 4 * d * d + d + qkv_bias + 4 * d + (d * 16 + 16) + (16 * d + d)
    assert layer.count_params() == expected


def reference_attention(layer, x):
    """The layer's function in float64 NumPy einsums: (outputs, weights)."""
    def weight(name):
        return np.asarray(getattr(layer, name), np.float64)

    def project(name):
        out = np.einsum("btd,dhk->bhtk", x, weight(f"{name}_kernel"))
        return out + weight(f"{name}_bias")[:, None] if layer.use_qkv_bias else out

    query, key, value = project("query"), project("key"), project("value")
    scores = np.einsum("bhqk,bhsk->bhqs", query, key) / math.sqrt(query.shape[-1])
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    context = np.einsum("bhqs,bhsk->bqhk", weights, value)
    outputs = np.einsum("bqhk,hkd->bqd", context, weight("output_kernel"))
    return outputs + weight("output_bias"), weights


@pytest.mark.parametrize("width, heads, bias", [(32, 2, True), (32, 1, False), (64, 2, True)])
def test_attention_is_the_scaled_dot_product_of_its_projections(width, heads, bias):
    """Key widths 16 and 64 (the scale folded into the query's kernel) and
    32 (the scores scaled), over inputs of a length the model was not
    built for, against float64 einsums."""
    import keras

    keras.utils.set_random_seed(3)
    inputs = keras.Input((None, width))
    layer = MultiHeadSelfAttention(heads, use_qkv_bias=bias)
    model = keras.Model(inputs, layer(inputs))
    rng = np.random.default_rng(4)
    for variable in layer.weights:
        variable.assign(rng.standard_normal(variable.shape) * 0.3)
    for length in (5, 9):
        x = rng.standard_normal((2, length, width))
        got = model(x.astype("float32"))
        for value, expected in zip(got, reference_attention(layer, x)):
            np.testing.assert_allclose(np.asarray(value), expected, rtol=1e-4, atol=1e-5)
