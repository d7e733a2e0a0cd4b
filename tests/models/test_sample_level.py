"""Sample-level CNN and sample-level CNN + SE (Lee et al. 2017, Kim et al.
2018, as Won et al. 2020 trained them on raw 16 kHz audio): counts equal
the original's, shapes at the paper's 59049 samples, the SE blocks'
shortcuts and excitations, tiny configurations train, save and load."""

import keras
import numpy as np
import pytest

from tagger.models import build_model
from tagger.models.sample_level import build_sample_level
from tagger.models.sample_level_se import build_sample_level_se
from tests.checks import check_saved_model, check_training_step
from tests.models.common import check_mixed_precision, waveforms

# ../shared/reference/sota_zoo.md, measured from the original code (50 tags):
# trainable parameters and batch-norm running mean + var.
COUNTS = {
    "sample_level": (1_869_874, 5_888),  # SampleCNN
    "sample_level_se": (6_951_858, 14_592),  # SampleCNNSE
}
BUILD = {"sample_level": build_sample_level, "sample_level_se": build_sample_level_se}


def counts(model):
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    buffers = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    return trainable, buffers


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_counts_equal_the_original(name):
    model = build_model(name)  # paper size, built, not run
    assert counts(model) == COUNTS[name]
    assert model.output.shape == (None, 50)


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_shapes_at_the_papers_input(name):
    model = build_model(name)
    assert model.input.shape == (None, 59049)  # 3.69 s at 16 kHz
    relu = "relu" if name == "sample_level" else "relu1"
    # layer 1: stride 3 after one zero each side, no pooling
    assert model.get_layer("block1_pad").output.shape == (None, 59051, 1)
    assert model.get_layer(f"block1_{relu}").output.shape == (None, 19683, 128)
    assert [model.get_layer(f"block{i}_pool").output.shape[1:] for i in (2, 4, 9, 10)] == [
        (6561, 128), (729, 256), (3, 256), (1, 512)]
    assert "block1_pool" not in {layer.name for layer in model.layers}
    assert "block11_pool" not in {layer.name for layer in model.layers}
    assert model.get_layer("embedding").output.shape == (None, 512)


def test_se_blocks_shortcuts_and_excitations():
    """ResSE_1d: a 3-sample conv shortcut where the stride or the channels
    change (layers 1, 4, 10), the identity elsewhere; SE widths C -> C."""
    model = build_sample_level_se()
    names = {layer.name for layer in model.layers}
    assert sorted(int(n[5:-len("_shortcut_conv")]) for n in names
                  if n.endswith("_shortcut_conv")) == [1, 4, 10]
    assert model.get_layer("block1_shortcut_conv").kernel.shape == (3, 1, 128)
    assert model.get_layer("block1_shortcut_conv").strides == (3,)
    assert model.get_layer("block4_shortcut_conv").kernel.shape == (3, 128, 256)
    assert model.get_layer("block11_conv1").kernel.shape == (1, 512, 512)
    for i, channels in ((1, 128), (5, 256), (11, 512)):
        assert model.get_layer(f"block{i}_se_expand").units == channels
        assert model.get_layer(f"block{i}_se_excite").units == channels


def test_excitation_analysis_reads_the_se_layers():
    from tagger.interpret.excitations import excitation_model, excite_layer_names

    model = build_sample_level_se(num_tags=3, input_length=729, n_channels=4)
    assert excite_layer_names(model) == [f"block{i}_se_excite" for i in range(1, 12)]
    excitations = excitation_model(model).predict(waveforms(2, 1)[:, :729], verbose=0)
    assert [e.shape for e in excitations] == [(2, 4)] * 3 + [(2, 8)] * 6 + [(2, 16)] * 2
    assert all(((e > 0) & (e < 1)).all() for e in excitations)


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_other_input_lengths(name):
    """Longer windows: a max over the steps left; shorter ones: a pooling
    longer than what is left pools all of it."""
    long = BUILD[name](num_tags=3, input_length=2 * 59049, n_channels=4)
    assert long.get_layer("block11_relu").output.shape == (None, 2, 16)
    x = waveforms(2, 2)
    features = keras.Model(long.input, [long.get_layer("block11_relu").output,
                                        long.get_layer("embedding").output])
    steps, embedding = [np.asarray(t) for t in features(x)]
    if name == "sample_level":  # the embedding is the max over the steps
        np.testing.assert_allclose(embedding, steps.max(axis=1), atol=1e-6)
    short = BUILD[name](num_tags=3, input_length=729, n_channels=4)
    assert short.get_layer("block6_pool").output.shape == (None, 1, 8)
    assert short.get_layer("block7_pool").output.shape == (None, 1, 8)  # clamped


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(COUNTS))
def test_tiny_trains_saves_and_loads(name, tmp_path):
    keras.utils.set_random_seed(0)
    model = BUILD[name](num_tags=5, n_channels=4, dropout=0.0)
    x = waveforms(4, 1)
    y = (np.arange(20).reshape(4, 5) % 3 == 0).astype("float32")
    assert model.predict(x, verbose=0).shape == (4, 5)
    check_training_step(model, x, y)
    # Adam: layers 10 and 11 batch-normalise one step per clip, so on four
    # similar clips plain SGD's first steps are large and the loss jumps.
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    losses = [float(model.train_on_batch(x, y)) for _ in range(8)]
    assert losses[-1] < 0.9 * losses[0], losses
    check_saved_model(model, x, tmp_path)


def test_mixed_precision():
    check_mixed_precision(build_sample_level_se, waveforms(2, 1), num_tags=3, n_channels=4)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_channels=0), "n_channels"),
    (dict(input_length=0), "input_length"),
    (dict(dropout=1.0), "dropout"),
    (dict(num_tags=2.5), "num_tags"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_sample_level(**kwargs)


def test_train_reads_raw_records_of_one_segment():
    from tagger.config import TrainConfig
    from tagger.training import model_setup
    from tests.checks import records_info

    info = records_info([f"t{i}" for i in range(50)], 16000, 59049)
    config = TrainConfig(model="sample_level_se", model_args={"n_channels": 32})
    assert model_setup.model_arguments(config, info, 1) == {
        "num_tags": 50, "n_channels": 32, "input_length": 59049}
