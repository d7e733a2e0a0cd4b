"""The training step computes one-channel convolutions as stacked taps
and batch norms with the fused kernel (tagger.models.training_graph): the
same layers and variables, the same losses, weights and moving statistics
as the model's own layers, step by step."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tagger.models import FAMILIES, training_graph, training_sums
from tagger.models.layer_graph import readers as readers_of
from tagger.training import trainer

BATCH = 8
# the multi-scale CNN's tiny preset is the whole model: here two of its ten
# segments (116 frames, where its last pool needs 64)
SHORTER = {"multiscale": {"segments": 2}}


def tiny_model(family):
    spec = FAMILIES[family]
    keras.utils.set_random_seed(0)
    return spec.build(num_tags=5, **spec.tiny, **SHORTER.get(family, {}))


def batch_of(model):
    rng = np.random.default_rng(0)
    windows = 0.1 * rng.standard_normal((BATCH, model.input_shape[1]))
    tags = rng.random((BATCH, 5)) < 0.4
    return windows.astype(np.float32), tags.astype(np.float32)


def three_steps(family, steps=3):
    """The losses of `steps` training steps of the tiny `family` and its
    weights after them."""
    model = tiny_model(family)
    strategy = tf.distribute.get_strategy()
    optimizer = keras.optimizers.SGD(0.01)
    train = trainer.make_train_function(model, optimizer, strategy, global_batch=BATCH)
    iterator = iter(tf.data.Dataset.from_tensors(batch_of(model)).repeat())
    losses = [float(train(iterator, 1)) for _ in range(steps)]
    return losses, [np.asarray(v) for v in model.weights], train, iterator


@pytest.mark.parametrize("family", ["pons_musicnn", "musicnn", "pons_vgg", "multiscale"])
def test_the_step_runs_one_channel_convolutions_as_taps(family):
    *_, train, iterator = three_steps(family)
    graph = train.get_concrete_function(iterator, 1).graph
    names = {op.name for op in graph.get_operations()
             if "_taps" in op.name or op.type == "ConcatV2"}  # a folded conv's stacking
    taps = {layer.name for layer in tiny_model(family).layers
            if any(f"/{layer.name}_taps" in name or f"/{layer.name}_folded" in name
                   for name in names)}
    assert taps == {
        "pons_musicnn": {"timbral1_conv", "timbral2_conv", "temporal1_conv", "temporal2_conv",
                         "temporal3_conv"},
        "musicnn": {"timbral1_conv", "timbral2_conv"},
        "pons_vgg": {"conv1"},  # 3 x 3
        "multiscale": {"scale3_conv1"}}[family]  # 3 x 3; not its 3 x 7 and 3 x 5


@pytest.mark.slow
@pytest.mark.parametrize("family", ["pons_musicnn", "musicnn", "self_attention", "pons_vgg",
                                    "multiscale", "transformer"])
def test_the_spectrograms_norm_is_folded_into_every_convolution_that_reads_it(family):
    """Through paddings, poolings and reshapes; the norm itself standardises."""
    *_, train, iterator = three_steps(family, steps=1)
    names = {op.name for op in train.get_concrete_function(iterator, 1).graph.get_operations()}
    model = tiny_model(family)
    norm = model.get_layer("input_norm" if family == "multiscale" else "input_bn")
    readers, todo = set(), [norm]
    while todo:
        for layer in readers_of(model, todo.pop()):
            if isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D)):
                readers.add(layer.name)
            else:
                todo.append(layer)
    folded = {layer.name for layer in model.layers
              if any(f"/{layer.name}_folded" in name for name in names)}
    assert readers and folded == readers
    assert any(f"/{norm.name}_standard" in name for name in names)


def test_a_second_training_form_of_a_model_folds_its_norm_too():
    """The first form calls the paddings and poolings again (on the image
    and its mask); those calls belong to it, not to the model."""
    from tagger.models.folded_input_norm import folds
    from tagger.models.training_graph import training_model

    model = tiny_model("musicnn")
    norm = model.get_layer("input_bn")
    first = folds(model, norm)
    training_model(model)
    assert first and folds(model, norm) == first
    names = {layer.name for layer in training_model(model).layers}
    assert {"timbral1_conv_folded", "temporal1_conv_folded", "input_bn_standard"} <= names


def test_a_norm_is_folded_only_into_convolutions_of_an_input_no_weight_acts_on():
    from tagger.models.folded_input_norm import folds

    def folded(*layers, weighted_input=False, channels=1):
        inputs = keras.Input((12, 10, channels))
        x = keras.layers.Conv2D(1, 1)(inputs) if weighted_input else inputs
        norm = keras.layers.BatchNormalization()
        x = norm(x)
        for layer in layers:
            x = layer(x)
        found = folds(keras.Model(inputs, x), norm)
        return None if found is None else len(found)

    conv = keras.layers.Conv2D
    assert folded(keras.layers.ZeroPadding2D(1), conv(4, 3)) == 2
    assert folded(keras.layers.AveragePooling2D(2), conv(4, 3, padding="same")) == 2
    assert folded(conv(4, 3), keras.layers.Dense(2)) == 1  # what follows the conv: any
    assert folded(conv(4, 3), weighted_input=True) is None
    assert folded(keras.layers.ReLU(), conv(4, 3)) is None
    assert folded(keras.layers.Dense(4)) is None
    assert folded(conv(4, 3), channels=2) is None
    assert folded(conv(4, 3, groups=1, strides=2)) == 1


def test_a_kernel_of_many_filters_stacks_all_its_rows_else_at_most_eight():
    conv = keras.layers.Conv2D
    assert [training_graph.training_taps(conv(filters, size)) for filters, size in (
        (204, (67, 7)), (204, (38, 7)), (16, (86, 7)), (64, (38, 1)), (51, (128, 1)),
        (51, (32, 1)), (128, (3, 3)))] == [67, 38, 8, 8, 8, 8, 3]


@pytest.mark.slow
def test_the_step_computes_the_sample_level_filter_gradients_as_matrix_products():
    """Named in the layer's backward scope, as profile_training.py groups them."""
    *_, train, iterator = three_steps("samplecnn")
    graph = train.get_concrete_function(iterator, 1).graph
    names = {op.name for op in graph.get_operations()
             if op.type == "MatMul" and op.name.startswith("gradient_tape/")}
    model = tiny_model("samplecnn")
    gemm = {layer.name for layer in model.layers
            if any(f"/{layer.name}_gemm" in name for name in names)}
    blocks = {layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv1D)
              and layer.kernel_size == (3,) and layer.strides == (1,)}
    assert blocks and gemm == blocks  # not the stem: stride 3


