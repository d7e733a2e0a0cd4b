"""The artist-level stratified split: no artist in two splits, shares kept,
every common tag spread in proportion, seeded."""

from __future__ import annotations

import numpy as np

from tagger.datasets.msd.split import DEFAULT_FRACTIONS, artist_split


def _data(seed=0, artists=400):
    rng = np.random.default_rng(seed)
    sizes = 1 + rng.poisson(3, artists)
    artist = np.repeat(rng.permutation(artists), sizes)
    # each artist leans to a few of 12 tags; tags are per track
    lean = rng.random((artists, 12)) < 0.15
    labels = (rng.random((len(artist), 12)) < np.where(lean[artist], 0.8, 0.02)).astype(np.uint8)
    return artist, labels


def test_artists_stay_whole_and_shares_hold():
    artist, labels = _data()
    where = artist_split(artist, labels, seed=1)
    for a in np.unique(artist):
        assert len(np.unique(where[artist == a])) == 1
    shares = np.bincount(where, minlength=3) / len(where)
    np.testing.assert_allclose(shares, DEFAULT_FRACTIONS, atol=0.02)
    per_tag = np.stack([labels[where == s].sum(axis=0) for s in range(3)]) / labels.sum(axis=0)
    np.testing.assert_allclose(per_tag, np.broadcast_to(np.array(DEFAULT_FRACTIONS)[:, None],
                                                        per_tag.shape), atol=0.05)


def test_seeded():
    artist, labels = _data()
    a = artist_split(artist, labels, seed=3)
    np.testing.assert_array_equal(a, artist_split(artist, labels, seed=3))
    assert (a != artist_split(artist, labels, seed=4)).any()


def test_stratified_beats_a_random_artist_split():
    artist, labels = _data(seed=2)
    where = artist_split(artist, labels, seed=0)
    totals = labels.sum(axis=0)

    def worst(w):
        per_tag = np.stack([labels[w == s].sum(axis=0) for s in range(3)]) / totals
        return np.abs(per_tag - np.array(DEFAULT_FRACTIONS)[:, None]).max()

    rng = np.random.default_rng(0)
    randoms = []
    for _ in range(10):
        pick = rng.choice(3, size=artist.max() + 1, p=DEFAULT_FRACTIONS)
        randoms.append(worst(pick[artist]))
    assert worst(where) < np.median(randoms) / 2
