"""The JAX step's training form (`tagger.models.xla_training_graph`):
keras.ops layers, checked here under the suite's backend; every family's
steps under JAX against TensorFlow's: tests/training/test_backends_agree.py."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tagger.models import family, xla_training_graph
from tagger.models.folded_input_norm import added_to_each_example
from tagger.models.xla_training_graph import (
    TiledMaxPool,
    batch_pieces,
    stacked_shifts,
    xla_training_model,
)
from tagger.training.backend_jax import scores_forward

# (family, the layers its form replaces)
# (the spectrogram's norm folded into the convolutions that read it: its
# `_standard` image and their `_folded` forms)
FORMS = {
    "musicnn": {"input_bn_standard", "timbral1_conv_folded", "timbral2_conv_folded",
                "timbral1_pool_tiled", "timbral2_pool_tiled",
                "temporal1_conv_folded", "temporal2_conv_folded", "temporal3_conv_folded"},
    "short_cnn": {"input_bn_standard", "block1_conv_folded", "block1_pool_tiled"} | {
        f"block{i}_{form}" for i in range(2, 8) for form in ("conv_patches", "pool_tiled")},
    "samplecnn": {"stem_bn_stem"} | {f"block{i}_pool_tiled" for i in range(9)},
    "short_res": {"input_bn_standard", "block1_conv1_folded", "block1_shortcut_conv_folded",
                  "block1_conv2_patches"} | {f"block{i}_{conv}_patches" for i in range(2, 8)
                                             for conv in ("conv1", "conv2", "shortcut_conv")},
}


def tiny(name):
    """`name`'s tiny model for 5 tags, its dropout off."""
    spec = family(name)
    kwargs = dict(spec.tiny, num_tags=5)
    if spec.raw_waveform:
        kwargs["input_length"] = spec.preprocessor.segments * spec.preprocessor.segment_length
    keras.utils.set_random_seed(0)
    model = spec.build(**kwargs)
    for layer in model.layers:  # each call would draw its own masks
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0
    return model


def replaced(form, model) -> set:
    """The names of the form's layers that are not the model's."""
    own = {id(layer) for layer in model.layers}
    return {layer.name for layer in form.layers
            if id(layer) not in own and not isinstance(layer, keras.layers.InputLayer)}


def gradient(model, x, y, variables) -> np.ndarray:
    """The BCE's gradient over `variables` (the model's own, in their
    order: a form may hold them in another), as one vector."""
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(keras.losses.binary_crossentropy(y, model(x, training=True)))
    grads = tape.gradient(loss, variables)
    return np.concatenate([g.numpy().ravel() for g in grads])


@pytest.mark.parametrize("name", sorted(FORMS))
def test_the_form_computes_the_models_outputs_and_gradients(name):
    model = tiny(name)
    form = xla_training_model(model)
    assert replaced(form, model) == FORMS[name]
    assert [id(v) for v in form.weights] != [] and {id(v) for v in form.weights} == {
        id(v) for v in model.weights}  # the model's own variables
    rng = np.random.default_rng(0)
    x = (0.1 * rng.standard_normal((4, *model.inputs[0].shape[1:]))).astype("float32")
    y = (rng.random((4, 5)) < 0.4).astype("float32")
    np.testing.assert_allclose(form(x, training=False), model(x, training=False), atol=1e-5)
    expected, found = (gradient(m, x, y, model.trainable_variables) for m in (model, form))
    assert np.abs(expected).max() > 1e-4
    assert np.linalg.norm(found - expected) <= 1e-4 * np.linalg.norm(expected)


