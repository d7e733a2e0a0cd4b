"""A batch norm followed by a max pool (a ReLU between or not) trains as
the norm of the pooled values (tagger.models.pooled_norm): the same
output, gradients and moving statistics as the layers themselves."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tagger.models import FAMILIES, pooled_norm, training_graph
from tagger.models.layer_graph import calls, inputs_of
from tagger.models.pooled_norm import NormThenMax

PAIRS = {  # shape, pool
    "over_bins": ((4, 9, 29, 6), lambda: keras.layers.MaxPooling2D((1, 29))),
    "square": ((3, 8, 10, 5), lambda: keras.layers.MaxPooling2D((2, 2))),
    "same_1d": ((4, 31, 7), lambda: keras.layers.MaxPooling1D(3, padding="same")),
    "strided_1d": ((4, 30, 7), lambda: keras.layers.MaxPooling1D(4, strides=3)),
}


def layers_of(shape, pool, relu, dtype="float32"):
    """A BatchNormalization (some gammas negative), its pool, its ReLU or None."""
    rng = np.random.default_rng(1)
    norm = keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-3, dtype=dtype)
    norm.build(shape)
    channels = shape[-1]
    norm.gamma.assign(rng.uniform(0.5, 1.5, channels) * np.where(np.arange(channels) % 3, 1, -1))
    norm.beta.assign(rng.standard_normal(channels))
    pool = pool()
    pool.dtype_policy = keras.DTypePolicy(dtype)
    return norm, pool, keras.layers.ReLU(dtype=dtype) if relu else None


def outputs_and_gradients(x, upstream, forward, variables):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = forward(x)
        loss = tf.reduce_sum(tf.cast(y, tf.float64) * upstream)
    return [y, *tape.gradient(loss, [x, *variables])]


@pytest.mark.parametrize("rectified", [False, True])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("case", sorted(PAIRS))
def test_the_pooled_norm_is_the_norm_then_the_pool_to_float32_rounding(case, relu, rectified):
    """Against the layers in float64: the output, the gradients of x, gamma
    and beta, and the moving statistics; `rectified`: of the norm of
    relu(x), its ReLU the pooled norm's."""
    shape, pool = PAIRS[case]
    rng = np.random.default_rng(0)
    x = 2.0 * rng.standard_normal(shape) + (0.0 if rectified else 1.0)
    got_layers, want_layers = layers_of(shape, pool, relu), layers_of(shape, pool, relu, "float64")
    upstream = rng.standard_normal(got_layers[1].compute_output_shape(shape))

    def plain(x):
        norm, pool, relu = want_layers
        y = norm(tf.nn.relu(x) if rectified else x, training=True)
        return pool(relu(y) if relu else y)

    fast = NormThenMax(*got_layers, rectified=rectified)
    got = outputs_and_gradients(tf.constant(x, tf.float32), upstream,
                                lambda x: fast(x, training=True), got_layers[0].trainable_weights)
    want = outputs_and_gradients(tf.constant(x), upstream, plain,
                                 want_layers[0].trainable_weights)
    got += [got_layers[0].moving_mean, got_layers[0].moving_variance]
    want += [want_layers[0].moving_mean, want_layers[0].moving_variance]
    assert got[0].shape == want[0].shape == upstream.shape
    for value, expected in zip(got, want):
        value, expected = np.asarray(value, np.float64), np.asarray(expected)
        assert np.max(np.abs(value - expected)) <= 2e-5 * np.max(np.abs(expected))


@pytest.mark.parametrize("rectified", [False, True])
def test_a_bfloat16_pooled_norm_is_exact_to_bfloat16_rounding(rectified):
    """bfloat16 ReLU outputs (`rectified`: their ReLU the pooled norm's):
    the output and x's gradient to bfloat16's rounding, the moving
    statistics to 1e-3, against float64 on the same values."""
    shape, pool = PAIRS["over_bins"]
    rng = np.random.default_rng(0)
    raw = rng.standard_normal(shape)
    x = tf.cast(raw if rectified else np.maximum(raw, 0.0), tf.bfloat16)
    values = tf.cast(x, tf.float64)
    got_layers = layers_of(shape, pool, True, "mixed_bfloat16")
    want_layers = layers_of(shape, pool, True, "float64")
    upstream = rng.standard_normal(got_layers[1].compute_output_shape(shape))
    fast = NormThenMax(*got_layers, rectified=rectified, dtype="mixed_bfloat16")
    y, d_x, *_ = outputs_and_gradients(x, upstream, lambda x: fast(x, training=True), [])
    norm, pool, relu = want_layers
    want_y, want_d_x = outputs_and_gradients(
        values, upstream,
        lambda x: pool(relu(norm(tf.nn.relu(x) if rectified else x, training=True))), [])
    assert y.dtype == d_x.dtype == tf.bfloat16
    for value, expected in ((y, want_y), (d_x, want_d_x)):
        error = np.abs(np.asarray(tf.cast(value, tf.float64)) - np.asarray(expected))
        assert np.max(error) <= 2 ** -7 * np.max(np.abs(expected))
    for moving in ("moving_mean", "moving_variance"):
        np.testing.assert_allclose(getattr(got_layers[0], moving),
                                   getattr(want_layers[0], moving), rtol=1e-3)


