"""What the training forms share (`tagger.models.training_graph`,
`tagger.models.xla_training_graph`, `tagger.models.folded_input_norm`,
`tagger.models.pooled_norm`): Keras' update of a norm's moving moments
and the build of a wrapped layer, in keras.ops for either backend; and
TensorFlow's own: a bias added with its gradient summed as a matrix
product, and custom gradients named as their layer's backward pass and
freed with their graph (TensorFlow imported only by them).
"""

from __future__ import annotations

import contextlib
import functools
import weakref

import keras
from keras import ops


def bias_added(y, bias):
    """`y + bias` over the last axis, the bias's gradient the product of a
    row of ones and the upstream gradient's rows. TensorFlow's gradient
    of a convolution's bias (BiasAddGrad) sums bfloat16 in bfloat16:
    slower than the product over the sample-level CNN's first block
    (452709 rows of 128 channels), and far off the exact sum there; in
    float32 slower too (docs/performance.md, the "Training bfloat16 over
    float32" and "Training MFU, float32" rows)."""
    import tensorflow as tf

    @custom_gradient
    def add(y, bias):
        def gradient(upstream):
            rows = tf.reshape(upstream, [-1, upstream.shape[-1]])
            ones = tf.ones([1, tf.shape(rows)[0]], rows.dtype)
            return upstream, tf.reshape(tf.matmul(ones, rows), [-1])

        return tf.nn.bias_add(y, bias), gradient

    return add(y, bias)


def activation_of(layer, activated=True):
    """`layer`'s activation function, or the identity where it has none or
    where not `activated` (a training form that applies it elsewhere)."""
    if not activated or getattr(layer, "activation", None) is None:
        return lambda y: y
    return layer.activation


def update_moving_moments(norm, mean, variance):
    """Keras' update of a BatchNormalization's moving mean and variance by
    a batch's `mean` and biased `variance` (float32)."""
    momentum = norm.momentum
    norm.moving_mean.assign(ops.cast(norm.moving_mean, "float32") * momentum
                            + ops.stop_gradient(mean) * (1.0 - momentum))
    norm.moving_variance.assign(ops.cast(norm.moving_variance, "float32") * momentum
                                + ops.stop_gradient(variance) * (1.0 - momentum))


def custom_gradient(forward):
    """`tf.custom_gradient(forward)`, `forward(*tensors)` returning
    (outputs, gradient function), with two differences:

    - the gradient's ops are named under the forward pass's name scope
      prefixed by `gradient_tape/`, as TensorFlow names the gradients it
      derives itself: a profile (bench/profile_training.py) then counts
      them as the backward pass of their layer, not as ops of no layer;
    - in a traced function, the gradient it registers is held by the
      function's graph (`gradients_held_by_graph`), not by the process."""
    import tensorflow as tf

    def scoped(*tensors):
        outputs, gradient = forward(*tensors)
        scope = tf.get_current_name_scope()

        def in_backward_scope(*upstream):
            with tf.name_scope(f"gradient_tape/{scope}/" if scope else "gradient_tape/"):
                return gradient(*upstream)

        return outputs, in_backward_scope

    registered = tf.custom_gradient(scoped)

    @functools.wraps(forward)
    def call(*tensors):
        with gradients_held_by_graph():
            return registered(*tensors)

    return call


HELD_GRADIENTS = "tagger_custom_gradients"  # the graph collection that holds them


class HeldGradient:
    """A registry entry's function, held by its graph: called through a
    weak reference."""

    def __init__(self, function):
        self.function = weakref.ref(function)

    def __call__(self, *args):
        return self.function()(*args)


def gradient_registry() -> dict | None:
    """TensorFlow's registry of gradient functions, name -> {"type":
    function, ...}: private state (`ops._gradient_registry._registry`),
    read here only; None where it is not that (a TensorFlow this was not
    checked with)."""
    from tensorflow.python.framework import ops as tf_ops

    entries = getattr(getattr(tf_ops, "_gradient_registry", None), "_registry", None)
    return entries if isinstance(entries, dict) else None


@contextlib.contextmanager
def gradients_held_by_graph():
    """While tracing a function: each custom gradient TensorFlow registers
    while open (`tf.custom_gradient`'s, tf.distribute's all-reduce's) is
    held by the graph being traced, in its collection `HELD_GRADIENTS`,
    and leaves TensorFlow's registry when that graph is freed. TensorFlow
    keeps them in the registry of the process, and through their closures
    their whole graphs, to the end (tensorflow/tensorflow#97697): every
    training step traced in a process would stay in its memory.

    Where TensorFlow's registry is not what `gradient_registry` expects,
    the registrations stay as TensorFlow makes them. Eagerly, nothing is
    registered."""
    import tensorflow as tf

    entries = gradient_registry()
    if tf.executing_eagerly() or entries is None:
        yield
        return
    graph = tf.compat.v1.get_default_graph()
    before = set(entries)
    yield
    for name in set(entries) - before:
        entry = entries[name]
        function = entry.get("type") if isinstance(entry, dict) else None
        if not callable(function) or isinstance(function, HeldGradient):
            continue  # held already (by the graph of a function traced inside)
        graph.add_to_collection(HELD_GRADIENTS, function)
        entry["type"] = HeldGradient(function)
        weakref.finalize(graph, entries.pop, name, None)


class BuiltWrapper(keras.layers.Wrapper):
    """A Wrapper that builds its layer on its (first) input's shape, for
    the training forms' layers."""

    def build(self, input_shape):
        if not self.layer.built:
            first = input_shape[0] if isinstance(input_shape, list) else input_shape
            self.layer.build(first)
        self.built = True