def test_what_keeps_the_models_own_layer():
    x = keras.Input((20, 12, 1))
    wide = keras.layers.Conv2D(3, (3, 5), name="one_channel")(x)  # patches
    strided = keras.layers.Conv2D(3, 3, strides=2, name="strided")(x)  # patches, every other
    strided_same = keras.layers.Conv2D(3, 3, strides=2, padding="same", name="strided_same")
    two = keras.layers.Conv2D(3, (3, 2), padding="same", name="two_channels")(
        keras.layers.Concatenate()([x, x]))  # patches: every shift of each channel a row
    one_row = keras.layers.Conv2D(3, (1, 3), padding="same", name="one_row")(
        keras.layers.Concatenate()([two] * 3))  # patches of 9 channels: column shifts stacked
    pointwise = keras.layers.Conv2D(3, 1, name="pointwise")(one_row)
    tiled = keras.layers.MaxPooling2D((4, 3), name="remainder")(wide)  # 18 x 8 -> 4 x 2
    overlapping = keras.layers.MaxPooling2D(3, strides=2, name="overlapping")(strided)
    padded = keras.layers.MaxPooling2D(2, padding="same", name="padded")(pointwise)
    shared = keras.layers.Conv2D(2, 2, name="shared")
    twice = keras.layers.Concatenate()([shared(x), shared(x)])
    outputs = [keras.layers.Flatten()(t)
               for t in (tiled, overlapping, padded, twice, strided_same(x))]
    model = keras.Model(x, keras.layers.Concatenate()(outputs))
    form = xla_training_model(model)
    assert replaced(form, model) == {"one_channel_patches", "two_channels_patches",
                                     "one_row_patches", "strided_patches", "remainder_tiled"}
    values = np.random.default_rng(1).standard_normal((2, 20, 12, 1)).astype("float32")
    np.testing.assert_allclose(form(values), model(values), atol=1e-5)
    plain = keras.Model(x, strided_same(x))
    assert xla_training_model(plain) is plain  # nothing to replace: the model itself


@pytest.mark.parametrize("channels, made_again, pieces", [
    (6, False, False), (6, True, False), (9, False, False), (9, True, False), (9, False, True),
    (9, True, True)])
def test_a_convolution_trains_as_the_models_own(channels, made_again, pieces, monkeypatch):
    """Of 6 channels every shift of each channel is a row of one matrix (the
    Harmonic CNN's first convolution); of 9 the column shifts are stacked
    and, at stride 1, multiplied by every row of the kernel at once, the
    gradients written out. "same" of an even kernel (padded
    more after than before), "valid" and strided, each with more filters
    than input channels (the strided with kernels of as many rows as the
    stride, more and fewer): the outputs and the gradients of every variable,
    the input norm's included; the stacked copies held from the forward
    pass, or made again in the backward; the backward of the whole batch,
    or of pieces of it (of 2 and 3 examples)."""
    if made_again:
        monkeypatch.setattr(xla_training_graph, "MADE_AGAIN_BYTES", 0)
    if pieces:  # the column patches of "same": 70,200 bytes, of "valid": 43,200
        monkeypatch.setattr(xla_training_graph, "BACKWARD_PIECE_BYTES", 40_000)
        assert [batch_pieces(keras.KerasTensor(patches)) for patches in (
            (5, 13, 10, 27), (5, 12, 9, 20))] == [[(0, 2), (2, 5)]] * 2
    x = keras.Input((12, 10, channels))
    y = keras.layers.BatchNormalization(name="bn")(x)  # not one channel: not folded
    y = keras.layers.Conv2D(channels + 1, (2, 3), padding="same", name="same")(y)
    y = keras.layers.Conv2D(channels + 3, (3, 2), name="valid")(y)
    strided = [keras.layers.Conv2D(3, kernel, strides=2, name=name)(y) for kernel, name in (
        ((2, 3), "strided"), ((3, 3), "strided_over"), ((1, 3), "strided_row"))]
    model = keras.Model(x, keras.layers.Dense(4, activation="sigmoid")(
        keras.layers.Concatenate()([keras.layers.Flatten()(t) for t in strided])))
    form = xla_training_model(model)
    assert replaced(form, model) == {"same_patches", "valid_patches", "strided_patches",
                                     "strided_over_patches", "strided_row_patches"}
    rng = np.random.default_rng(4)
    values = rng.standard_normal((5, 12, 10, channels)).astype("float32")
    labels = (rng.random((5, 4)) < 0.5).astype("float32")
    np.testing.assert_allclose(form(values, training=False), model(values, training=False),
                               atol=1e-5)
    expected, found = (gradient(m, values, labels, model.trainable_variables)
                       for m in (model, form))
    assert np.abs(expected).max() > 1e-4
    assert np.linalg.norm(found - expected) <= 1e-4 * np.linalg.norm(expected)


