import numpy as np
import pytest

from tagger.layers import LogMel
from tests.checks import check_layer


def test_shape_and_frames():
    layer = LogMel(sample_rate=22050, n_fft=512, hop_length=256, n_mels=32)
    x = np.random.default_rng(0).standard_normal((2, 5000)).astype("float32")
    y = np.asarray(layer(x))
    assert y.shape == (2, 1 + 5000 // 256, 32)
    assert layer.frames_for(5000) == y.shape[1]


def test_sine_peaks_in_its_mel_band():
    sr = 22050
    t = np.arange(sr) / sr
    low = np.sin(2 * np.pi * 200 * t)
    high = np.sin(2 * np.pi * 4000 * t)
    layer = LogMel(sample_rate=sr, n_fft=1024, hop_length=512, n_mels=64)
    y = np.asarray(layer(np.stack([low, high]).astype("float32")))
    peak_low = y[0].mean(axis=0).argmax()
    peak_high = y[1].mean(axis=0).argmax()
    assert peak_low < peak_high
    # 0 dB is the power of a full-scale sine's bin; silence sits at -100 dB.
    silent = np.asarray(layer(np.zeros((1, 4096), "float32")))
    np.testing.assert_allclose(silent, -100.0)


def test_per_example_top_db_ignores_batch_mates():
    rng = np.random.default_rng(1)
    quiet = 1e-3 * rng.standard_normal(8000)
    loud = rng.standard_normal(8000)
    layer = LogMel(n_fft=512, hop_length=256, n_mels=32, top_db=60.0)
    alone = np.asarray(layer(quiet[None].astype("float32")))
    together = np.asarray(layer(np.stack([quiet, loud]).astype("float32")))
    np.testing.assert_allclose(together[0], alone[0], atol=1e-4)
    assert alone.max() - alone.min() <= 60.0 + 1e-4


def test_segment_wise_equals_concatenated_segments():
    rng = np.random.default_rng(2)
    segment = 3000
    x = rng.standard_normal((2, 3 * segment)).astype("float32")
    whole = LogMel(n_fft=512, hop_length=256, n_mels=16, segment_length=segment)
    single = LogMel(n_fft=512, hop_length=256, n_mels=16)
    y = np.asarray(whole(x))
    parts = [np.asarray(single(x[:, i * segment:(i + 1) * segment])) for i in range(3)]
    np.testing.assert_allclose(y, np.concatenate(parts, axis=1), atol=1e-4)
    assert y.shape[1] == whole.frames_for(3 * segment)


def test_standard_layer_checks(tmp_path):
    check_layer(lambda: LogMel(n_fft=256, hop_length=128, n_mels=8,
                               segment_length=1000), (2000,), tmp_path)