def test_which_conv1d_layers_compute_their_filter_gradient_as_matrix_products():
    def used(channels, filters, kernel=3, length=50, policy="float32", **kwargs):
        layer = keras.layers.Conv1D(filters, kernel, dtype=policy, **kwargs)
        layer(keras.Input((length, channels)))
        return training_graph.gemm_filter_gradient(layer)

    assert used(128, 128, padding="same") and used(256, 512, 7, padding="same")
    assert used(4, 4, 5, length=5, padding="same")
    assert not used(561, 64, 7, padding="same")  # oneDNN's is faster
    assert not used(128, 128, padding="same", policy="mixed_bfloat16")
    assert not used(1, 16, 165, length=336, padding="same")  # one pass per tap
    assert not used(128, 128, 4, padding="same")  # even
    assert not used(128, 128, 1, padding="same")
    assert not used(128, 128, padding="valid")
    assert not used(128, 128, padding="same", strides=2)
    assert not used(128, 128, padding="same", dilation_rate=2)
    assert not used(8, 8, 5, length=4, padding="same")  # shorter than the kernel


@pytest.mark.parametrize("batch,length,channels,kernel,filters", [
    (3, 10, 4, 3, 5), (2, 7, 3, 7, 6), (4, 5, 2, 5, 2), (1, 9, 3, 3, 3)])
