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


def msd_config(data_dir, out_dir, **overrides):
    from tagger.config import BuildConfig

    settings = dict(data_dir=str(data_dir), out_dir=str(out_dir), workers=1,
                    clips_per_shard=8, progress=False)
    settings.update(overrides)
    return BuildConfig(**settings)


def build_msd(data_dir, out_dir, settings, runner=None, **overrides):
    """MSD records of `data_dir` planned with `settings` (MsdSettings),
    written to `out_dir` by `runner` (default: local processes)."""
    from tagger.datasets.build import build
    from tagger.datasets.msd.plan import SOURCE

    return build(SOURCE, settings, msd_config(data_dir, out_dir, **overrides), runner)


@pytest.fixture(scope="session")
def msd_builds(synthetic_msd, tmp_path_factory):
    """{source: (records_dir, dataset_info, plan)} for lastfm, cals and classic."""
    from tagger.datasets.msd.plan import MsdSettings, plan_msd

    data_dir, _ = synthetic_msd
    builds = {}
    for source in ("lastfm", "cals", "classic"):
        folder = None if source == "lastfm" else f"{data_dir}/{source}"
        settings = MsdSettings(source=source, source_dir=folder)
        out_dir = tmp_path_factory.mktemp("msd_records") / source
        info = build_msd(data_dir, out_dir, settings)
        builds[source] = (str(out_dir), info, plan_msd(data_dir, settings, progress=False))
    return builds