@pytest.mark.parametrize("rectified", [False, True])
@pytest.mark.parametrize("frozen", [False, True])
def test_out_of_training_or_frozen_the_norm_uses_its_moving_statistics(frozen, rectified):
    shape, pool = PAIRS["square"]
    norm, pool, relu = layers_of(shape, pool, True)
    norm.moving_mean.assign(np.full(shape[-1], 0.5, np.float32))
    norm.moving_variance.assign(np.full(shape[-1], 4.0, np.float32))
    norm.trainable = not frozen
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    y = NormThenMax(norm, pool, relu, rectified=rectified)(x, training=frozen)
    gamma, beta = np.asarray(norm.gamma), np.asarray(norm.beta)
    normed = np.maximum(x, 0.0) if rectified else x
    want = np.maximum(gamma * (normed - 0.5) / np.sqrt(4.0 + 1e-3) + beta, 0.0)
    want = want.reshape(3, 4, 2, 5, 2, 5).max((2, 4))  # 2 x 2 windows
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(norm.moving_mean, 0.5)  # not updated


def test_a_bfloat16_norm_of_a_large_mean_computes_its_moments_as_keras_does():
    """Channels whose mean is 10 standard deviations from zero (where sums
    of x and x^2 lose digits): the moving statistics to 1e-3 and the
    output and the gradients of x, gamma and beta to bfloat16's rounding,
    against float64 on the same values."""
    shape, pool = PAIRS["over_bins"]
    rng = np.random.default_rng(0)
    x = tf.cast(rng.standard_normal(shape) + 10.0, tf.bfloat16)
    got_layers = layers_of(shape, pool, False, "mixed_bfloat16")
    want_layers = layers_of(shape, pool, False, "float64")
    upstream = rng.standard_normal(got_layers[1].compute_output_shape(shape))
    fast = NormThenMax(*got_layers, dtype="mixed_bfloat16")
    got = outputs_and_gradients(x, upstream, lambda x: fast(x, training=True),
                                got_layers[0].trainable_weights)
    norm, pool, _ = want_layers
    want = outputs_and_gradients(tf.cast(x, tf.float64), upstream,
                                 lambda x: pool(norm(x, training=True)), norm.trainable_weights)
    for value, expected in zip(got, want):
        error = np.abs(np.asarray(tf.cast(value, tf.float64)) - np.asarray(expected))
        assert np.max(error) <= 2 ** -7 * np.max(np.abs(expected))
    variance = np.asarray(tf.cast(x, tf.float64)).var((0, 1, 2))
    np.testing.assert_allclose((np.asarray(got_layers[0].moving_variance) - 0.9) / 0.1,
                               variance, rtol=1e-3)


@pytest.mark.parametrize("offset", [0.0, 1000.0])
def test_the_float32_moments_are_float64s_to_float32_rounding(offset):
    """One pass over x, shifted by its first row: no cancellation where the
    mean is a thousand standard deviations from zero."""
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((4, 50, 7, 12)) * rng.uniform(0.1, 3.0, 12) + offset).astype(
        np.float32)
    mean, variance = pooled_norm.shifted_moments(tf.constant(x))
    rows = x.astype(np.float64).reshape(-1, 12)
    assert np.all(np.abs(mean - rows.mean(0)) <= 1e-6 * (np.abs(rows.mean(0)) + rows.std(0)))
    np.testing.assert_allclose(variance, rows.var(0), rtol=1e-5)


def model_with_a_shared_input():
    """conv -> (norm1 -> max over 32 bins), (norm2 -> ReLU -> max over 32
    bins) and a convolution, all three reading conv's output."""
    inputs = keras.Input((8, 32, 2))
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    first = keras.layers.MaxPooling2D((1, 32))(keras.layers.BatchNormalization(name="norm1")(x))
    second = keras.layers.BatchNormalization(name="norm2")(x)
    second = keras.layers.MaxPooling2D((1, 32))(keras.layers.ReLU()(second))
    side = keras.layers.Conv2D(3, 1, name="side")(x)
    return keras.Model(inputs, [first, second, side])


