"""Tests of the sample-level CNN.

Paper-size models (width 1.0, 59049 samples) are only built, to count
parameters and read layer shapes; everything that runs uses width 1/16 and
729 samples (5 blocks).
"""

import keras
import numpy as np
import pytest

from tagger.models import MODELS, build_model
from tagger.models.samplecnn import build_samplecnn, num_blocks_for, valid_input_lengths
from tests.checks import check_saved_model, check_training_step

TINY = dict(width=1 / 16, input_length=729, num_tags=6)
BLOCK_TYPES = ("basic", "se", "res", "rese")


# --- The original model's parameter counts --------------------------------
#
# Counted by hand from tae-jun/resemul model.py (Keras 2.0.5), written out
# here without using the code under test:
# - every Conv1D and Dense has a bias: k * c_in * c_out + c_out, in * out + out;
# - every BatchNormalization has 4 C weights, of which 2 C (moving mean and
#   variance) are not trainable;
# - stem: Conv1D(128, 3) on 1 channel + BN;
# - basic/se block: Conv1D(C, 3) + BN; se adds Dense(C, 16 C) + Dense(16 C, C);
# - res/rese block: Conv1D(C, 3) + BN + Conv1D(C, 3) + BN, plus a Conv1D(C, 1)
#   + BN shortcut where C changes (blocks 2 and 8); rese adds the SE denses;
# - head: Dense(F, F) + BN(F) + Dense(F, 50), F = 1024 (multi) or 512.
_CHANNELS = [128, 128, 256, 256, 256, 256, 256, 256, 512]


def _resemul_count(block, multi, alpha=16, num_tags=50):
    """(total, trainable) parameters of resemul's `resemul(...)` model."""
    total = non_trainable = 0

    def conv(k, c_in, c_out):
        return k * c_in * c_out + c_out

    def dense(n_in, n_out):
        return n_in * n_out + n_out

    def bn(c):
        nonlocal non_trainable
        non_trainable += 2 * c
        return 4 * c

    total += conv(3, 1, 128) + bn(128)
    c_in = 128
    for c in _CHANNELS:
        if block in ("basic", "se"):
            total += conv(3, c_in, c) + bn(c)
        else:
            total += conv(3, c_in, c) + bn(c) + conv(3, c, c) + bn(c)
            if c != c_in:
                total += conv(1, c_in, c) + bn(c)
        if block in ("se", "rese"):
            total += dense(c, alpha * c) + dense(alpha * c, c)
        c_in = c
    features = sum(_CHANNELS[-3:]) if multi else _CHANNELS[-1]
    total += dense(features, features) + bn(features) + dense(features, num_tags)
    return total, total - non_trainable


# The same numbers as constants: (block, multi) -> (total, trainable).
PAPER_COUNTS = {
    ("basic", False): (1_875_762, 1_869_874),
    ("basic", True): (2_690_354, 2_683_442),
    ("se", False): (23_935_026, 23_929_138),
    ("se", True): (24_749_618, 24_742_706),
    ("res", False): (4_119_346, 4_107_314),
    ("res", True): (4_933_938, 4_920_882),
    ("rese", False): (26_178_610, 26_166_578),
    ("rese", True): (26_993_202, 26_980_146),
}


def _trainable(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _tiny_batch(batch=4, length=729, tags=6, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (batch, length)).astype("float32")
    y = (rng.random((batch, tags)) < 0.5).astype("float32")
    return x, y


def test_hand_formula_matches_constants():
    for (block, multi), counts in PAPER_COUNTS.items():
        assert _resemul_count(block, multi) == counts, (block, multi)


@pytest.mark.parametrize("block", BLOCK_TYPES)
@pytest.mark.parametrize("multi", [False, True])
def test_paper_parameter_counts(block, multi):
    model = build_samplecnn(block=block, multi=multi)
    assert (model.count_params(), _trainable(model)) == PAPER_COUNTS[(block, multi)]


# --- Shapes and names on the paper model -----------------------------------

@pytest.fixture(scope="module")
def paper_rese():
    return build_samplecnn(block="rese", multi=True)


def test_paper_layer_lengths_and_channels(paper_rese):
    model = paper_rese
    assert model.input_shape == (None, 59049)
    assert model.get_layer("stem_conv").output.shape == (None, 19683, 128)
    for i, channels in enumerate(_CHANNELS):
        length = 3 ** (8 - i)  # 6561, 2187, ..., 1
        assert model.get_layer(f"block{i}_conv1").output.shape == (None, 3 * length, channels)
        assert model.get_layer(f"block{i}_pool").output.shape == (None, length, channels)
    shortcuts = [i for i in range(9) if f"block{i}_shortcut_conv" in _names(model)]
    assert shortcuts == [2, 8]
    assert model.get_layer("aggregate").output.shape == (None, 1024)
    assert model.get_layer("head_dense").units == 1024
    assert model.get_layer("head_relu").output.shape == (None, 1024)
    assert model.output_shape == (None, 50)


def test_paper_initialisers_and_biases(paper_rese):
    model = paper_rese
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv1D):
            assert layer.use_bias and layer.kernel_regularizer is None
            expected = "GlorotUniform" if "shortcut" in layer.name else "HeUniform"
            assert type(layer.kernel_initializer).__name__ == expected, layer.name
        if isinstance(layer, keras.layers.Dense):
            assert type(layer.kernel_initializer).__name__ == "GlorotUniform"
    assert model.get_layer("block0_dropout").rate == 0.2
    assert model.get_layer("head_dropout").rate == 0.5