def test_the_matrix_product_filter_gradient_is_tensorflows_own(batch, length, channels,
                                                                 kernel, filters):
    """In float64: the output and both gradients of `conv1d_same` equal
    TensorFlow's "same" Conv1D's (one example, a kernel as long as the input)."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((batch, length, channels)), tf.float64)
    weights = tf.constant(rng.standard_normal((kernel, channels, filters)), tf.float64)
    upstream = tf.constant(rng.standard_normal((batch, length, filters)), tf.float64)
    results = []
    for convolve in (lambda x, w: tf.nn.conv1d(x, w, 1, "SAME"), training_graph.conv1d_same):
        with tf.GradientTape() as tape:
            tape.watch([x, weights])
            y = convolve(x, weights)
            loss = tf.reduce_sum(y * upstream)
        results.append([y, *tape.gradient(loss, [x, weights])])
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def test_tall_and_square_one_channel_kernels_are_stacked_in_training():
    assert [training_graph.stacked_in_training(size)
            for size in ((7, 38), (128, 1), (4, 9), (3, 3), (2, 2), (3, 7), (3, 5))] == [
        True, True, True, True, True, False, False]


def test_the_stackings_gradient_is_tensorflows_own():
    """`stacked_shifts`' gradient, sums of padded channels, equals the
    gradient TensorFlow derives for the slices and their concatenation."""
    from tagger.layers import inference_conv2d

    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((2, 20, 5, 1)), tf.float32)
    upstream = tf.constant(rng.standard_normal((2, 14, 5, 7)), tf.float32)
    gradients = []
    for stack in (inference_conv2d.stacked_shifts, training_graph.stacked_shifts):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = stack(x, 7, 14)
            loss = tf.reduce_sum(y * upstream)
        gradients.append(tape.gradient(loss, x).numpy())
    np.testing.assert_array_equal(y, inference_conv2d.stacked_shifts(x, 7, 14))
    np.testing.assert_array_equal(gradients[0], gradients[1])


@pytest.mark.slow
def test_the_step_runs_every_batch_norm_fused():
    *_, train, iterator = three_steps("samplecnn")
    graph = train.get_concrete_function(iterator, 1).graph
    operations = [op.name for op in graph.get_operations()]
    fused = [op.name for op in graph.get_operations() if op.type == "FusedBatchNormV3"]
    norms = [layer.name for layer in tiny_model("samplecnn").layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms[0] == "stem_bn" and len(fused) == len(norms) - 1  # the stem's: stem_norm
    assert all(any(f"/{name}_fused" in op for op in fused) for name in norms[1:])
    assert any("/stem_bn_stem_" in op for op in operations)


def one_step(family, forms, policy="float32", start=None):
    """The loss of one SGD step of the tiny `family` (without dropout: float64
    draws other masks), in `policy`, from the weights `start` (a model of
    the family), and its weights after the step, in float64. `forms`: the
    step runs the model's `training_model` form, else its own layers."""
    keras.config.set_dtype_policy(policy)
    try:
        model = tiny_model(family)
    finally:
        keras.config.set_dtype_policy("float32")
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0
    for variable, value in zip(model.weights, start.weights):
        variable.assign(np.asarray(value).astype(variable.dtype))
    step = trainer.make_train_function(model, keras.optimizers.SGD(0.01),
                                       tf.distribute.get_strategy(), global_batch=BATCH)
    windows, tags = batch_of(model)
    iterator = iter(tf.data.Dataset.from_tensors((windows.astype(policy),
                                                  tags.astype(policy))).repeat())
    with pytest.MonkeyPatch.context() as patch:
        if not forms:
            patch.setattr(trainer, "training_model", lambda model: model)
        loss = float(step(iterator, 1))
    return loss, [np.asarray(v, np.float64) for v in model.weights]


# musicnn: taps and norms of PyTorch's epsilon; samplecnn: norms of 2-D and
# 3-D inputs; multiscale: a norm without scale or centre; short_res: 4-D.
@pytest.mark.slow
@pytest.mark.parametrize("family", ["pons_musicnn", "musicnn", "samplecnn", "multiscale",
                                    "short_res", "pons_vgg"])
def test_the_training_form_is_as_exact_as_the_models_own_layers(family):
    """Against the same step in float64: the loss, and each variable's
    change (moving statistics too) that the step makes. Keras's own float32
    layers are off by up to 1e-5 in the loss and a few % of some variables'
    changes (batch norms over 8 windows); the training form must be as
    close (within 5 times Keras's own error)."""
    start = tiny_model(family)
    exact = one_step(family, False, "float64", start)
    plain, fast = one_step(family, False, start=start), one_step(family, True, start=start)
    initial = [np.asarray(v, np.float64) for v in start.weights]

    def errors(got):
        loss = abs(got[0] - exact[0]) / exact[0]
        changes = [np.linalg.norm(value - want) / np.linalg.norm(want - before)
                   for value, want, before in zip(got[1], exact[1], initial)
                   if np.linalg.norm(want - before) > 1e-9]
        return loss, max(changes)

    (plain_loss, plain_change), (fast_loss, fast_change) = errors(plain), errors(fast)
    assert fast_loss <= max(5 * plain_loss, 5e-6)
    assert fast_change <= 5 * plain_change


