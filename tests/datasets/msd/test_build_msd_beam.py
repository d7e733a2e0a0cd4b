"""The MSD build under the Beam DirectRunner: byte-identical to the local build."""

import hashlib
import json
import pathlib

import pytest

pytest.importorskip("apache_beam")

from tests.checks import beam_modules_after, build_msd  # noqa: E402


def digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(pathlib.Path(folder).iterdir())
            if p.name.endswith(".tfrecord") or p.name == "dataset_info.json"}


def test_direct_runner_equals_the_local_msd_build(msd_builds, synthetic_msd, tmp_path):
    from tagger.beam.build import BeamRun
    from tagger.datasets.msd.plan import MsdSettings

    data_dir, _ = synthetic_msd
    records_dir, local_info, plan = msd_builds["cals"]  # with an unlabelled student split
    info = build_msd(data_dir, tmp_path / "beam", MsdSettings("cals", f"{data_dir}/cals"),
                     runner=BeamRun("DirectRunner"))
    assert info == local_info and info.splits["student"]["clips"] > 0
    local = digests(records_dir)
    assert len(local) > 3 and digests(tmp_path / "beam") == local


def test_cli_direct_runner_equals_the_local_cli_build(msd_builds, synthetic_msd, tmp_path,
                                                      capsys):
    from tagger.commands import build_msd

    data_dir, _ = synthetic_msd
    argv = ["--data-dir", data_dir, "--split", "cals", f"{data_dir}/cals",
            "--num-audios-per-shard", "8", "--no-progress"]
    assert build_msd.main([*argv, "--out-dir", str(tmp_path / "local"), "--workers", "1"]) == 0
    assert build_msd.main([*argv, "--out-dir", str(tmp_path / "beam"), "--runner", "direct",
                           "--beam-option", "direct_num_workers=1"]) == 0
    assert "student" in capsys.readouterr().out
    local = digests(tmp_path / "local")
    assert "dataset_info.json" in local and digests(tmp_path / "beam") == local
    # the shards are those of the library build too (dataset_info.json also
    # records the --split folder the CLI was given)
    shards = {name: digest for name, digest in digests(msd_builds["cals"][0]).items()
              if name.endswith(".tfrecord")}
    assert shards.items() <= local.items()


@pytest.mark.slow
def test_local_msd_build_imports_nothing_of_beam(synthetic_msd, tmp_path):
    data_dir, _ = synthetic_msd
    out = tmp_path / "o"
    assert beam_modules_after("build_msd", [
        "--data-dir", data_dir, "--split", "cals", f"{data_dir}/cals", "--out-dir", out,
        "--workers", "1", "--no-progress", "--num-audios-per-shard", "8"]) == []
    assert json.loads((out / "dataset_info.json").read_text())["splits"]["student"]["clips"]