@pytest.mark.parametrize("block", BLOCK_TYPES)
def test_se_layers_only_in_se_blocks(block):
    model = build_samplecnn(block=block, multi=False)
    names = _names(model)
    if block in ("basic", "res"):
        assert not [n for n in names if "_se_" in n]
        return
    for i, channels in enumerate(_CHANNELS):
        assert model.get_layer(f"block{i}_se_expand").units == 16 * channels
        excite = model.get_layer(f"block{i}_se_excite")
        assert excite.units == channels
        assert excite.output.shape == (None, channels)
    assert model.get_layer("block8_se_expand").units == 8192
    assert len([n for n in names if n.endswith("_se_excite")]) == 9
    assert "aggregate" not in names
    assert model.get_layer("head_relu").output.shape == (None, 512)


# --- Tiny models that run --------------------------------------------------

def test_short_input_uses_last_blocks_of_the_table():
    assert valid_input_lengths() == {81: 3, 243: 4, 729: 5, 2187: 6, 6561: 7,
                                     19683: 8, 59049: 9}
    model = build_samplecnn(block="se", **TINY)
    names = _names(model)
    assert "block4_pool" in names and "block5_conv" not in names
    widths = [model.get_layer(f"block{i}_pool").output.shape[-1] for i in range(5)]
    assert widths == [16, 16, 16, 16, 32]  # last five rows of the table, / 16
    assert model.get_layer("stem_conv").output.shape == (None, 243, 8)
    assert model.get_layer("block4_pool").output.shape == (None, 1, 32)
    assert model.get_layer("aggregate").output.shape == (None, 64)
    assert model.get_layer("block4_se_expand").units == 32 * 16


def test_forward_pass_and_excitations():
    model = build_samplecnn(block="rese", **TINY)
    x, _ = _tiny_batch()
    y = np.asarray(model.predict(x, verbose=0))
    assert y.shape == (4, 6) and y.dtype == np.float32
    assert np.all((y > 0) & (y < 1))
    probe = keras.Model(model.input, [model.get_layer(f"block{i}_se_excite").output
                                      for i in range(5)] + [model.get_layer("head_relu").output])
    *excitations, embedding = probe.predict(x, verbose=0)
    assert [e.shape for e in excitations] == [(4, 16)] * 4 + [(4, 32)]
    assert all(np.all((e >= 0) & (e <= 1)) for e in excitations)
    assert embedding.shape == (4, 64)


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCK_TYPES)
def test_save_load_keras_and_hdf5(block, tmp_path):
    model = build_samplecnn(block=block, **TINY)
    x, y = _tiny_batch()
    # One step first so BN statistics and weights differ from their initial values.
    check_training_step(model, x, y)
    check_saved_model(model, x, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("block", ["basic", "rese"])
def test_sgd_steps_lower_the_loss_on_a_fixed_batch(block):
    keras.utils.set_random_seed(0)
    model = build_samplecnn(block=block, dropout=0.0, **TINY)
    x, y = _tiny_batch(batch=8)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                  loss="binary_crossentropy")
    losses = [float(model.train_on_batch(x, y)) for _ in range(15)]
    assert np.all(np.isfinite(losses))
    assert np.mean(losses[-3:]) < losses[0] - 0.05, losses


def test_weight_decay_regularises_conv_kernels_only():
    model = build_samplecnn(block="rese", weight_decay=1e-4, **TINY)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv1D)]
    assert all(layer.kernel_regularizer is not None for layer in convs)
    assert all(layer.kernel_regularizer is None for layer in model.layers
               if isinstance(layer, keras.layers.Dense))
    assert len(model.losses) == len(convs)
    assert not build_samplecnn(block="rese", **TINY).losses


def test_mixed_precision_outputs_float32():
    previous = keras.mixed_precision.global_policy()
    try:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
        model = build_samplecnn(block="se", **TINY)
        assert model.get_layer("block0_conv").compute_dtype == "bfloat16"
        x, _ = _tiny_batch(batch=2)
        y = model(x, training=False)
        assert y.dtype == "float32"
        assert np.all(np.isfinite(np.asarray(y)))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert keras.mixed_precision.global_policy().name == previous.name


# --- Registry and errors -----------------------------------------------------

def test_registry_builds_samplecnn():
    assert MODELS["samplecnn"] is build_samplecnn
    model = build_model("samplecnn", block="res", multi=False, **TINY)
    assert model.name == "samplecnn_res"
    assert model.output_shape == (None, 6)


def test_unknown_model_lists_valid_ones():
    with pytest.raises(ValueError, match="^unknown model family 'samplecnm'; valid: samplecnn, "):
        build_model("samplecnm")


def test_unknown_block_lists_valid_ones():
    with pytest.raises(ValueError, match="valid blocks: basic, se, res, rese"):
        build_samplecnn(block="resnet", **TINY)


@pytest.mark.parametrize("length", [59048, 59049.0, 27, 3 ** 11, "59049"])
def test_bad_input_length_names_valid_lengths(length):
    with pytest.raises(ValueError, match=r"input_length must be one of \[81, 243, .*59049\]"):
        build_samplecnn(input_length=length)
    with pytest.raises(ValueError):
        num_blocks_for(length)


@pytest.mark.parametrize("kwargs, message", [
    (dict(alpha=0), "alpha must be a positive number"),
    (dict(alpha=-2), "alpha must be a positive number"),
    (dict(alpha=1 / 64), "alpha=.* use alpha >= 0.0625"),
    (dict(width=0), "width must be a positive number"),
    (dict(width=1 / 512), "width=.* use width >= 0.0078125"),
    (dict(dropout=1.0), "dropout must be in"),
    (dict(weight_decay=-1e-4), "weight_decay must be >= 0"),
    (dict(num_tags=0), "num_tags must be a positive integer"),
])
def test_bad_arguments(kwargs, message):
    args = dict(TINY)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        build_samplecnn(**args)


def _names(model):
    return {layer.name for layer in model.layers}
