"""Unlabelled splits: written without labels, described as such, never evaluated."""

import json
import os

import pytest

from tagger.datasets.mtt import MttSettings, plan_mtt
from tagger.errors import UserError
from tagger.records import reader
from tagger.records.info import describe, is_labelled, require_labelled


def test_a_share_of_train_becomes_an_unlabelled_split(synthetic_mtt, raw_records,
                                                     student_records):
    data_dir, _ = synthetic_mtt
    _, full = raw_records
    out_dir, info = student_records
    plan = plan_mtt(data_dir, MttSettings(unlabelled_fraction=0.5))
    assert plan.unlabelled == ("student",)
    train = {c.clip_id for c in plan.splits["train"]}
    student = {c.clip_id for c in plan.splits["student"]}
    whole = {c.clip_id for c in plan_mtt(data_dir).splits["train"]}
    assert not train & student and train | student == whole
    assert abs(len(train) - len(student)) <= 1
    assert all(c.labels is None for c in plan.splits["student"])
    assert list(info.splits) == ["train", "val", "test", "student"]
    assert [is_labelled(info, s) for s in info.splits] == [True, True, True, False]
    decoded = info.splits["train"]["clips"] + info.splits["student"]["clips"]
    assert decoded == full.splits["train"]["clips"]
    assert "(unlabelled)" in describe(info, out_dir).splitlines()[-len(info.skipped) - 3]
    ids, tags = reader.clip_labels(out_dir, "student", info)
    assert len(ids) == info.splits["student"]["clips"] > 0 and not tags.any()
    with open(os.path.join(out_dir, "dataset_info.json")) as f:
        assert json.load(f)["origin"]["kind"] == "synthetic"


def test_an_unlabelled_split_is_never_evaluated(student_records):
    out_dir, info = student_records
    require_labelled(info, "test")
    with pytest.raises(UserError, match="'student' holds no labels.*train, val, test"):
        require_labelled(info, "student")
    with pytest.raises(UserError, match="not in the dataset"):
        require_labelled(info, "valid")


def test_a_split_folder_may_name_unlabelled_clips(synthetic_mtt, tmp_path):
    data_dir, _ = synthetic_mtt
    plan = plan_mtt(data_dir)
    folder = tmp_path / "lists"
    folder.mkdir()
    paths = {s: [c.path for c in plan.splits[s]] for s in ("train", "val", "test")}
    (folder / "train.txt").write_text("\n".join(paths["train"][:6]))
    (folder / "valid.txt").write_text("\n".join(paths["val"]))
    (folder / "test.txt").write_text("\n".join(paths["test"]))
    (folder / "student.txt").write_text("\n".join(paths["train"][6:]))
    listed = plan_mtt(data_dir, MttSettings(split=str(folder)))
    assert [c.path for c in listed.splits["student"]] == paths["train"][6:]
    assert listed.unlabelled == ("student",)
    with pytest.raises(UserError, match="lists its own unlabelled clips"):
        plan_mtt(data_dir, MttSettings(split=str(folder), unlabelled_fraction=0.5))
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\)"):
        MttSettings(unlabelled_fraction=1.0)
