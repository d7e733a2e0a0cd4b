"""Multi-head self-attention that returns its weights and accepts overrides."""

from __future__ import annotations

import math

import keras
from keras import ops

from tagger.layers.philox_dropout import PhiloxDropout


@keras.saving.register_keras_serializable(package="tagger")
class MultiHeadSelfAttention(keras.layers.Layer):
    """Scaled dot-product self-attention over `(batch, length, dim)`.

    Returns `(outputs, weights)`: outputs `(batch, length, dim)` and the
    softmax attention weights `(batch, heads, length, length)` (queries by
    keys), computed in float32 whatever the dtype policy.

    `attention_override`, when given, replaces the softmax weights:
    `(batch, keys)` gives every head and every query the same weights over
    the keys (a one-hot row makes every query attend only to that key, the
    tag-wise contribution maps of Won et al. 2019), `(batch, queries, keys)`
    is shared by the heads, `(batch, heads, queries, keys)` replaces them
    entirely. The values and the output projection are unchanged.

    Weights: query, key and value kernels `(dim, heads, key_dim)` with
    optional biases (`use_qkv_bias`; BERT has them, the ViT-style Music
    Tagging Transformer does not), and an output kernel `(heads, key_dim,
    dim)` with a bias. `key_dim` defaults to `dim // num_heads`.
    """

    def __init__(self, num_heads, key_dim=None, use_qkv_bias=True, dropout=0.0,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.key_dim = None if key_dim is None else int(key_dim)
        self.use_qkv_bias = bool(use_qkv_bias)
        self.dropout = float(dropout)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.probs_dropout = PhiloxDropout(self.dropout, name="probs_dropout")

    def build(self, input_shape):
        dim = input_shape[-1]
        if self.key_dim is None and dim % self.num_heads:
            raise ValueError(
                f"attention width {dim} is not divisible by num_heads="
                f"{self.num_heads}; choose a width that is a multiple of the "
                "number of heads or pass key_dim")
        key_dim = self.key_dim or dim // self.num_heads
        self._head_dim = key_dim
        for name in ("query", "key", "value"):
            setattr(self, f"{name}_kernel", self.add_weight(
                name=f"{name}_kernel", shape=(dim, self.num_heads, key_dim),
                initializer=self.kernel_initializer))
            if self.use_qkv_bias:
                setattr(self, f"{name}_bias", self.add_weight(
                    name=f"{name}_bias", shape=(self.num_heads, key_dim),
                    initializer="zeros"))
        self.output_kernel = self.add_weight(
            name="output_kernel", shape=(self.num_heads, key_dim, dim),
            initializer=self.kernel_initializer)
        self.output_bias = self.add_weight(
            name="output_bias", shape=(dim,), initializer="zeros")
        self.built = True

    def _project(self, inputs, name):
        out = ops.einsum("btd,dhk->bhtk", inputs, getattr(self, f"{name}_kernel"))
        if self.use_qkv_bias:
            out = out + ops.expand_dims(getattr(self, f"{name}_bias"), 1)
        return out  # (batch, heads, length, key_dim)

    def call(self, inputs, attention_override=None, training=None):
        query = self._project(inputs, "query")
        key = self._project(inputs, "key")
        value = self._project(inputs, "value")
        scores = ops.einsum("bhqk,bhsk->bhqs", query, key)
        scores = ops.cast(scores, "float32") / math.sqrt(self._head_dim)
        weights = ops.softmax(scores, axis=-1)  # (batch, heads, queries, keys)
        if attention_override is not None:
            weights = _broadcast_override(attention_override, weights)
        probs = self.probs_dropout(ops.cast(weights, self.compute_dtype),
                                   training=training)
        context = ops.einsum("bhqs,bhsk->bqhk", probs, value)
        outputs = ops.einsum("bqhk,hkd->bqd", context, self.output_kernel)
        return outputs + self.output_bias, weights

    def get_config(self):
        return dict(
            super().get_config(),
            num_heads=self.num_heads, key_dim=self.key_dim,
            use_qkv_bias=self.use_qkv_bias, dropout=self.dropout,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer))


def _broadcast_override(override, weights):
    override = ops.cast(override, "float32")
    rank = len(override.shape)
    if rank == 2:  # (batch, keys): every head, every query
        override = override[:, None, None, :]
    elif rank == 3:  # (batch, queries, keys): every head
        override = override[:, None, :, :]
    elif rank != 4:
        raise ValueError(
            "attention_override must have shape (batch, keys), (batch, queries, "
            f"keys) or (batch, heads, queries, keys); got rank {rank}")
    return ops.broadcast_to(override, ops.shape(weights))
