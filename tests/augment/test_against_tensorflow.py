"""Each keras.ops transform, at the parameters it draws, against the
TensorFlow implementation it replaced (tests/augment/tensorflow_reference.py)
given the same parameters: cutoffs and filter kinds, delay offsets,
semitones, gains, noise, reverb levels and tails' noise.

Tolerances. Polarity, noise, gain, delay and pitch shift compute the same
float32 operations in the same order as before, so they must agree exactly.
The filters and the reverb multiply two spectra: keras.ops returns them as
real and imaginary parts and the product is four real products and two
sums, where TensorFlow multiplied complex64 tensors; a CPU or GPU FFT
library may round that product differently (by at most an ulp of each
bin, 6e-8 of it), which the inverse FFT (65,536 points here) spreads over
the output as an error of about 1e-7 of the signal's scale. Their
tolerance, 1e-5 of the input's peak, leaves a factor of 100 and lies far
below what a wrong tap, cutoff, window or tail changes (1e-3 or more). On
the 2-core EPYC with TensorFlow 2.21 every transform agrees bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

from tagger.augment import delay, filters, gain, noise, pitch_shift, polarity, reverb
from tagger.augment.threefry import as_key
from tests.augment import tensorflow_reference as before

SR = 22050
FFT_TOLERANCE = 1e-5  # of the input's peak
KEY = as_key([11, 12])
P = 0.5  # some examples transformed, some not


@pytest.fixture(scope="module")
def x():
    """(8, 30000) tones of 100 Hz to 3 kHz with noise."""
    rng = np.random.default_rng(0)
    t = np.arange(30000) / SR
    tones = np.sin(2 * np.pi * rng.uniform(100, 3000, (8, 1)) * t)
    return (tones + 0.3 * rng.normal(size=(8, 30000))).astype(np.float32)


def transformed_as_before(drawn, old_output, x):
    """The old transform's output where `drawn` applies it, else x; and
    checks that the draw transforms some examples and keeps others."""
    applied = np.asarray(drawn["apply"])
    assert 0 < applied.sum() < len(applied)
    return np.asarray(before.choose(applied, old_output, x))


def test_polarity(x):
    drawn = polarity.draw(KEY, len(x), P)
    np.testing.assert_array_equal(polarity.polarity_inversion(x, KEY, P),
                                  transformed_as_before(drawn, -x, x))


def test_noise(x):
    drawn = noise.draw(KEY, len(x), x.shape[1], P)
    old = before.add_noise(x, drawn["relative_std"], drawn["noise"])
    np.testing.assert_array_equal(noise.gaussian_noise(x, KEY, P),
                                  transformed_as_before(drawn, old, x))


def test_gain(x):
    drawn = gain.draw(KEY, len(x), P)
    old = before.scale_by(x, drawn["decibels"])
    np.testing.assert_array_equal(gain.gain(x, KEY, P), transformed_as_before(drawn, old, x))


def test_delay(x):
    drawn = delay.draw(KEY, len(x), SR, P)
    old = before.delay_by(x, drawn["offset"])
    np.testing.assert_array_equal(delay.delay(x, KEY, SR, P), transformed_as_before(drawn, old, x))


def test_pitch_shift(x):
    drawn = pitch_shift.draw(KEY, len(x), P)
    old = before.resample_pitch(x, drawn["semitones"])
    np.testing.assert_array_equal(pitch_shift.pitch_shift(x, KEY, P),
                                  transformed_as_before(drawn, old, x))


def test_filters(x):
    drawn = filters.draw(KEY, len(x), P)
    high = np.asarray(drawn["high"])
    assert 0 < high.sum() < len(high)  # both kinds
    np.testing.assert_array_equal(filters.lowpass_kernels(drawn["cutoff_hz"], SR),
                                  before.lowpass_kernels(drawn["cutoff_hz"], SR))
    old = before.pass_filter(x, drawn["cutoff_hz"], drawn["high"], SR)
    np.testing.assert_allclose(filters.high_low_pass(x, KEY, SR, P),
                               transformed_as_before(drawn, old, x),
                               rtol=0, atol=FFT_TOLERANCE * np.abs(x).max())


def test_reverb(x):
    drawn = reverb.draw(KEY, len(x), SR, P)
    new_tails = reverb.impulse_tails(drawn["reverberance"], drawn["damping"], drawn["noise"], SR)
    old_tails = before.impulse_tails(drawn["reverberance"], drawn["damping"], drawn["noise"], SR)
    np.testing.assert_allclose(new_tails, old_tails, rtol=0,
                               atol=FFT_TOLERANCE * np.abs(old_tails).max())
    old = before.add_reverb(x, old_tails, drawn["room"])
    np.testing.assert_allclose(reverb.reverb(x, KEY, SR, P), transformed_as_before(drawn, old, x),
                               rtol=0, atol=FFT_TOLERANCE * np.abs(x).max())
