"""On the synthetic MSD a split that shares artists between train and test
scores visibly higher than the artist-level split (the reason for CALS)."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_an_artist_leaking_split_scores_higher(tmp_path):
    from tagger.datasets.msd.leakage import leak_scores
    from tagger.datasets.msd.plan import MsdSettings, plan_msd
    from tagger.datasets.synthetic_msd import generate

    generate(str(tmp_path), tracks=120, seconds=1.0, seed=0, workers=1, progress=False)
    plan = plan_msd(str(tmp_path), MsdSettings(), progress=False)
    artist, leaky = leak_scores(plan)
    assert leaky - artist >= 0.08, (artist, leaky)
    assert 0.5 < artist < leaky