def test_a_batch_is_taken_in_as_few_near_equal_pieces_as_keep_each_under_the_bound(
        monkeypatch):
    monkeypatch.setattr(xla_training_graph, "BACKWARD_PIECE_BYTES", 1000)
    assert batch_pieces(keras.KerasTensor((5, 10, 25))) == [(0, 1), (1, 2), (2, 3), (3, 4),
                                                            (4, 5)]  # 1000 bytes each
    assert batch_pieces(keras.KerasTensor((5, 10, 10))) == [(0, 2), (2, 5)]  # 2000 in all
    assert batch_pieces(keras.KerasTensor((5, 2, 25))) == [(0, 5)]  # 1000 in all
    assert batch_pieces(keras.KerasTensor((3, 100, 25))) == [(0, 1), (1, 2), (2, 3)]
    assert batch_pieces(keras.KerasTensor((None, 100, 25))) == [(0, None)]
    assert batch_pieces(keras.KerasTensor((0, 100, 25))) == [(0, 0)]


@pytest.mark.parametrize("center", [True, False])
def test_a_folded_norm_with_or_without_beta_trains_as_the_models_own(center):
    """The norm's beta and the convolutions' biases: one example's offset
    (`added_to_each_example`), or the bias alone where the norm has no beta;
    through a padding and a reshape, into patches and Keras's own convolutions."""
    x = keras.Input((12, 10, 1))
    standard = keras.layers.BatchNormalization(center=center, name="bn")(x)
    wide = keras.layers.Conv2D(3, (3, 4), padding="same", name="wide")(standard)  # patches
    padded = keras.layers.ZeroPadding2D(1, name="pad")(standard)
    strided = keras.layers.Conv2D(2, 3, strides=2, padding="same", name="strided")(padded)
    rows = keras.layers.Reshape((12, 10), name="rows")(standard)
    one_d = keras.layers.Conv1D(2, 3, padding="same", name="one_d")(rows)  # Keras's conv
    outputs = [keras.layers.Flatten()(t) for t in (wide, strided, one_d)]
    model = keras.Model(x, keras.layers.Dense(4, activation="sigmoid")(
        keras.layers.Concatenate()(outputs)))
    form = xla_training_model(model)
    assert replaced(form, model) == {"bn_standard", "wide_folded", "strided_folded",
                                     "one_d_folded"}
    rng = np.random.default_rng(3)
    values = (3.0 + rng.standard_normal((5, 12, 10, 1))).astype("float32")
    labels = (rng.random((5, 4)) < 0.5).astype("float32")
    np.testing.assert_allclose(form(values, training=True), model(values, training=True),
                               atol=1e-5)
    expected, found = (gradient(m, values, labels, model.trainable_variables)
                       for m in (model, form))
    assert np.linalg.norm(found - expected) <= 1e-4 * np.linalg.norm(expected)


def test_an_offset_added_to_each_example_has_the_batchs_sum_as_its_gradient():
    rng = np.random.default_rng(4)
    y = tf.constant(rng.standard_normal((3, 4, 5, 2)), tf.float32)
    example = tf.Variable(rng.standard_normal((1, 4, 5, 2)).astype("float32"))
    weights = rng.standard_normal((3, 4, 5, 2)).astype("float32")
    with tf.GradientTape() as tape:
        added = added_to_each_example(y, example)
        total = tf.reduce_sum(added * weights)
    np.testing.assert_allclose(added, y + example, atol=1e-6)
    np.testing.assert_allclose(tape.gradient(total, example), weights.sum(0, keepdims=True),
                               atol=1e-5)


def test_a_tiled_pool_takes_each_windows_max_and_leaves_the_remainder():
    x = np.arange(2 * 7 * 3, dtype="float32").reshape(2, 7, 3)[:, ::-1]
    pooled = TiledMaxPool((3,))(x).numpy()
    np.testing.assert_array_equal(pooled, keras.layers.MaxPooling1D(3)(x).numpy())
    assert pooled.shape == (2, 2, 3) and TiledMaxPool((3,)).compute_output_shape(
        (None, 7, 3)) == (None, 2, 3)