def test_norms_that_share_their_input_with_other_layers_are_pooled_each_alone():
    keras.utils.set_random_seed(0)
    model = model_with_a_shared_input()
    fast = training_graph.training_model(model)
    assert {layer.layer.name for layer in fast.layers if isinstance(layer, NormThenMax)} == {
        "norm1", "norm2"}
    x = np.random.default_rng(0).standard_normal((4, 8, 32, 2)).astype(np.float32)
    for got, want in zip(fast(x, training=True), model(x, training=True)):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_a_second_training_form_pools_the_norms_too():
    """An earlier form (training or inference) calls the pools again; those
    calls are its own, not the model's."""
    from tagger.models.inference_graph import inference_model

    spec = FAMILIES["musicnn"]
    model = spec.build(num_tags=5, **spec.tiny)
    training_graph.training_model(model)
    inference_model(model)
    wrapped = {layer.layer.name for layer in training_graph.training_model(model).layers
               if isinstance(layer, NormThenMax)}
    assert wrapped == {"timbral1_bn", "timbral2_bn"}


def test_which_norms_are_pooled():
    def found(*layers, shape=(10, 10, 4)):
        x = inputs = keras.Input(shape)
        norm = keras.layers.BatchNormalization()
        x = norm(x)
        for layer in layers:
            x = layer(x)
        return pooled_norm.pooled_after(keras.Model(inputs, x), norm)

    pool = keras.layers.MaxPooling2D((8, 2))
    assert found(pool) == (pool, None)
    pool, relu = keras.layers.MaxPooling2D(4), keras.layers.ReLU()
    assert found(relu, pool) == (pool, relu)
    assert found(keras.layers.MaxPooling2D(2)) is None  # 4 values to one: slower
    assert found(keras.layers.MaxPooling2D(4, strides=2)) is None
    assert found(keras.layers.AveragePooling2D(4)) is None
    assert found(keras.layers.ReLU(max_value=6.0), keras.layers.MaxPooling2D(4)) is None
    assert found(keras.layers.MaxPooling2D(4, data_format="channels_first")) is None

    inputs = keras.Input((40, 4))
    norm = keras.layers.BatchNormalization()
    y = norm(inputs)
    read_twice = keras.Model(inputs, [keras.layers.MaxPooling1D(20)(y), keras.layers.Dense(2)(y)])
    assert pooled_norm.pooled_after(read_twice, norm) is None
    norm = keras.layers.BatchNormalization()
    y = norm(inputs)
    an_output = keras.Model(inputs, [keras.layers.MaxPooling1D(20)(y), y])
    assert pooled_norm.pooled_after(an_output, norm) is None
    norm, pool = keras.layers.BatchNormalization(), keras.layers.MaxPooling1D(20)
    pool_twice = keras.Model(inputs, [pool(norm(inputs)), pool(inputs)])
    assert pooled_norm.pooled_after(pool_twice, norm) is None


@pytest.mark.parametrize("family, pooled", [
    ("pons_musicnn", {"timbral1_bn", "timbral2_bn", "temporal1_bn", "temporal2_bn",
                      "temporal3_bn"}),
    ("musicnn", {"timbral1_bn", "timbral2_bn"}),
])
def test_the_musicnn_families_train_their_frequency_norms_pooled(family, pooled):
    """The package Musicnn's convolutions' ReLUs (before their norms) are
    its pooled norms'; the convolutions run without them."""
    spec = FAMILIES[family]
    keras.utils.set_random_seed(0)
    model = spec.build(num_tags=5, **spec.tiny)
    fast = training_graph.training_model(model)
    wrapped = {layer.layer.name: layer.rectified for layer in fast.layers
               if isinstance(layer, NormThenMax)}
    assert wrapped == dict.fromkeys(pooled, family == "pons_musicnn")
    for name in pooled:
        conv = inputs_of(fast, fast.get_layer(f"{name}_pooled"))[0]
        assert conv.name == name.replace("_bn", "_conv_folded")
        assert conv.activated == (family == "musicnn")  # musicnn's, of no activation


