"""Floating-point operations of a model, counted two ways.

`graph_flops` freezes the model's inference graph for one input and sums
TensorFlow's own per-op float counts (the v1 profiler's `float_operation`
view: 2 per multiply-add in convolutions and matrix products, 1 per element
in element-wise ops) and, where that view counts none, the multiply-adds
of the graph's Einsum ops (the attention layers' projections and
products: `einsum_flops`). `samplecnn_flops` counts the sample-level CNN's
multiply-adds by hand from its layer table; the two agree to within the
element-wise work (batch norm, ReLU, pooling, SE scaling), which the hand
count leaves out. A training step costs about three forward passes (the
forward pass, and the gradients with respect to activations and weights).
"""

from __future__ import annotations

TRAIN_FORWARD_RATIO = 3.0
MATMUL_SIZES = (1024, 2048)  # the square matrix products that measure the peak


def graph_flops(model, input_shape) -> float:
    """FLOPs of one inference call of `model` on one input of `input_shape`
    (without the batch axis)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    def forward(x):
        return model(x, training=False)

    spec = tf.TensorSpec([1, *input_shape], tf.float32)
    frozen = convert_variables_to_constants_v2(
        tf.function(forward, autograph=False).get_concrete_function(spec))
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    counted = tf.compat.v1.profiler.profile(frozen.graph, options=options).total_float_ops
    return float(counted) + sum(einsum_flops(op.get_attr("equation").decode(),
                                             [tuple(t.shape) for t in op.inputs])
                                for op in frozen.graph.get_operations() if op.type == "Einsum")


def einsum_flops(equation: str, shapes) -> float:
    """2 per multiply-add of the einsum `equation` ("btd,dhk->bhtk") over
    operands of `shapes`: 2 x the product of every index's size, for two
    operands; none for one (a transpose or a sum)."""
    operands = equation.replace(" ", "").split("->")[0].split(",")
    if len(operands) != len(shapes):
        raise ValueError(f"einsum {equation!r} of {len(shapes)} operands")
    if len(operands) == 1:
        return 0.0
    if len(operands) > 2:
        raise ValueError(f"einsum {equation!r}: more than two operands are not counted")
    sizes = {}
    for letters, shape in zip(operands, shapes):
        if "..." in letters:  # the ellipsis' axes named by their place from the right
            rest = len(shape) - len(letters.replace("...", ""))
            letters = letters.replace("...", "".join(map(str, range(rest - 1, -1, -1))))
        if len(letters) != len(shape):
            raise ValueError(f"einsum {equation!r}: operand {letters!r} of shape {shape}")
        for letter, size in zip(letters, shape):
            if size is None:
                raise ValueError(f"einsum {equation!r}: an axis of unknown size")
            sizes[letter] = max(sizes.get(letter, 1), size)  # broadcast axes of size 1
    total = 2.0
    for size in sizes.values():
        total *= size
    return total


def samplecnn_flops(model) -> float:
    """Multiply-add FLOPs (2 per multiply-add) of the convolutions and dense
    layers of a sample-level CNN, from the shapes of its layers."""
    import keras

    total = 0.0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv1D):
            length = layer.output.shape[1]
            kernel = layer.kernel.shape  # (width, in, out)
            total += 2.0 * length * kernel[0] * kernel[1] * kernel[2]
        elif isinstance(layer, keras.layers.Dense):
            kernel = layer.kernel.shape  # (in, out)
            total += 2.0 * kernel[0] * kernel[1]
    return total


def matmul_flops_per_second(sizes=MATMUL_SIZES, repeats: int = 10,
                            dtype: str = "float32") -> float:
    """FLOP/s of large matrix products of `dtype` (float32, bfloat16): the
    practical peak of the machine, measured with the same TensorFlow build
    as the models (the best of `repeats` products of each size, after a
    warm-up product), on TensorFlow's default device (a GPU where one is
    visible). Each product is waited for by reading one of its elements,
    so a GPU's product is not copied to the host."""
    import time

    import tensorflow as tf

    best_rate = 0.0
    for size in sizes:
        a = tf.cast(tf.random.normal([size, size], seed=1), dtype)
        b = tf.cast(tf.random.normal([size, size], seed=2), dtype)
        product = tf.function(lambda x, y: tf.linalg.matmul(x, y))
        product(a, b)[0, 0].numpy()  # warm up
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            product(a, b)[0, 0].numpy()
            best = min(best, time.perf_counter() - start)
        best_rate = max(best_rate, 2.0 * size ** 3 / best)
    return best_rate