@pytest.mark.parametrize("pool, strides", [((4, 1), (2, 2)), ((6, 2), (2, 2)), ((3, 3), (3, 3))])
def test_a_pool_of_windows_made_of_tiles_pools_and_trains_as_the_models_own(pool, strides):
    """Windows of one or several tiles, or of one element every stride
    (VGG's first pool: 4 x 1 every 2 x 2), over an input of no ties and
    with a remainder: the values and the input's gradient of MaxPooling2D."""
    x = tf.constant(np.random.default_rng(3).permutation(2 * 15 * 11 * 3)
                    .reshape(2, 15, 11, 3).astype("float32"))
    model_pool, form_pool = keras.layers.MaxPooling2D(pool, strides), TiledMaxPool(pool, strides)
    results = []
    for layer in (model_pool, form_pool):
        with tf.GradientTape() as tape:
            tape.watch(x)
            pooled = layer(x)
            total = tf.reduce_sum(pooled * tf.range(1.0, 1.0 + tf.size(pooled, tf.float32).numpy()
                                                    ).numpy().reshape(pooled.shape))
        results.append((pooled.numpy(), tape.gradient(total, x).numpy()))
    (expected, expected_gradient), (found, found_gradient) = results
    assert found.shape == expected.shape == form_pool.compute_output_shape(x.shape)
    np.testing.assert_array_equal(found, expected)
    np.testing.assert_array_equal(found_gradient, expected_gradient)
    assert 0 < np.count_nonzero(found_gradient) < found_gradient.size


def test_a_tiled_pools_gradient_is_shared_among_each_windows_equal_maxima():
    """Windows of 2 x 2 with one, four and two maxima, and a remainder row
    that gets none."""
    x = tf.constant([[1, 5, 3, 3, 2, 2],
                     [0, 2, 3, 3, 1, 1],
                     [9, 9, 9, 9, 9, 9]], "float32")[None, :, :, None]
    weights = tf.constant([[2.0, 4.0, 8.0]])[None, :, :, None]
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(TiledMaxPool((2, 2))(x) * weights)
    expected = [[0, 2, 1, 1, 4, 4], [0, 0, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0]]
    assert float(total) == 5 * 2 + 3 * 4 + 2 * 8
    np.testing.assert_array_equal(tape.gradient(total, x)[0, :, :, 0], expected)


@pytest.mark.parametrize("axis, taps, length, stride",
                         [(1, 3, 5, 1), (1, 7, 1, 1), (2, 4, 2, 2), (1, 6, 2, 1), (2, 9, 1, 1)])
def test_stacked_shifts_hold_every_tap_of_an_axis(axis, taps, length, stride):
    """[k] holds the elements k + stride * t along the axis, every other
    axis as it was, whether taps is prime (a slice each) or not (a + b
    slices); one position more than fits is refused."""
    x = np.arange(2 * 7 * 9, dtype="float32").reshape(2, 7, 9)
    found = np.asarray(stacked_shifts(x, axis, taps, length, stride))
    expected = [np.take(x, range(k, k + stride * (length - 1) + 1, stride), axis=axis)
                for k in range(taps)]
    np.testing.assert_array_equal(found, np.stack(expected))
    more = (x.shape[axis] - taps) // stride + 2  # positions past the last one that fits
    with pytest.raises(ValueError, match="exceed"):
        stacked_shifts(x, axis, taps, more, stride)


def test_the_jax_steps_forward_runs_the_form_with_the_models_variables_in_order(monkeypatch):
    pytest.importorskip("jax", reason="the JAX step's forward asks JAX for its devices")
    from tagger.models import xla_training_graph

    forms = []

    def recorded(graph):
        forms.append(xla_training_model(graph))
        return forms[-1]

    monkeypatch.setattr(xla_training_graph, "xla_training_model", recorded)
    model = tiny("musicnn")
    x = (0.1 * np.random.default_rng(2).standard_normal(
        (3, *model.inputs[0].shape[1:]))).astype("float32")
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    scores, updated, losses = scores_forward(model)(trainable, non_trainable, x)
    assert len(forms) == 1 and replaced(forms[0], model) == FORMS["musicnn"]  # on the CPU
    expected, expected_updated = model.stateless_call(trainable, non_trainable, x,
                                                      training=True)
    np.testing.assert_allclose(scores, expected, atol=1e-5)
    assert len(updated) == len(expected_updated) and list(losses) == []
    for found, want in zip(updated, expected_updated):  # the norms' moving statistics
        np.testing.assert_allclose(found, want, rtol=1e-4, atol=1e-6)
