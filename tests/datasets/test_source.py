"""The dataset-source interface: each source names its settings, plans from
them, records them in dataset_info.json, and `build` takes any source."""

import dataclasses
import importlib
import pathlib

import pytest

from tagger.datasets import SOURCES
from tagger.datasets.build import build
from tagger.datasets.folder import FolderSettings
from tagger.datasets.msd.plan import MsdSettings
from tagger.datasets.mtt import MttSettings
from tagger.datasets.source import DatasetSource
from tests.checks import build_config

ROOT = pathlib.Path(__file__).parents[2]


def test_every_source_is_complete_and_has_a_build_command(capsys):
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for name in SOURCES:
        spec = SOURCES.get(name)
        assert isinstance(spec, DatasetSource) and spec.name == name
        assert dataclasses.is_dataclass(spec.settings_type)
        spec.settings_type()  # the defaults are valid settings
        assert set(spec.located) <= {f.name for f in dataclasses.fields(spec.settings_type)}
        # its command: tagger-build-<name>, the instructions under --help
        assert scripts[f"tagger-build-{name}"] == f"tagger.commands.build_{name}:main"
        command = importlib.import_module(f"tagger.commands.build_{name}")
        with pytest.raises(SystemExit):
            command.main(["--help"])
        shown = " ".join(capsys.readouterr().out.split())
        assert f"Turns {spec.title} into sharded TFRecords." in shown
        assert " ".join(spec.manual_download.split()) in shown
    for name in ("mtt", "msd"):  # the synthetic sets in their layouts
        assert "python -m tagger.commands.synthetic" in SOURCES.get(name).manual_download
    with pytest.raises(ValueError, match="valid: mtt, msd, folder"):
        SOURCES.get("jamendo")


def test_settings_are_the_build_commands_flags():
    from tagger.commands.build_flags import parse_args, source_settings

    args = parse_args("mtt", ["--top-k", "7", "--merge-synonyms", "--unlabelled-fraction",
                              "0.25"])
    assert source_settings(SOURCES.get("mtt"), args) == MttSettings(
        top_k=7, merge_synonyms=True, unlabelled_fraction=0.25)
    args = parse_args("msd", ["--split", "cals", "/data/cals", "--layout", "msd"])
    assert source_settings(SOURCES.get("msd"), args) == MsdSettings(
        "cals", "/data/cals", layout="msd")
    args = parse_args("folder", ["music", "--split-by", "folder", "--val-fraction", "0.2"])
    assert args.data_dir == "music"
    assert source_settings(SOURCES.get("folder"), args) == FolderSettings(
        val_fraction=0.2, split_by="folder")


def test_settings_check_their_values_and_record_what_the_data_is():
    with pytest.raises(ValueError, match="top_k"):
        MttSettings(top_k=0)
    with pytest.raises(ValueError, match="--min-tag-value"):
        MsdSettings(min_tag_value=-1.0)
    recorded = SOURCES.get("msd").describe_settings(MsdSettings("cals", "/data/msd/cals"))
    assert recorded["source"] == "cals" and "source_dir" not in recorded
    assert SOURCES.get("mtt").describe_settings(MttSettings(top_k=7))["top_k"] == 7


def test_build_records_the_plan_settings_and_refuses_another_sources(synthetic_mtt, tmp_path):
    data_dir, _ = synthetic_mtt
    config = build_config(data_dir, tmp_path / "out")
    with pytest.raises(TypeError, match="the mtt source takes MttSettings, got MsdSettings"):
        build(SOURCES.get("mtt"), MsdSettings(), config)
    info = build(SOURCES.get("mtt"), MttSettings(top_k=12, seed=3), config)
    assert info.num_tags == 12
    assert info.build == {"split": "directory", "merge_synonyms": False, "top_k": 12,
                             "seed": 3, "unlabelled_fraction": 0.0,
                             "clips_per_shard": config.clips_per_shard,
                             "max_file_mb": config.max_file_mb,
                             "max_seconds": config.max_seconds}
