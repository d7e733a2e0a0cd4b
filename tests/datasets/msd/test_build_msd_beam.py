"""The MSD build under the Beam DirectRunner: byte-identical to the local build."""

import hashlib
import pathlib

import pytest

pytest.importorskip("apache_beam")

from tests.datasets.msd.conftest import msd_config  # noqa: E402


def digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(pathlib.Path(folder).iterdir())
            if p.name.endswith(".tfrecord") or p.name == "dataset_info.json"}


def test_direct_runner_equals_the_local_msd_build(msd_builds, synthetic_msd, tmp_path):
    from tagger.beam.build import run_beam_build
    from tagger.beam.flags import BeamRun

    data_dir, _ = synthetic_msd
    records_dir, local_info, plan = msd_builds["cals"]  # with an unlabelled student split
    config = msd_config(data_dir, tmp_path / "beam", split="cals")
    info = run_beam_build(plan, config, BeamRun("DirectRunner"))
    assert info == local_info and info["splits"]["student"]["clips"] > 0
    local = digests(records_dir)
    assert len(local) > 3 and digests(tmp_path / "beam") == local
