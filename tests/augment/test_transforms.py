"""Each augmentation on known signals, the chain's keys and probabilities,
the Keras layer. (The draws' statistics: test_draws.py; the numbers of the
TensorFlow implementation: test_against_tensorflow.py; JAX:
test_backends.py.)"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from tagger.augment import AudioAugmentation, AugmentConfig, augment
from tagger.augment.delay import delay, delay_by
from tagger.augment.filters import high_low_pass, pass_filter
from tagger.augment.gain import gain
from tagger.augment.noise import gaussian_noise
from tagger.augment.pitch_shift import pitch_shift, resample_pitch
from tagger.augment.polarity import polarity_inversion
from tagger.augment.reverb import reverb

SR = 22050
SEED = tf.constant([3, 4], tf.int64)


def sine(freq, n=SR, batch=1, sr=SR):
    t = np.arange(n) / sr
    return np.tile(np.sin(2 * np.pi * freq * t).astype(np.float32), (batch, 1))


def dominant_freq(x, sr=SR):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spectrum) * sr / len(x)


def rms(x):
    return float(np.sqrt(np.mean(np.square(x))))


def test_polarity_inverts_every_example_at_p1_and_none_at_p0():
    x = np.random.default_rng(0).normal(size=(4, 100)).astype(np.float32)
    np.testing.assert_array_equal(polarity_inversion(x, SEED, 1.0).numpy(), -x)
    np.testing.assert_array_equal(polarity_inversion(x, SEED, 0.0).numpy(), x)


def test_gain_scales_energy_by_a_drawn_decibel_value_in_range():
    x = sine(440, batch=200)
    y = gain(x, SEED, 1.0).numpy()
    db = 10 * np.log10(np.mean(y ** 2, axis=1) / np.mean(x ** 2, axis=1))
    assert db.min() >= -20.0 - 1e-3 and db.max() <= -1.0 + 1e-3
    assert db.max() - db.min() > 15  # spread over the range
    # every example is the input times one constant
    ratio = y / np.where(np.abs(x) > 1e-3, x, np.nan)
    assert np.nanmax(np.nanstd(ratio, axis=1)) < 1e-5


def test_noise_std_is_0_3_to_0_5_of_the_crops_std():
    x = 0.2 * sine(440, batch=64)
    y = gaussian_noise(x, SEED, 1.0).numpy()
    relative = np.std(y - x, axis=1) / np.std(x, axis=1)
    assert relative.min() > 0.29 and relative.max() < 0.51
    assert relative.max() - relative.min() > 0.1


@pytest.mark.parametrize("high", [False, True])
def test_filter_stop_band_attenuation(high):
    # low-pass at 2200 Hz keeps 500 Hz and kills 6000 Hz; high-pass at 1200 Hz the reverse
    cutoff, passed, stopped = (1200.0, 6000, 300) if high else (2200.0, 500, 6000)
    flags = tf.constant([high])
    for freq, keep in ((passed, True), (stopped, False)):
        x = sine(freq)
        y = pass_filter(x, tf.constant([cutoff]), flags, SR).numpy()
        inner = slice(2000, -2000)  # away from the crop's edges
        ratio_db = 20 * np.log10(rms(y[0, inner]) / rms(x[0, inner]))
        if keep:
            assert abs(ratio_db) < 0.2, ratio_db
        else:
            assert ratio_db < -60, ratio_db


def test_high_low_pass_draws_cutoffs_in_their_ranges():
    # a 100 Hz + 3000 Hz + 8000 Hz mix: a high-pass (<= 1200 Hz) keeps 3000 and 8000,
    # a low-pass (>= 2200 Hz) keeps 100 and not 8000; never both
    t = np.arange(SR) / SR
    mix = sum(np.sin(2 * np.pi * f * t) for f in (100, 3000, 8000)).astype(np.float32)
    y = high_low_pass(np.tile(mix, (40, 1)), SEED, SR, 1.0).numpy()
    spectrum = np.abs(np.fft.rfft(y[:, 2000:-2000], axis=1)) / (SR - 4000)
    freqs = np.fft.rfftfreq(SR - 4000, 1 / SR)
    level = {f: spectrum[:, np.argmin(np.abs(freqs - f))] for f in (100, 3000, 8000)}
    high = level[100] < 0.01
    assert 5 < high.sum() < 35
    assert np.all(level[8000][high] > 0.45) and np.all(level[8000][~high] < 0.01)
    assert np.all(level[100][~high] > 0.45)


def test_delay_offset_and_mix():
    x = np.zeros((2, 20000), np.float32)
    x[:, 100] = 1.0
    y = delay_by(x, tf.constant([4410, 9922])).numpy()
    np.testing.assert_allclose(y[0, 100], 0.5)
    np.testing.assert_allclose(y[0, 100 + 4410], 0.25)
    np.testing.assert_allclose(y[1, 100 + 9922], 0.25)
    assert np.count_nonzero(y) == 4


def test_delay_draws_200_to_450_ms_in_50_ms_steps():
    x = np.zeros((300, SR), np.float32)
    x[:, 0] = 1.0
    y = delay(x, SEED, SR, 1.0).numpy()
    echoes = [int(np.flatnonzero(row[1:])[0]) + 1 for row in y]
    ms = np.array(echoes) * 1000 / SR
    assert set(np.round(ms).astype(int)) == {200, 250, 300, 350, 400, 450}


@pytest.mark.parametrize("semitones", [-7.0, -3.0, 5.0, 7.0])
def test_pitch_shift_moves_a_sine_by_the_ratio(semitones):
    x = sine(440.0)
    y = resample_pitch(x, tf.constant([semitones])).numpy()[0]
    expected = 440.0 * 2 ** (semitones / 12)
    assert abs(dominant_freq(y) - expected) < 2.0, (dominant_freq(y), expected)
    assert y.shape == x[0].shape


def test_pitch_shift_range_and_identity_at_p0():
    x = sine(440.0, batch=40)
    y = pitch_shift(x, SEED, 1.0).numpy()
    shifts = 12 * np.log2(np.array([dominant_freq(r) for r in y]) / 440.0)
    assert shifts.min() > -7.1 and shifts.max() < 7.1 and shifts.max() - shifts.min() > 6
    np.testing.assert_array_equal(pitch_shift(x, SEED, 0.0).numpy(), x)


def test_reverb_adds_a_decaying_tail_and_keeps_loudness():
    x = np.zeros((8, SR), np.float32)
    x[:, 1000:1100] = np.random.default_rng(1).normal(size=(8, 100))
    y = reverb(x, SEED, SR, 1.0).numpy()
    np.testing.assert_allclose([rms(r) for r in y], [rms(r) for r in x], rtol=1e-3)
    early = np.abs(y[:, 1100:3000]).mean(axis=1)
    late = np.abs(y[:, 15000:20000]).mean(axis=1)
    assert np.all(early > 0) and np.all(late < early)
    assert np.abs(y[:, :1000]).max() < 1e-6  # causal (FFT round-off only)


@pytest.mark.slow
def test_chain_is_deterministic_per_seed_and_varies_with_it():
    x = np.random.default_rng(2).normal(size=(4, 8192)).astype(np.float32)
    a = augment(x, tf.constant([1, 2]), SR).numpy()
    b = augment(x, tf.constant([1, 2], tf.int64), SR).numpy()  # any integer dtype
    c = augment(x, tf.constant([1, 3]), SR).numpy()
    np.testing.assert_array_equal(a, b)
    # another seed changes every example (0.49 on average per sample at least)
    assert np.abs(a - c).mean(axis=1).min() > 0.1
    # a tf.function gives the same output on every call (its graph's kernels
    # round as eager ones do, to 1e-6)
    graph = tf.function(lambda x, s: augment(x, s, SR))
    once = graph(x, tf.constant([1, 2])).numpy()
    np.testing.assert_array_equal(graph(x, tf.constant([1, 2])).numpy(), once)
    np.testing.assert_allclose(once, a, atol=1e-5)
    # XLA draws the same (integer ops) and computes the same chain up to
    # round-off: the pitch shift's read positions, 0 .. 8191 in float32 (an
    # ulp of 1e-3 at the end) round otherwise under XLA, times the slope of
    # this white noise (up to 4 per sample): 2e-3 seen, far below what
    # another seed changes
    compiled = tf.function(lambda x, s: augment(x, s, SR), jit_compile=True)
    np.testing.assert_allclose(compiled(x, tf.constant([1, 2])).numpy(), a, atol=1e-2)


def test_chain_with_all_probabilities_zero_is_the_identity():
    x = np.random.default_rng(3).normal(size=(3, 4096)).astype(np.float32)
    np.testing.assert_array_equal(augment(x, SEED, SR, AugmentConfig.none()).numpy(), x)


def test_chain_with_only_polarity_at_one_negates():
    x = np.random.default_rng(4).normal(size=(3, 4096)).astype(np.float32)
    config = dataclasses.replace(AugmentConfig.none(), polarity=1.0)
    np.testing.assert_array_equal(augment(x, SEED, SR, config).numpy(), -x)


def test_probability_out_of_range_is_refused():
    with pytest.raises(ValueError, match="reverb"):
        AugmentConfig(reverb=1.5)


def test_layer_applies_only_in_training_and_round_trips(tmp_path):
    layer = AudioAugmentation(sample_rate=SR, seed=5, probabilities={"polarity": 1.0,
                              "noise": 0, "gain": 0, "filter": 0, "delay": 0,
                              "pitch_shift": 0, "reverb": 0})
    x = np.random.default_rng(5).normal(size=(2, 1000)).astype(np.float32)
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x)
    np.testing.assert_array_equal(layer(x, training=True).numpy(), -x)
    inputs = keras.Input((1000,))
    model = keras.Model(inputs, AudioAugmentation(sample_rate=SR, seed=1)(inputs))
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert loaded.layers[1].get_config()["seed"] == 1
    np.testing.assert_array_equal(loaded(x).numpy(), x)


# What the layer's get_config returned, and a saved model holds, before the
# chain moved to keras.ops (module tagger.augment.chain, registered name
# tagger>AudioAugmentation; one variable, its seed generator's state).
EARLIER_CONFIG = {"name": "audio_augmentation", "trainable": True,
                  "dtype": {"module": "keras", "class_name": "DTypePolicy",
                            "config": {"name": "float32"}, "registered_name": None},
                  "sample_rate": 22050, "seed": 1, "probabilities": {"reverb": 0.5}}


def test_a_layer_saved_by_the_tensorflow_chain_loads():
    serialized = {"module": "tagger.augment.chain", "class_name": "AudioAugmentation",
                  "config": EARLIER_CONFIG, "registered_name": "tagger>AudioAugmentation"}
    layer = keras.saving.deserialize_keras_object(serialized)
    assert isinstance(layer, AudioAugmentation)
    assert layer.get_config() == EARLIER_CONFIG
    assert layer.augment_config == AugmentConfig(reverb=0.5)
    assert [v.path.rsplit("/")[-1] for v in layer.variables] == ["seed_generator_state"]
    # in a compiled step: a fresh key per call
    x = np.random.default_rng(6).normal(size=(2, 4000)).astype(np.float32)
    step = tf.function(lambda x: layer(x, training=True))
    first, second = step(x).numpy(), step(x).numpy()
    assert first.shape == x.shape and not np.allclose(first, second)