def test_a_deeper_convolution_gives_its_relu_to_the_pooled_norm():
    """conv1 -> conv2 (ReLU) -> norm -> max over 30 bins: conv2 runs as a
    `TrainingConv` without its ReLU, the pooled norm takes it; the same
    output and gradients as the model's."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 32, 2))
    y = keras.layers.Conv2D(4, 3, padding="same", name="conv1")(inputs)
    y = keras.layers.Conv2D(5, 3, activation="relu", name="conv2")(y)
    y = keras.layers.MaxPooling2D((1, 30))(keras.layers.BatchNormalization(name="norm")(y))
    model = keras.Model(inputs, y)
    fast = training_graph.training_model(model)
    assert fast.get_layer("norm_pooled").rectified
    assert not fast.get_layer("conv2_bias").activated
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((3, 6, 32, 2)), tf.float32)
    upstream = rng.standard_normal((3, 4, 1, 5))
    got = outputs_and_gradients(x, upstream, lambda v: fast(v, training=True),
                                model.trainable_weights)
    want = outputs_and_gradients(x, upstream, lambda v: model(v, training=True),
                                 model.trainable_weights)
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_which_convolutions_give_their_relu_to_the_pooled_norm():
    def found(conv, *others, shape=(6, 40, 2)):
        inputs = keras.Input(shape)
        y = conv(inputs)
        norm = keras.layers.BatchNormalization()
        model = keras.Model(inputs, [keras.layers.MaxPooling2D((1, 38))(norm(y)),
                                     *(other(y) for other in others)])
        return pooled_norm.rectifying(model, norm)

    assert found(conv := keras.layers.Conv2D(3, 3, activation="relu")) is conv
    assert found(keras.layers.Conv2D(3, 3)) is None
    assert found(keras.layers.Conv2D(3, 3, activation="elu")) is None
    assert found(keras.layers.Conv2D(3, 3, activation="relu"), keras.layers.ReLU()) is None
    assert found(keras.layers.Conv2D(3, 3, activation="relu", dtype="mixed_bfloat16")) is None


def test_which_relus_run_after_their_max_pool():
    def found(relu, *readers, shape=(12, 4)):
        inputs = keras.Input(shape)
        y = relu(inputs)
        outputs = [reader(y) for reader in readers] or [y]
        return pooled_norm.max_after_relu(keras.Model(inputs, outputs), relu)

    for pool in (keras.layers.MaxPooling1D(2), keras.layers.MaxPooling1D(3, padding="same"),
                 keras.layers.GlobalMaxPooling1D()):
        assert found(relu := keras.layers.ReLU(), pool) is pool, relu
    assert found(keras.layers.ReLU(), keras.layers.MaxPooling2D(2), shape=(4, 4, 2)) is not None
    assert found(keras.layers.ReLU(max_value=6.0), keras.layers.MaxPooling1D(2)) is None
    assert found(keras.layers.ReLU(negative_slope=0.1), keras.layers.MaxPooling1D(2)) is None
    assert found(keras.layers.ReLU(), keras.layers.AveragePooling1D(2)) is None
    assert found(keras.layers.ReLU()) is None  # the model's output
    assert found(keras.layers.ReLU(), keras.layers.MaxPooling1D(2), keras.layers.Dense(2)) is None
    assert found(keras.layers.Activation("relu"), keras.layers.MaxPooling1D(2)) is None
    # a convolution's own ReLU
    assert found(conv := keras.layers.Conv1D(3, 3, activation="relu"),
                 pool := keras.layers.MaxPooling1D(2)) is pool, conv
    assert found(keras.layers.Conv2D(3, 3, activation="relu"), keras.layers.MaxPooling2D(2),
                 shape=(6, 6, 2)) is not None
    assert found(keras.layers.Conv1D(3, 3), keras.layers.MaxPooling1D(2)) is None
    assert found(keras.layers.Conv1D(3, 3, activation="elu"), keras.layers.MaxPooling1D(2)) is None
    assert found(keras.layers.Conv1D(3, 3, activation="relu"), keras.layers.MaxPooling1D(2),
                 keras.layers.Dense(2)) is None


@pytest.mark.parametrize("own", [False, True])
def test_a_relu_after_its_max_pool_computes_the_same_output_and_gradients(own):
    """conv -> ReLU -> max pool, trained as conv -> max pool -> ReLU: the
    same output and gradients (exactly: the max and the ReLU commute, and a
    window whose values are all negative has no gradient either way); the
    ReLU a layer of its own, or the convolution's activation (`own`)."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((30, 3))
    y = keras.layers.Conv1D(5, 3, padding="same", bias_initializer=keras.initializers.Constant(
        -0.5), activation="relu" if own else None, name="conv")(inputs)
    y = keras.layers.MaxPooling1D(3, name="pool")(y if own else keras.layers.ReLU(name="relu")(y))
    top = keras.layers.GlobalMaxPooling1D(name="global")(keras.layers.ReLU(name="relu2")(y))
    model = keras.Model(inputs, [y, top])
    fast = training_graph.training_model(model)
    assert fast is not model
    for relu, pool in (("conv_relu" if own else "relu", "pool"), ("relu2", "global")):
        assert calls(fast, layer := fast.get_layer(relu)) == 1
        assert [reader.name for reader in inputs_of(fast, layer)] == [pool]
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((4, 30, 3)), tf.float32)
    upstream = rng.standard_normal((4, 55))

    def joined(form):
        return lambda v: tf.concat([tf.reshape(y, [4, -1]) for y in form(v, training=True)], 1)

    got = outputs_and_gradients(x, upstream, joined(fast), model.trainable_weights)
    want = outputs_and_gradients(x, upstream, joined(model), model.trainable_weights)
    assert_relu_outputs_and_gradients_agree(got, want, 1e-6)


