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

    Each projection is one matrix product of the tokens' rows, `(batch *
    length, dim)`, and the kernel flattened to `(dim, heads * key_dim)`:
    under TensorFlow that trains faster than the same einsum.
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

    def _project(self, flat, length, name, scale=1.0):
        """`flat` `(batch * length, dim)` times the `name` kernel (and
        bias), both times `scale`: `(batch, heads, length, key_dim)`."""
        kernel = ops.reshape(getattr(self, f"{name}_kernel"), (flat.shape[-1], -1))
        bias = ops.reshape(getattr(self, f"{name}_bias"), (-1,)) if self.use_qkv_bias else None
        if scale != 1.0:
            kernel, bias = kernel * scale, None if bias is None else bias * scale
        out = ops.matmul(flat, kernel)
        if bias is not None:
            out = out + bias
        out = ops.reshape(out, (-1, length, self.num_heads, self._head_dim))
        return ops.transpose(out, (0, 2, 1, 3))

    def call(self, inputs, attention_override=None, training=None):
        length, dim = ops.shape(inputs)[1], inputs.shape[-1]
        flat = ops.reshape(inputs, (-1, dim))
        # 1 / sqrt(key_dim) scales the query's kernel, not the scores, where
        # it is a power of two (key widths 16, 64): the same values
        root = math.isqrt(self._head_dim)
        folded = root * root == self._head_dim and root & (root - 1) == 0
        query = self._project(flat, length, "query", 1.0 / root if folded else 1.0)
        key = self._project(flat, length, "key")
        value = self._project(flat, length, "value")
        scores = ops.cast(ops.matmul(query, ops.transpose(key, (0, 1, 3, 2))), "float32")
        if not folded:
            scores = scores / math.sqrt(self._head_dim)
        weights = ops.softmax(scores, axis=-1)  # (batch, heads, queries, keys)
        if attention_override is not None:
            weights = _broadcast_override(attention_override, weights)
        probs = self.probs_dropout(ops.cast(weights, self.compute_dtype),
                                   training=training)
        context = ops.transpose(ops.matmul(probs, value), (0, 2, 1, 3))  # (b, q, h, k)
        outputs = ops.matmul(ops.reshape(context, (-1, self.num_heads * self._head_dim)),
                             ops.reshape(self.output_kernel, (-1, dim)))
        return ops.reshape(outputs + self.output_bias, (-1, length, dim)), weights

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
