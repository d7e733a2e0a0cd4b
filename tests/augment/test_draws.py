"""The augmentation's draws: the Threefry-2x32 block function against its
published answers, and each transform's probability and parameter ranges
over many examples.

The statistical checks draw 200,000 examples (or values) from one fixed
key. Each check has a false-alarm rate of ALPHA = 1e-6: the probability,
over the choice of key, that a correct generator fails it (a count outside
the central 1 - 1e-6 of its binomial distribution; a Kolmogorov-Smirnov,
chi-square or correlation p-value below 1e-6). The file makes 47 such
checks, so a correct chain fails one for at most 47 keys in a million;
with the key fixed, the outcome is the same on every run. At this size the
bounds are tight: a frequency within 0.0055 of p = 0.5, a KS distance
below 0.006 (a range's end off by 0.6% of its width reaches it), and a
chi-square that one offset of the delay's six drawn 3% less often than the
others reaches.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

from tagger.augment import delay, filters, gain, noise, pitch_shift, polarity, reverb
from tagger.augment.chain import AugmentConfig
from tagger.augment.common import normal, uniforms
from tagger.augment.threefry import as_key, fold_in, split, threefry2x32

ALPHA = 1e-6
EXAMPLES = 200_000
SR = 22050
KEY = as_key([20210601, 7])


def binomial_bounds(n: int, p: float):
    """The central 1 - ALPHA interval of Binomial(n, p)."""
    return stats.binom.ppf(ALPHA / 2, n, p), stats.binom.isf(ALPHA / 2, n, p)


def assert_frequency(flags, p: float):
    flags = np.asarray(flags)
    low, high = binomial_bounds(flags.size, p)
    assert low <= flags.sum() <= high, (flags.mean(), p, low / flags.size, high / flags.size)


def assert_uniform(values, low: float, high: float):
    """All of `values` in [low, high), and a KS test against U[low, high)."""
    values = np.asarray(values, np.float64)
    assert values.min() >= low and values.max() < high, (values.min(), values.max())
    result = stats.kstest(values, "uniform", args=(low, high - low))
    assert result.pvalue > ALPHA, result


def assert_equally_likely(values, categories):
    """Every value one of `categories`, each as often as the others (chi-square)."""
    values = np.asarray(values)
    assert set(np.unique(values)) <= set(categories)
    counts = np.array([np.count_nonzero(values == c) for c in categories])
    result = stats.chisquare(counts)
    assert result.pvalue > ALPHA, (counts, result)


def test_threefry_gives_the_published_answers():
    # Random123's known-answer vectors for threefry2x32_20 (kat_vectors),
    # as JAX's tests check its own: (key, counter) -> block
    cases = [((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
             ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
             ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0))]
    for key, (x0, x1), expected in cases:
        words = threefry2x32(as_key(list(key)), as_key([x0])[0], as_key([x1])[0])
        assert tuple(int(w) for w in words) == expected
    # a counter broadcasts: each element its own block
    first, second = threefry2x32(as_key([0x13198A2E, 0x03707344]), as_key([0x243F6A88])[0],
                                 tf.constant([0x85A308D3, 0], tf.uint32))
    assert (int(first[0]), int(second[0])) == (0xC4923A9C, 0x483DF7A0)
    assert int(first[1]) != 0xC4923A9C


def test_keys_from_any_integer_seed_and_fold_in():
    assert as_key(tf.constant([-1, 2 ** 33 + 5], tf.int64)).numpy().tolist() == [2 ** 32 - 1, 5]
    assert as_key([3, 4]).numpy().tolist() == as_key(np.array([3, 4], np.int32)).numpy().tolist()
    # fold_in is the block at counter (0, data); a tensor datum folds as an int does
    block = threefry2x32(KEY, as_key([0])[0], as_key([9])[0])
    assert fold_in(KEY, 9).numpy().tolist() == [int(w) for w in block]
    as_tensor = fold_in(KEY, tf.constant(9, tf.int64))
    assert as_tensor.numpy().tolist() == fold_in(KEY, 9).numpy().tolist()
    # split's rows are fold_in's keys
    assert split(KEY, 3).numpy().tolist() == [fold_in(KEY, i).numpy().tolist() for i in range(3)]


def test_uniform_and_normal_draws_follow_their_distributions():
    u = uniforms(KEY, EXAMPLES, 2).numpy()
    for row in u:
        assert_uniform(row, 0.0, 1.0)
    assert stats.pearsonr(*u).pvalue > ALPHA  # a transform's parameters independent
    z = normal(KEY, 40, 5001).numpy()  # the odd length: the second half one shorter
    assert z.shape == (40, 5001)
    result = stats.kstest(z.ravel(), "norm")
    assert result.pvalue > ALPHA, result
    # the Box-Muller halves (cosines, sines) are each normal and uncorrelated
    halves = z[:, :2500].ravel(), z[:, 2501:].ravel()
    for half in halves:
        assert stats.kstest(half, "norm").pvalue > ALPHA
    assert stats.pearsonr(*halves).pvalue > ALPHA
    # an example's draws do not depend on the batch it is drawn in
    np.testing.assert_array_equal(uniforms(KEY, 5, 2).numpy(), u[:, :5])
    np.testing.assert_array_equal(normal(KEY, 2, 5001).numpy(), z[:2])


def test_polarity_gain_and_pitch_shift_draws():
    assert_frequency(polarity.draw(KEY, EXAMPLES)["apply"], polarity.PROBABILITY)
    drawn = gain.draw(KEY, EXAMPLES)
    assert_frequency(drawn["apply"], gain.PROBABILITY)
    assert_uniform(drawn["decibels"], *gain.DECIBELS)
    drawn = pitch_shift.draw(KEY, EXAMPLES)
    assert_frequency(drawn["apply"], pitch_shift.PROBABILITY)
    assert_uniform(drawn["semitones"], -pitch_shift.SEMITONES, pitch_shift.SEMITONES)


def test_noise_draws():
    drawn = noise.draw(KEY, EXAMPLES, 2)
    assert_frequency(drawn["apply"], noise.PROBABILITY)
    assert_uniform(drawn["relative_std"], *noise.RELATIVE_STD)
    assert drawn["noise"].shape == (EXAMPLES, 2)
    assert stats.kstest(drawn["noise"].numpy().ravel(), "norm").pvalue > ALPHA


def test_filter_draws_a_high_or_low_pass_and_its_cutoff():
    drawn = {k: v.numpy() for k, v in filters.draw(KEY, EXAMPLES).items()}
    assert_frequency(drawn["apply"], filters.PROBABILITY)
    assert_frequency(drawn["high"], 0.5)
    assert_uniform(drawn["cutoff_hz"][drawn["high"]], *filters.HIGH_PASS_HZ)
    assert_uniform(drawn["cutoff_hz"][~drawn["high"]], *filters.LOW_PASS_HZ)


def test_delay_draws_each_offset_equally_often():
    drawn = delay.draw(KEY, EXAMPLES, SR)
    assert_frequency(drawn["apply"], delay.PROBABILITY)
    offsets = [round(ms * SR / 1000) for ms in delay.DELAYS_MS]
    assert_equally_likely(drawn["offset"].numpy(), offsets)


def test_reverb_draws_three_levels_0_to_99():
    drawn = reverb.draw(KEY, EXAMPLES, 10)  # at 10 Hz its tails' noise is (batch, 10)
    assert_frequency(drawn["apply"], reverb.PROBABILITY)
    for name in ("reverberance", "damping", "room"):
        assert_equally_likely(drawn[name].numpy(), np.arange(100))
    assert drawn["noise"].shape == (EXAMPLES, 10)
    assert stats.kstest(drawn["noise"].numpy().ravel(), "norm").pvalue > ALPHA


def test_the_chains_transforms_apply_independently():
    # each transform draws from the chain's key folded with its index: any
    # two apply together as often as the product of their probabilities
    keys = [fold_in(KEY, i) for i in range(7)]
    drawn = [polarity.draw(keys[0], EXAMPLES), noise.draw(keys[1], EXAMPLES, 1),
             gain.draw(keys[2], EXAMPLES), filters.draw(keys[3], EXAMPLES),
             delay.draw(keys[4], EXAMPLES, SR), pitch_shift.draw(keys[5], EXAMPLES),
             reverb.draw(keys[6], EXAMPLES, 1)]
    applied = [np.asarray(d["apply"]) for d in drawn]
    config = AugmentConfig()
    p = [config.polarity, config.noise, config.gain, config.filter, config.delay,
         config.pitch_shift, config.reverb]
    for i, j in itertools.combinations(range(7), 2):
        assert_frequency(applied[i] & applied[j], p[i] * p[j])


@pytest.mark.parametrize("p", [0.0, 1.0])
def test_probabilities_0_and_1_are_never_and_always(p):
    assert np.asarray(polarity.draw(KEY, 10_000, p)["apply"]).mean() == p