def assert_relu_outputs_and_gradients_agree(got, want, tolerance):
    """`outputs_and_gradients` of two forms: some pooled windows all <= 0
    (the ReLU's zeros, not all), then every tensor equal to `tolerance`."""
    assert 0 < float(tf.reduce_mean(tf.cast(got[0] == 0, tf.float32))) < 0.9
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=tolerance, atol=tolerance)


def relus_after_pools(family):
    """`family`'s tiny model and the names of its layers whose ReLU the
    training form runs after their max pool."""
    spec = FAMILIES[family]
    keras.utils.set_random_seed(0)
    model = spec.build(num_tags=5, **spec.tiny)
    return model, {layer.name for layer in model.layers
                   if pooled_norm.max_after_relu(model, layer) is not None}


def test_the_sample_level_blocks_run_their_relu_after_the_pool():
    model, moved = relus_after_pools("samplecnn")
    pools = {layer.name: layer for layer in model.layers
             if isinstance(layer, keras.layers.MaxPooling1D)}
    assert pools and moved == {name.replace("_pool", "_relu") for name in pools}
    assert "stem_relu" not in moved


CONV_RELU_CASES = {  # input shape, the layers before the convolution, its kernel, its form
    "taps": ((12, 10, 1), [], (3, 3), "conv_taps"),  # one channel, stacked as taps
    "folded": ((12, 10, 1), [lambda: keras.layers.BatchNormalization()], (3, 5), "conv_folded"),
    "plain": ((12, 10, 4), [], (3, 3), "conv_bias"),
}


@pytest.mark.parametrize("case", sorted(CONV_RELU_CASES))
def test_a_conv2d_trains_its_relu_after_its_max_pool_in_each_form(case):
    """A Conv2D(activation="relu") read by a max pool, in the taps, folded
    and plain forms: the ReLU runs on the pooled values, with the model's
    output and gradients."""
    shape, before, kernel, form = CONV_RELU_CASES[case]
    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape)
    y = inputs
    for make in before:
        y = make()(y)
    y = keras.layers.Conv2D(6, kernel, padding="same", activation="relu", name="conv",
                            bias_initializer=keras.initializers.Constant(-0.3))(y)
    model = keras.Model(inputs, keras.layers.MaxPooling2D((2, 2), name="pool")(y))
    fast = training_graph.training_model(model)
    assert [reader.name for reader in inputs_of(fast, fast.get_layer("conv_relu"))] == ["pool"]
    assert [reader.name for reader in inputs_of(fast, fast.get_layer("pool"))] == [form]
    rng = np.random.default_rng(1)
    x = tf.constant(rng.standard_normal((3, *shape)), tf.float32)
    upstream = rng.standard_normal((3, 6, 5, 6))
    got = outputs_and_gradients(x, upstream, lambda v: fast(v, training=True),
                                model.trainable_weights)
    want = outputs_and_gradients(x, upstream, lambda v: model(v, training=True),
                                 model.trainable_weights)
    if case == "folded":  # the folded norm computes no input gradient, by design
        assert got[1] is None
        got, want = got[:1] + got[2:], want[:1] + want[2:]
    assert_relu_outputs_and_gradients_agree(got, want, 1e-5)


def test_the_multiscale_cnn_runs_its_convolutions_relus_after_their_pools():
    model, moved = relus_after_pools("multiscale")
    convs = {layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)}
    assert moved == convs - {"merge_conv1"}  # read by the next convolution, not a pool
