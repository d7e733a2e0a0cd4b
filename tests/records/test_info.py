"""dataset_info.json read back as a DatasetInfo: every field required, the
schema version checked."""

from __future__ import annotations

import json
import shutil

import pytest

from tagger.errors import UserError
from tagger.records.info import DatasetInfo, load_info


def _with_info(raw_records, folder, change) -> str:
    """The raw records copied to `folder`, their dataset_info.json edited by `change`."""
    shutil.copytree(raw_records[0], folder)
    stored = json.loads((folder / "dataset_info.json").read_text())
    change(stored)
    (folder / "dataset_info.json").write_text(json.dumps(stored))
    return str(folder)


def test_files_without_a_schema_version_are_version_1(raw_records, tmp_path):
    info = load_info(_with_info(raw_records, tmp_path / "v1",
                                lambda stored: stored.pop("schema_version")))
    assert info == raw_records[1] and info.schema_version == 1
    assert isinstance(info, DatasetInfo) and info.sample_rate == 22050
    assert info.to_json()["tag_names"] == list(raw_records[1].tag_names)


def test_a_missing_field_or_a_newer_schema_is_one_line(raw_records, tmp_path):
    folder = _with_info(raw_records, tmp_path / "lacking",
                        lambda stored: stored.pop("sample_rate"))
    with pytest.raises(UserError, match=r"^'.*lacking/dataset_info\.json' lacks sample_rate; "
                                        r"rebuild the dataset with this version of "
                                        r"build_mtt\.py$"):
        load_info(folder)
    folder = _with_info(raw_records, tmp_path / "newer",
                        lambda stored: stored.update(schema_version=2))
    with pytest.raises(UserError, match=r"newer/dataset_info\.json' has schema version 2; "
                                        r"this version of tagger reads up to 1$"):
        load_info(folder)


def test_the_folder_above_the_records_names_them(raw_records, tmp_path):
    """resemul's --data-dir named the folder above tfrecord/ (`dataset`)."""
    records, _ = raw_records
    shutil.copytree(records, tmp_path / "tfrecord")
    with pytest.raises(UserError) as error:
        load_info(str(tmp_path))
    assert str(error.value) == (
        f"{str(tmp_path / 'dataset_info.json')!r} not found; --data-dir must be a folder "
        f"written by build_mtt.py: its records are in {str(tmp_path / 'tfrecord')!r}, pass "
        "--data-dir with that folder")
    with pytest.raises(UserError, match=r"\(python build_mtt.py --out-dir DIR\)$"):
        load_info(str(tmp_path / "tfrecord" / "none"))