@pytest.mark.parametrize("shape", [(8, 16), (8, 100, 8), (4, 9, 7, 8), (23, 300, 16)])
def test_a_fused_norm_is_exact_to_float32_rounding(shape):
    """Against float64, on activations whose mean is 30 times their spread
    (where a one-pass variance loses digits): the output, the gradients of
    the input, gamma and beta, and the moving statistics (the batch's
    variance without Bessel's correction, as Keras keeps it)."""
    from tagger.models.training_graph import FusedBatchNorm

    rng = np.random.default_rng(0)
    x = 3.0 * rng.standard_normal(shape) + 100.0
    weights = rng.standard_normal(shape)  # the loss: sum(y * weights)
    gamma, beta = rng.random(shape[-1]) + 0.5, rng.standard_normal(shape[-1])
    axes = tuple(range(len(shape) - 1))
    mean, variance = x.mean(axes), x.var(axes)
    inverse = 1.0 / np.sqrt(variance + 1e-3)
    normal = (x - mean) * inverse
    d_x = gamma * inverse * (weights - weights.mean(axes) - normal * (weights * normal).mean(axes))
    expected = [gamma * normal + beta, d_x, (weights * normal).sum(axes), weights.sum(axes),
                0.01 * mean, 0.99 + 0.01 * variance]
    norm = keras.layers.BatchNormalization(momentum=0.99, epsilon=1e-3)
    norm.build(shape)
    norm.gamma.assign(gamma.astype(np.float32))
    norm.beta.assign(beta.astype(np.float32))
    x32 = tf.constant(x.astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x32)
        y = FusedBatchNorm(norm)(x32, training=True)
        loss = tf.reduce_sum(y * weights.astype(np.float32))
    got = [y, *tape.gradient(loss, [x32, norm.gamma, norm.beta]), norm.moving_mean,
           norm.moving_variance]
    for value, want in zip(got, expected):
        error = np.max(np.abs(np.asarray(value, np.float64) - want)) / np.max(np.abs(want))
        assert error < 2e-5


def test_a_bias_gradient_is_the_upstream_sum_in_bfloat16_too():
    """`bias_added`'s bias gradient: the upstream gradient summed over
    every row, to float32 rounding in float32 and to bfloat16 rounding in
    bfloat16 (over 20000 rows of 8 channels, with a large common part)."""
    rng = np.random.default_rng(0)
    upstream = rng.standard_normal((4, 5000, 8)) + 3.0
    want = upstream.sum((0, 1))
    for dtype, tolerance in ((tf.float32, 1e-5), (tf.bfloat16, 1e-2)):
        y = tf.zeros(upstream.shape, dtype)
        bias = tf.zeros([8], dtype)
        with tf.GradientTape() as tape:
            tape.watch(bias)
            out = training_sums.bias_added(y, bias)
            loss = tf.reduce_sum(tf.cast(out, tf.float32) * upstream.astype(np.float32))
        got = np.asarray(tf.cast(tape.gradient(loss, bias), tf.float64))
        assert np.max(np.abs(got - want)) / np.max(np.abs(want)) < tolerance


