"""Musicnn (Pons et al. 2018, as Won et al. 2020 trained it): counts equal
the original's at both of the release's sizes, shapes at the paper's
3 s input, tiny configurations train, save and load."""

import keras
import numpy as np
import pytest

from tagger.config import LogMelConfig
from tagger.models.musicnn import build_musicnn
from tests.models.common import (
    check_mixed_precision,
    check_raw_logmel_parity,
    check_tiny_waveform_tagger,
    check_train_reads_16_khz_records,
    trainable_count,
    waveforms,
)

# ../shared/reference/sota_zoo.md, measured from the original code (50 tags):
# trainable parameters and batch-norm running mean + var.
COUNTS = {
    "mtat": ({}, (784_300, 1_908)),  # backend 64, dense 200 (also jamendo)
    "msd": ({"backend_channels": 512, "dense_units": 500}, (7_972_000, 5_196)),
}
# 16 mel bins (timbral filters 11 and 6 high), 58 frames per 59049-sample segment.
TINY_LOGMEL = LogMelConfig(n_mels=16, n_fft=512, hop_length=1024, mel_scale="htk")
TINY = dict(timbral_filters=4, temporal_filters=2, backend_channels=4, dense_units=8,
            logmel=TINY_LOGMEL, segment_length=59049, sample_rate=22050)


def buffer_count(model):
    return int(sum(np.prod(w.shape) for w in model.non_trainable_weights))


@pytest.mark.parametrize("dataset", sorted(COUNTS))
def test_counts_equal_the_original(dataset):
    sizes, counts = COUNTS[dataset]
    model = build_musicnn(**sizes)  # paper size, built, not run
    assert (trainable_count(model), buffer_count(model)) == counts
    assert model.output.shape == (None, 50)


def test_shapes_at_the_papers_input():
    model = build_musicnn()
    assert model.input.shape == (None, 48000)  # 3 s at 16 kHz
    assert model.get_layer("log_mel").output.shape == (None, 188, 96)
    assert model.get_layer("timbral1_conv").output.shape == (None, 30, 188, 204)  # 67 high
    assert model.get_layer("timbral2_conv").output.shape == (None, 59, 188, 204)  # 38 high
    assert model.get_layer("temporal1_conv").output.shape == (None, 188, 51)
    assert model.get_layer("front_end").output.shape == (None, 188, 561)
    assert model.get_layer("backend_concat").output.shape == (None, 188, 753)
    assert model.get_layer("pooled").output.shape == (None, 1506)
    assert model.get_layer("embedding").output.shape == (None, 200)


def test_backend_residuals_and_pooling():
    """The second and third back-end layers add their input; the pooled
    vector is the max over time, then the mean, of all back-end features."""
    model = build_musicnn(num_tags=3, input_kind="logmel", num_frames=20, **{
        k: v for k, v in TINY.items() if k not in ("segment_length", "sample_rate")})
    x = np.random.default_rng(0).standard_normal((2, 20, 16)).astype("float32")
    names = ["front_end", "backend1_relu", "backend2_relu", "backend2_add", "backend3_add",
             "pooled"]
    probe = keras.Model(model.input, [model.get_layer(n).output for n in names])
    front, res1, relu2, res2, res3, pooled = [np.asarray(t) for t in probe(x)]
    np.testing.assert_allclose(res2, relu2 + res1, atol=1e-6)
    features = np.concatenate([front, res1, res2, res3], axis=-1)
    np.testing.assert_allclose(pooled, np.concatenate(
        [features.max(axis=1), features.mean(axis=1)], axis=-1), atol=1e-5)


@pytest.mark.slow
def test_tiny_trains_saves_and_loads(tmp_path):
    keras.utils.set_random_seed(0)
    model = build_musicnn(num_tags=5, segments=2, dropout=0.0, **TINY)
    check_tiny_waveform_tagger(model, 2, tmp_path)


def test_raw_and_logmel_inputs_agree():
    tiny = {k: v for k, v in TINY.items() if k != "logmel"}
    check_raw_logmel_parity(build_musicnn, TINY_LOGMEL, segments=2, **tiny)


def test_mixed_precision():
    check_mixed_precision(build_musicnn, waveforms(2, 1), num_tags=3, **TINY)


@pytest.mark.parametrize("kwargs, message", [
    (dict(backend_channels=0), "backend_channels"),
    (dict(dense_units=2.5), "dense_units"),
    (dict(dropout=1.0), "dropout"),
    (dict(input_length=59049), "multiple of the 48000"),
    (dict(logmel=LogMelConfig(n_mels=2)), "at least 3 bins"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_musicnn(**kwargs)


def test_train_reads_records_of_3_s_at_16_khz():
    check_train_reads_16_khz_records("musicnn", 48000)
