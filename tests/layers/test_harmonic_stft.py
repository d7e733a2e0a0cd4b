"""HarmonicSTFT: the paper's centre frequencies, harmonics where a tone's
harmonics are, a numpy reference of STFT and triangles, the bandwidth Q
learns, the standard layer checks."""

import keras
import numpy as np
import pytest

from tagger.layers import HarmonicSTFT
from tagger.layers.harmonic_stft import harmonic_frequencies
from tests.checks import check_layer

C1 = 32.7032  # Hz


def test_centre_frequencies_of_the_paper():
    """16 kHz, 6 harmonics, 2 steps a semitone: fundamentals from C1 up to
    E6 (the note of 16000 / 12 = 1333 Hz) left out, 128 of them."""
    centres, level = harmonic_frequencies(16000, 6, 2)
    assert level == 128 and centres.shape == (768,) and centres.dtype == np.float32
    fundamentals = C1 * 2.0 ** (np.arange(128) / 24.0)
    np.testing.assert_allclose(centres[:128], fundamentals, rtol=1e-5)
    for h in range(2, 7):
        np.testing.assert_allclose(centres[(h - 1) * 128:h * 128], h * fundamentals, rtol=1e-5)
    assert 1318.51 * 2 ** (-1 / 24) == pytest.approx(centres[127], rel=1e-5)
    assert harmonic_frequencies(22050, 6, 1)[1] == 70  # 1837.5 Hz: MIDI 93.75, A#6 (94)


def test_a_tone_peaks_at_its_fundamental_in_every_harmonic_channel():
    layer = HarmonicSTFT()
    t = np.arange(16000) / 16000.0
    y = np.asarray(layer(np.sin(2 * np.pi * 440.0 * t)[None].astype("float32")))
    assert y.shape == (1, 128, 1 + 16000 // 256, 6)
    peaks = y[0].mean(axis=1).argmax(axis=0)  # per harmonic channel
    expected = [round(24 * np.log2(440.0 / h / C1)) for h in range(1, 7)]
    assert peaks.tolist() == expected == [90, 66, 52, 42, 34, 28]
    silent = np.asarray(layer(np.zeros((1, 2048), "float32")))
    np.testing.assert_allclose(silent, -100.0)  # 10 log10(1e-10)


def test_equals_a_numpy_stft_through_triangles():
    q = 1.5
    layer = HarmonicSTFT(sample_rate=16000, n_fft=512, n_harmonic=3, semitone_scale=1,
                         bw_q=q)
    x = (0.3 * np.random.default_rng(0).standard_normal(4000)).astype("float32")
    y = np.asarray(layer(x[None]))[0]  # (level, frames, harmonic)

    padded = np.pad(x.astype(np.float64), 256, mode="reflect")
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(512) / 512)
    frames = np.stack([padded[i:i + 512] * window for i in range(0, len(padded) - 511, 256)])
    power = np.abs(np.fft.rfft(frames, axis=-1)) ** 2  # (frames, 257)
    centres, level = harmonic_frequencies(16000, 3, 1)
    bins = np.linspace(0, 8000, 257)[:, None]
    width = (0.1079 * centres.astype(np.float64) + 24.7) / q
    triangles = np.maximum(0.0, 1.0 - 2.0 * np.abs(bins - centres) / width)
    reference = 10 * np.log10(np.maximum(power @ triangles, 1e-10))  # (frames, 3 * level)
    reference = reference.reshape(-1, 3, level).transpose(2, 0, 1)
    assert y.shape == reference.shape == (level, 16, 3)
    np.testing.assert_allclose(y, reference, atol=2e-3)


def test_the_bandwidth_is_one_weight_that_learns():
    layer = HarmonicSTFT(n_harmonic=2, semitone_scale=1)
    model = keras.Sequential([keras.Input((4096,)), layer, keras.layers.Flatten(),
                              keras.layers.Dense(1, activation="sigmoid")])
    assert [w.shape for w in layer.trainable_weights] == [(1,)]
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="binary_crossentropy")
    x = np.random.default_rng(1).standard_normal((4, 4096)).astype("float32")
    model.train_on_batch(x, np.array([[1.0], [0.0], [1.0], [0.0]], "float32"))
    assert float(np.asarray(layer.q)[0]) != 1.0
    fixed = HarmonicSTFT(learn_bandwidth=False)
    fixed.build((None, 4096))
    assert fixed.trainable_weights == [] and len(fixed.non_trainable_weights) == 1


def test_standard_layer_checks(tmp_path):
    check_layer(lambda: HarmonicSTFT(n_fft=256, n_harmonic=2, semitone_scale=1, bw_q=2.0),
                (2000,), tmp_path)


@pytest.mark.parametrize("kwargs, message", [
    (dict(sample_rate=400, n_harmonic=6), "no fundamentals between C1"),
    (dict(bw_q=0.0), "must be positive"),
    (dict(n_fft=0), "must be positive"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        HarmonicSTFT(**kwargs)