@pytest.mark.parametrize("channels", [16, 12])
@pytest.mark.parametrize("offset", [0.0, 90.0])
def test_a_bfloat16_fused_norm_is_exact_to_bfloat16_rounding(channels, offset):
    """A bfloat16 input (16 channels: to the fused kernel as it is,
    uncentred; 12: through float32), offset by 0 or 30 times its spread:
    the output and the input's gradient against float64 on the same
    values, as close as Keras's own bfloat16 layer; the moving statistics
    as Keras keeps them."""
    from tagger.models.training_graph import FusedBatchNorm

    rng = np.random.default_rng(0)
    x = tf.cast(3.0 * rng.standard_normal((16, 300, channels)) + offset, tf.bfloat16)
    upstream = rng.standard_normal(x.shape)
    values = np.asarray(tf.cast(x, tf.float64))
    mean, variance = values.mean((0, 1)), values.var((0, 1))
    inverse = 1 / np.sqrt(variance + 1e-3)
    want = (values - mean) * inverse
    want_dx = inverse * (upstream - upstream.mean((0, 1))
                         - want * (upstream * want).mean((0, 1)))

    def errors(make):
        norm = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-3,
                                               dtype="mixed_bfloat16")
        norm.build(x.shape)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = make(norm)(x, training=True)
            loss = tf.reduce_sum(tf.cast(y, tf.float64) * upstream)
        assert y.dtype == tf.bfloat16
        dx = np.asarray(tf.cast(tape.gradient(loss, x), tf.float64))
        return norm, np.max(np.abs(np.asarray(tf.cast(y, tf.float64)) - want)), np.max(
            np.abs(dx - want_dx)) / np.max(np.abs(want_dx))

    norm, y_error, dx_error = errors(lambda norm: FusedBatchNorm(norm, dtype="mixed_bfloat16"))
    _, keras_y_error, keras_dx_error = errors(lambda norm: norm)
    assert y_error < 0.05 and dx_error < 0.02
    assert y_error <= 1.5 * keras_y_error and dx_error <= 1.5 * keras_dx_error
    # a mean near 0 (offset 0) to float32 summation's rounding, which moves
    # with the CPU's vector width and TensorFlow's threads: 1e-5 of a spread of 3
    np.testing.assert_allclose(norm.moving_mean, 0.1 * mean, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(norm.moving_variance, 0.9 + 0.1 * variance, rtol=1e-3)


@pytest.mark.slow
def test_a_bfloat16_step_sums_every_convolution_bias_by_a_product():
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        *_, train, iterator = three_steps("samplecnn", steps=1)
        model = tiny_model("samplecnn")
    finally:
        keras.config.set_dtype_policy("float32")
    names = {op.name for op in train.get_concrete_function(iterator, 1).graph.get_operations()}
    convs = {layer.name for layer in model.layers
             if isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D))}
    summed = {name for name in convs if any(f"/{name}_bias" in op for op in names)}
    # float32's filter-gradient form is not used; the stem's bias is its norm's (stem_norm)
    assert convs and summed == convs - {"stem_conv"}
    assert any("/stem_bn_stem_" in op for op in names)


def test_which_convolutions_sum_their_bias_gradient_by_a_product():
    def used(layer, shape=(20, 4)):
        layer(keras.Input(shape))
        return training_graph.bias_gradient_as_product(layer)

    bf16 = "mixed_bfloat16"
    assert used(keras.layers.Conv1D(4, 3, dtype=bf16))
    assert used(keras.layers.Conv2D(4, 3, padding="same", dtype=bf16), (9, 9, 2))
    assert not used(keras.layers.Conv1D(4, 3))  # float32: TensorFlow's own is exact
    assert not used(keras.layers.Conv1D(4, 3, use_bias=False, dtype=bf16))
    assert not used(keras.layers.Conv1D(4, 3, padding="causal", dtype=bf16))


def test_the_training_form_shares_the_models_variables():
    from tagger.models.training_graph import training_model

    model = tiny_model("pons_musicnn")
    fast = training_model(model)
    assert fast is not model
    assert [id(v) for v in fast.trainable_variables] == [
        id(v) for v in model.trainable_variables]
    x, _ = batch_of(model)
    np.testing.assert_allclose(fast(x, training=False), model(x, training=False),
                               rtol=1e-5, atol=1e-6)
    assert [id(v) for v in fast.weights] == [id(v) for v in model.weights]
    inputs = keras.Input((8,))  # nothing to compute otherwise
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.LayerNormalization()(inputs)))
    assert training_model(model) is model


@pytest.mark.parametrize("dtype,tolerance", [("float32", 1e-6), ("bfloat16", 1e-2)])
def test_the_compiled_gelu_is_the_exact_gelu_and_its_gradient(dtype, tolerance):
    """Against the float64 GELU x * Phi(x) and its gradient, over values
    either side of 0 out to the tails: as close as TensorFlow's own."""
    from tagger.models.training_gelu import compiled_gelu

    x64 = np.linspace(-9.0, 9.0, 1001)
    upstream64 = np.cos(x64)
    x, upstream = tf.cast(x64, dtype), tf.cast(upstream64, dtype)

    def value_and_gradient(gelu):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = gelu(x)
        return (np.asarray(tf.cast(y, tf.float64)),
                np.asarray(tf.cast(tape.gradient(y, x, upstream), tf.float64)))

    x_rounded = np.asarray(tf.cast(x, tf.float64))  # the values the functions see
    want = tf.nn.gelu(tf.constant(x_rounded), approximate=False).numpy()
    with tf.GradientTape() as tape:
        exact_x = tf.constant(x_rounded)
        tape.watch(exact_x)
        exact_y = tf.nn.gelu(exact_x, approximate=False)
    want_gradient = tape.gradient(exact_y, exact_x, tf.constant(
        np.asarray(tf.cast(upstream, tf.float64)))).numpy()
    ours = value_and_gradient(compiled_gelu)
    theirs = value_and_gradient(lambda v: tf.nn.gelu(v, approximate=False))
    for got, other, exact in zip(ours, theirs, (want, want_gradient)):
        scale = np.maximum(np.abs(exact), 1.0)
        assert np.max(np.abs(got - exact) / scale) <= max(
            tolerance, np.max(np.abs(other - exact) / scale))


