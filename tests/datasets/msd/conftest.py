"""A tiny synthetic MSD, made once per test session: 60 tracks of 4 s
(one 59049-sample segment each at 22050 Hz)."""

from __future__ import annotations

import pytest

MSD_TRACKS = 60
MSD_SECONDS = 4.0


@pytest.fixture(scope="session")
def synthetic_msd(tmp_path_factory):
    """(data_dir, Summary) of the synthetic MSD."""
    from tagger.datasets.synthetic_msd import generate

    folder = tmp_path_factory.mktemp("synthetic_msd") / "msd"
    summary = generate(str(folder), tracks=MSD_TRACKS, seconds=MSD_SECONDS, seed=0,
                       workers=1, progress=False)
    return str(folder), summary
