"""One Transformer encoder layer (post-LN BERT style or pre-LN ViT style)."""

from __future__ import annotations

import keras

from tagger.layers.multi_head_self_attention import MultiHeadSelfAttention
from tagger.layers.philox_dropout import PhiloxDropout


@keras.saving.register_keras_serializable(package="tagger")
class TransformerEncoderLayer(keras.layers.Layer):
    """Self-attention + feed-forward block, `(batch, length, dim)` in and out.

    Returns `(outputs, attention_weights)`; the weights are
    `(batch, heads, length, length)` float32 softmax scores (see
    `MultiHeadSelfAttention`). `call(x, attention_override=...)` replaces
    them for this layer only.

    `norm_first=False` is BERT (Won et al. 2019): x = LN(x + Drop(Attn(x)));
    x = LN(x + Drop(FF(x))). `norm_first=True` is the pre-norm ViT layer of
    the Music Tagging Transformer (Won et al. 2021): x = x + Drop(Attn(LN(x)));
    x = x + Drop(FF(LN(x))). FF(x) = W2 Drop_act(act(W1 x)), intermediate
    width `intermediate_dim`.

    Dropouts: `dropout` after the attention projection and after FF;
    `attention_dropout` on the attention probabilities; `activation_dropout`
    after the FF activation.

    Sub-layers (names are API): `attention`, `attention_norm`,
    `intermediate`, `ffn_output`, `ffn_norm`.
    """

    def __init__(self, num_heads, intermediate_dim, norm_first=False,
                 dropout=0.1, attention_dropout=0.1, activation_dropout=0.0,
                 activation="gelu", layer_norm_epsilon=1e-12, use_qkv_bias=True,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.intermediate_dim = int(intermediate_dim)
        self.norm_first = bool(norm_first)
        self.dropout = float(dropout)
        self.attention_dropout = float(attention_dropout)
        self.activation_dropout = float(activation_dropout)
        self.activation = keras.activations.serialize(keras.activations.get(activation))
        self.layer_norm_epsilon = float(layer_norm_epsilon)
        self.use_qkv_bias = bool(use_qkv_bias)

        self.attention = MultiHeadSelfAttention(
            self.num_heads, use_qkv_bias=self.use_qkv_bias,
            dropout=self.attention_dropout, name="attention")
        self.attention_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, name="attention_norm")
        self.attention_output_dropout = PhiloxDropout(
            self.dropout, name="attention_output_dropout")
        self.intermediate = keras.layers.Dense(
            self.intermediate_dim, activation=keras.activations.get(activation),
            name="intermediate")
        self.intermediate_dropout = PhiloxDropout(
            self.activation_dropout, name="intermediate_dropout")
        self.ffn_output_dropout = PhiloxDropout(
            self.dropout, name="ffn_output_dropout")
        self.ffn_norm = keras.layers.LayerNormalization(
            epsilon=self.layer_norm_epsilon, name="ffn_norm")
        self.ffn_output = None  # width known at build time

    def build(self, input_shape):
        dim = input_shape[-1]
        self.ffn_output = keras.layers.Dense(dim, name="ffn_output")
        self.attention.build(input_shape)
        self.attention_norm.build(input_shape)
        self.ffn_norm.build(input_shape)
        self.intermediate.build(input_shape)
        self.ffn_output.build((*input_shape[:-1], self.intermediate_dim))
        self.built = True

    def _feed_forward(self, x, intermediate, training):
        h = intermediate(x)
        h = self.intermediate_dropout(h, training=training)
        h = self.ffn_output(h)
        return self.ffn_output_dropout(h, training=training)

    def call(self, inputs, attention_override=None, training=None):
        return self.block(inputs, self.intermediate, attention_override, training)

    def block(self, inputs, intermediate, attention_override=None, training=None):
        """`call` with `intermediate` (`(..., dim) -> (..., intermediate_dim)`:
        the projection and its activation) in place of the `intermediate`
        Dense: where TensorFlow's training form computes the activation
        (`tagger.models.training_graph`)."""
        if self.norm_first:
            attended, weights = self.attention(
                self.attention_norm(inputs), attention_override=attention_override,
                training=training)
            x = inputs + self.attention_output_dropout(attended, training=training)
            x = x + self._feed_forward(self.ffn_norm(x), intermediate, training)
        else:
            attended, weights = self.attention(
                inputs, attention_override=attention_override, training=training)
            x = self.attention_norm(
                inputs + self.attention_output_dropout(attended, training=training))
            x = self.ffn_norm(x + self._feed_forward(x, intermediate, training))
        return x, weights

    def get_config(self):
        return dict(
            super().get_config(),
            num_heads=self.num_heads, intermediate_dim=self.intermediate_dim,
            norm_first=self.norm_first, dropout=self.dropout,
            attention_dropout=self.attention_dropout,
            activation_dropout=self.activation_dropout,
            activation=self.activation,
            layer_norm_epsilon=self.layer_norm_epsilon,
            use_qkv_bias=self.use_qkv_bias)
