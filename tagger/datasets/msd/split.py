"""An artist-level, label-stratified, seeded train/val/test split.

No artist has tracks in two splits (the point of the CALS split: a model
that has heard an artist in training recognises the artist's sound, which
inflates test scores). Artists are placed one at a time, those carrying the
rarest tags first, each into the split furthest below its share of the
artist's tags and of tracks (a greedy form of iterative stratification), so
every split gets about its share of every tag.
"""

from __future__ import annotations

import numpy as np

DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)  # about CALS: 163,504 / 34,730 / 34,913


def artist_split(artist: np.ndarray, labels: np.ndarray, seed: int = 0,
                 fractions=DEFAULT_FRACTIONS) -> np.ndarray:
    """Split index (0, 1, 2 for train, val, test) of every track, given the
    artist index and (tracks, tags) labels of each track."""
    fractions = np.asarray(fractions, float) / np.sum(fractions)
    artists, inverse = np.unique(artist, return_inverse=True)
    counts = np.zeros((len(artists), labels.shape[1]), np.int64)  # tag counts per artist
    np.add.at(counts, inverse, labels.astype(np.int64))
    sizes = np.bincount(inverse, minlength=len(artists))
    tag_totals = counts.sum(axis=0)
    rarity = np.where(counts > 0, tag_totals[None, :], np.iinfo(np.int64).max).min(axis=1)
    shuffle = np.random.default_rng(seed).permutation(len(artists))
    order = shuffle[np.argsort(rarity[shuffle], kind="stable")]
    tag_target = np.maximum(fractions[:, None] * tag_totals[None, :], 1e-9)
    size_target = np.maximum(fractions * len(artist), 1e-9)
    tag_have = np.zeros((3, labels.shape[1]))
    size_have = np.zeros(3)
    placed = np.empty(len(artists), np.int8)
    for a in order:
        carried = counts[a] > 0
        need = ((tag_target[:, carried] - tag_have[:, carried])
                / tag_target[:, carried]).sum(axis=1)
        need = need + (size_target - size_have) / size_target
        s = int(np.argmax(need))
        placed[a] = s
        tag_have[s] += counts[a]
        size_have[s] += sizes[a]
    return placed[inverse]
