"""A tiny synthetic MSD and its records, made once per test run however many
pytest-xdist workers run (`tests.checks.built_once`): 60 tracks of 4 s (one
59049-sample segment each at 22050 Hz, `tests/presets.py`)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def synthetic_msd(tmp_path_factory):
    """(data_dir, Summary) of the synthetic MSD."""
    from tests.checks import built_once

    def make(folder):
        from tagger.datasets.synthetic_msd import generate
        from tests.presets import MSD_SECONDS, MSD_TRACKS

        summary = generate(str(folder / "msd"), tracks=MSD_TRACKS, seconds=MSD_SECONDS,
                           seed=0, workers=1, progress=False)
        return str(folder / "msd"), summary

    return built_once(tmp_path_factory, "synthetic_msd", make)


@pytest.fixture(scope="session")
def msd_builds(synthetic_msd, tmp_path_factory):
    """{source: (records_dir, dataset_info, plan)} for lastfm, cals and classic."""
    from tests.checks import build_msd, built_once

    def make(root):
        from tagger.datasets.msd.plan import MsdSettings, plan_msd

        data_dir, _ = synthetic_msd
        builds = {}
        for source in ("lastfm", "cals", "classic"):
            folder = None if source == "lastfm" else f"{data_dir}/{source}"
            settings = MsdSettings(source=source, source_dir=folder)
            out_dir = root / source
            info = build_msd(data_dir, out_dir, settings)
            builds[source] = (str(out_dir), info, plan_msd(data_dir, settings, progress=False))
        return builds

    return built_once(tmp_path_factory, "msd_records", make)
