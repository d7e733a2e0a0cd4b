"""Pieces that several model families build with, kept here so that no
family module borrows from another: the `tags` output, the checks of a
factory's arguments, and the heights of musicnn's timbral filters (Pons et
al. 2018), which musicnn and pons_musicnn both use."""

from __future__ import annotations

import math
import numbers

from tagger.models.lazy import keras, layers


def tags_output(x, num_tags, dropout=None, dropout_name="head_dropout"):
    """`dropout_name`, a PhiloxDropout at `dropout` (none when None), then
    `tags`, dense sigmoid, float32: (batch, features) -> (batch, num_tags)."""
    if dropout is not None:
        x = layers.PhiloxDropout(dropout, name=dropout_name)(x)
    return keras.layers.Dense(num_tags, activation="sigmoid", dtype="float32", name="tags")(x)


def check_arguments(*dropouts, **positive_ints):
    """A ValueError for the first of `positive_ints` (name=value) that is not
    a positive integer, else for the first of `dropouts` not in [0, 1)."""
    for name, value in positive_ints.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    for dropout in dropouts:
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) \
                or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")


def timbral_heights(fractions, n_mels: int) -> list[int]:
    """Heights in mel bins of musicnn's timbral filters, each a fraction of
    the bins (Pons et al. 2018); a ValueError when one spans no bin."""
    heights = [int(fraction * n_mels) for fraction in fractions]
    if min(heights) < 1:
        raise ValueError(f"musicnn's timbral filters span {min(fractions)} of the mel bins: "
                         f"it needs at least {math.ceil(1 / min(fractions))} bins, got "
                         f"n_mels {n_mels}")
    return heights
