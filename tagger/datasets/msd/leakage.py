"""How much a split that shares artists between train and test inflates scores.

A deliberately simple tagger (k nearest neighbours on a spectral summary of
each track: mean and spread of 48 log-power bands) is scored, as macro
ROC-AUC, on the artist-level split of a plan and on track-level random
splits of the same tracks with the same test size. Neighbours by the same
artist carry the artist's tags, so the random splits score higher; the gap
is why CALS (and `--split lastfm`) split by artist.
"""

from __future__ import annotations

import os

import numpy as np

from tagger.audio import AudioDecodeError, load_audio

SAMPLE_RATE = 22050
BANDS = 48


def _summary(audio: np.ndarray) -> np.ndarray:
    frames = np.lib.stride_tricks.sliding_window_view(audio, 1024)[::512] * np.hanning(1024)
    power = np.log(np.abs(np.fft.rfft(frames, axis=1)) ** 2 + 1e-8)  # (frames, 513)
    bands = np.stack([b.mean(axis=1) for b in np.array_split(power, BANDS, axis=1)], 1)
    return np.concatenate([bands.mean(axis=0), bands.std(axis=0)])


def features(plan, splits=("train", "val", "test")) -> tuple:
    """(features, labels, split names) of every decodable track of `splits`."""
    rows, labels, names = [], [], []
    for split in splits:
        for clip in plan.splits[split]:
            if clip.path in plan.known_broken:
                continue
            try:
                audio = load_audio(os.path.join(plan.audio_root, clip.path), SAMPLE_RATE,
                                   quiet=True)
            except AudioDecodeError:
                continue
            if len(audio) < 2048:
                continue
            rows.append(_summary(audio))
            labels.append(clip.labels)
            names.append(split)
    x = np.array(rows)
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + 1e-6)
    return x, np.array(labels, np.uint8), np.array(names)


def knn_auc(x, y, train, test, k: int = 5) -> float:
    """Macro ROC-AUC on `test` of a k-NN tagger (cosine) fitted on `train`,
    over the tags with both classes in the test set."""
    from sklearn.metrics import roc_auc_score

    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    nearest = np.argsort(-(unit[test] @ unit[train].T), axis=1)[:, :k]
    scores = y[train][nearest].mean(axis=1)
    truth = y[test]
    aucs = [roc_auc_score(truth[:, j], scores[:, j]) for j in range(y.shape[1])
            if 0 < truth[:, j].sum() < len(test)]
    return float(np.mean(aucs))


def leak_scores(plan, seeds: int = 5) -> tuple:
    """(macro ROC-AUC on the plan's artist-level test split, mean over
    `seeds` track-level random splits of the same size)."""
    x, y, split = features(plan)
    test = np.flatnonzero(split == "test")
    artist = knn_auc(x, y, np.flatnonzero(split != "test"), test)
    leaky = []
    for seed in range(seeds):
        order = np.random.default_rng(seed).permutation(len(x))
        leaky.append(knn_auc(x, y, order[len(test):], order[:len(test)]))
    return artist, float(np.mean(leaky))
