"""Harmonic CNN (Won, Chun, Nieto, Serra 2020, as Won et al. 2020 trained
it on raw 16 kHz audio): counts equal the original's, shapes at the
paper's 80000 samples, other window lengths, a tiny configuration trains
(its bandwidth Q too), saves and loads."""

import keras
import numpy as np
import pytest

from tagger.models import build_model
from tagger.models.hcnn import build_hcnn
from tests.checks import check_saved_model, check_training_step, gliding_tones
from tests.models.common import check_mixed_precision

# ../shared/reference/sota_zoo.md, measured from the original code (50
# tags): trainable parameters (the bandwidth Q included) and batch-norm
# running mean + var.
COUNTS = (3_631_551, 4_876)


def counts(model):
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    buffers = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    return trainable, buffers


def test_counts_equal_the_original():
    model = build_model("hcnn")  # paper size, built, not run
    assert counts(model) == COUNTS
    assert model.output.shape == (None, 50)
    fixed = build_hcnn(learn_bandwidth=False)  # learn_bw='fix': Q is not trained
    assert counts(fixed) == (COUNTS[0] - 1, COUNTS[1] + 1)


def test_shapes_at_the_papers_input():
    model = build_hcnn()
    assert model.input.shape == (None, 80000)  # 5 s at 16 kHz
    # 128 fundamentals x 313 frames, 6 harmonics as channels
    assert model.get_layer("harmonic_stft").output.shape == (None, 128, 313, 6)
    assert model.get_layer("block1_conv").kernel.shape == (3, 3, 6, 128)
    assert [model.get_layer(f"block{i}_pool").output.shape[1:] for i in range(1, 8)] == [
        (64, 156, 128), (32, 78, 128), (16, 39, 128), (8, 19, 128), (4, 9, 256),
        (2, 3, 256), (1, 1, 256)]
    kinds = ["res" if f"block{i}_add" in {layer.name for layer in model.layers} else "conv"
             for i in range(1, 8)]
    assert kinds == ["conv", "res", "res", "res", "conv", "res", "res"]
    assert model.get_layer("embedding").output.shape == (None, 256)


def test_other_input_lengths():
    """Longer windows: a max over the frames left; shorter ones: a pooling
    larger than what is left pools all of it."""
    long = build_hcnn(num_tags=3, input_length=160000, n_channels=4)
    assert long.get_layer("block7_pool").output.shape == (None, 1, 2, 8)  # 626 frames / 288
    x = gliding_tones(160000)
    features = keras.Model(long.input, [long.get_layer("block7_pool").output,
                                        long.get_layer("global_max").output])
    frames, pooled = [np.asarray(t) for t in features(x)]
    np.testing.assert_allclose(pooled, frames.max(axis=(1, 2)), atol=1e-6)
    short = build_hcnn(num_tags=3, input_length=16000, n_channels=4)  # 63 frames
    assert short.get_layer("block5_pool").output.shape == (None, 4, 1, 8)
    assert short.get_layer("block6_pool").output.shape == (None, 2, 1, 8)  # (2, 1): clamped


@pytest.mark.slow
def test_tiny_trains_saves_and_loads(tmp_path):
    keras.utils.set_random_seed(0)
    model = build_hcnn(num_tags=5, input_length=16000, n_channels=4, dropout=0.0)
    x = gliding_tones(16000, batch=4)
    y = (np.arange(20).reshape(4, 5) % 3 == 0).astype("float32")
    assert model.predict(x, verbose=0).shape == (4, 5)
    check_training_step(model, x, y)
    q = float(np.asarray(model.get_layer("harmonic_stft").q)[0])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy")
    losses = [float(model.train_on_batch(x, y)) for _ in range(8)]
    assert losses[-1] < 0.9 * losses[0], losses
    assert float(np.asarray(model.get_layer("harmonic_stft").q)[0]) != q  # Q learns
    check_saved_model(model, x, tmp_path)


def test_mixed_precision():
    check_mixed_precision(build_hcnn, gliding_tones(16000), num_tags=3, input_length=16000,
                          n_channels=4)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_channels=0), "n_channels"),
    (dict(input_length=0), "input_length"),
    (dict(dropout=1.0), "dropout"),
    (dict(n_harmonic=2.5), "n_harmonic"),
    (dict(sample_rate=400), "no fundamentals"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_hcnn(**kwargs)


def test_train_reads_raw_records_of_its_window():
    from tagger.config import TrainConfig
    from tagger.models import family
    from tagger.training import model_setup

    spec = family("hcnn")
    assert (spec.segment_length, spec.sample_rate, spec.window_segments) == (80000, 16000, 1)
    assert spec.raw_waveform and spec.flag_dests == ("n_channels", "dropout")
    from tests.checks import records_info

    info = records_info([f"t{i}" for i in range(50)], 16000, 80000)
    config = TrainConfig(model="hcnn", model_args={"n_channels": 32})
    assert model_setup.model_arguments(config, info, 1) == {
        "num_tags": 50, "n_channels": 32, "input_length": 80000}