@pytest.mark.parametrize("norm_first", [False, True])
def test_the_encoders_gelu_trains_compiled_with_the_models_values_and_gradients(norm_first):
    """A BERT (post-norm) or ViT (pre-norm) layer's training form: its GELU
    compiled, the rest the layer's own; the same outputs, attention and
    gradients as the layer."""
    from tagger.layers import TransformerEncoderLayer
    from tagger.models.training_gelu import TrainingEncoder

    keras.utils.set_random_seed(0)
    inputs = keras.Input((7, 16))
    hidden, weights = TransformerEncoderLayer(2, 64, norm_first=norm_first, dropout=0.0,
                                              attention_dropout=0.0, name="encoder0")(inputs)
    model = keras.Model(inputs, [hidden, weights])
    fast = training_graph.training_model(model)
    assert [type(layer) for layer in fast.layers if "encoder" in layer.name] == [TrainingEncoder]
    x = tf.random.stateless_normal((3, 7, 16), seed=(1, 2))
    upstream = tf.random.stateless_normal((3, 7, 16), seed=(3, 4))

    def outputs_and_gradients(form):
        with tf.GradientTape() as tape:
            tape.watch(x)
            hidden, weights = form(x, training=True)
            loss = tf.reduce_sum(hidden * upstream) + tf.reduce_sum(weights[..., 0])
        return [hidden, weights, *tape.gradient(loss, [x, *model.trainable_variables])]

    for got, want in zip(outputs_and_gradients(fast), outputs_and_gradients(model)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_without_xla_the_encoder_keeps_its_own_gelu(monkeypatch):
    """A TensorFlow built without XLA's JIT: the layer trains as it is."""
    from tagger.layers import TransformerEncoderLayer

    inputs = keras.Input((7, 16))
    model = keras.Model(inputs, TransformerEncoderLayer(2, 64, name="encoder0")(inputs))
    monkeypatch.setattr(tf.test, "is_built_with_xla", lambda: False)
    assert training_graph.training_model(model) is model


XLA_FAMILIES = ("samplecnn", "self_attention", "pons_musicnn")
XLA_STEPS = """
import json, sys
sys.path.insert(0, {root!r})
import keras
import tensorflow as tf

from tagger.training import trainer
from tests.training.test_training_graph import BATCH, XLA_FAMILIES, batch_of, tiny_model

losses = {{}}
for family in XLA_FAMILIES:
    for jit in (False, True):
        model = tiny_model(family)
        train = trainer.make_train_function(model, keras.optimizers.SGD(0.01),
                                            tf.distribute.get_strategy(), global_batch=BATCH,
                                            jit_compile=jit)
        iterator = iter(tf.data.Dataset.from_tensors(batch_of(model)).repeat())
        losses.setdefault(family, []).append([float(train(iterator, 1)) for _ in range(2)])
print(json.dumps(losses))
"""


@pytest.fixture(scope="module")
def xla_losses(tmp_path_factory):
    """{family: [[two steps' losses without XLA], [with jit_compile]]} of
    each of XLA_FAMILIES, from a process of their own: TensorFlow keeps
    the programs XLA compiles for the life of the process (a gigabyte for
    the sample-level CNN's), which a test worker need not hold."""
    from tests.checks import ROOT, run_json_script

    script = tmp_path_factory.mktemp("xla_steps") / "xla_steps.py"
    return run_json_script(script, XLA_STEPS.format(root=str(ROOT)))


@pytest.mark.slow
@pytest.mark.parametrize("family", XLA_FAMILIES)
def test_the_training_form_compiles_under_xla(family, xla_losses):
    """Every op of the forms has an XLA kernel (train.py --xla on, TPUs):
    two steps' losses with jit_compile are the steps' without it, the
    second (after the first's gradients) to 2% of the first step's change
    (XLA sums the batch norms of 8 windows in another order)."""
    (first, second), (first_xla, second_xla) = xla_losses[family]
    assert np.isfinite(first) and first_xla == pytest.approx(first, rel=1e-4)
    assert abs(second_xla - second) <= 0.02 * abs(second - first)
