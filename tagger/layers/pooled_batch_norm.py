"""A batch norm that followed a ReLU convolution, moved to after the max
pooling that followed it (`tagger.models.inference_graph`)."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


@keras.saving.register_keras_serializable(package="tagger")
class PooledBatchNorm(keras.layers.Wrapper):
    """`(batch, ...) -> (batch, ...)`: the wrapped BatchNormalization (in
    inference) of `relu(signs * x)`.

    It moves a batch norm that follows a ReLU convolution to after the max
    pooling that follows it: with a = gamma / sqrt(var + eps) > 0 for
    channel c, max(a relu(z) + b) = a relu(max z) + b; with a < 0 it is
    a relu(min z) + b = a relu(-max(-z)) + b. So the convolution's channels
    with a < 0 are negated (`InferenceConv2D(signs=...)`, no activation),
    the pooling takes the max of that, and this layer negates them back,
    applies the ReLU and then the batch norm, on the pooled output: 4 to 96
    times fewer values than the convolution's (musicnn's temporal filters
    pool 96 frequency bins), and the pooling reads the convolution's output
    directly, which int8 kernels run without leaving int8.
    """

    def __init__(self, layer, signs, **kwargs):
        super().__init__(layer, **kwargs)
        self.signs = [float(s) for s in signs]

    def build(self, input_shape):
        if not self.layer.built:
            self.layer.build(input_shape)
        self.built = True

    def call(self, x):
        signs = ops.convert_to_tensor(self.signs, dtype=x.dtype)
        return self.layer(ops.relu(x * signs), training=False)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return dict(super().get_config(), signs=self.signs)


def batch_norm_signs(bn) -> list:
    """+1 or -1 per channel: the sign of the batch norm's scale
    gamma / sqrt(moving_variance + epsilon) (+1 for a scale of 0, or a
    batch norm without gamma)."""
    if not bn.scale:
        return [1.0] * int(np.prod(bn.moving_variance.shape))
    return [1.0 if g >= 0 else -1.0 for g in np.ravel(np.asarray(bn.gamma))]
