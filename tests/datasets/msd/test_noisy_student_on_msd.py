"""train.py --teacher on records written by build_msd.py: the unlabelled
`student` split of the same records, or of a separate records folder given
with --unlabelled-data-dir."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tagger.commands import train as train_cli

TINY = ["--block", "basic", "--alpha", "2", "--width", "0.0625", "--num-stages", "1",
        "--max-epochs-per-stage", "1", "--patience", "1", "--batch-size", "8",
        "--steps-per-epoch", "2", "--validation-steps", "1", "--strategy", "default",
        "--no-test", "--no-progress", "--seed", "0"]


@pytest.mark.slow
def test_noisy_student_runs_on_msd_records(msd_builds, tmp_path, monkeypatch):
    from tagger.training.backend_tf import TensorFlowBackend

    records, info, _ = msd_builds["lastfm"]
    other, other_info, _ = msd_builds["cals"]  # another build, with its own student split
    assert info.splits["student"]["labelled"] is False
    assert other_info.splits["student"]["clips"] > 0
    reads = []  # (records folder, split, tags read) of every training input pipeline

    def spy(backend, data_dir, info, *args, split="train", with_tags=True, **kwargs):
        reads.append((data_dir, split, with_tags))
        return read(backend, data_dir, info, *args, split=split, with_tags=with_tags,
                    **kwargs)

    common = ["--data-dir", records, "--train-dir", str(tmp_path), *TINY]
    assert train_cli.main([*common, "--run-name", "teacher"]) == 0
    teacher = str(tmp_path / "teacher" / "model.keras")
    read = TensorFlowBackend.train_data
    monkeypatch.setattr(TensorFlowBackend, "train_data", spy)

    assert train_cli.main([*common, "--run-name", "same", "--teacher", teacher]) == 0
    assert reads == [(records, "train", True), (records, "student", False)]
    reads.clear()
    assert train_cli.main([*common, "--run-name", "separate", "--teacher", teacher,
                           "--unlabelled-data-dir", other]) == 0
    assert reads == [(records, "train", True), (other, "student", False)]
    for name, folder in (("same", None), ("separate", other)):
        saved = json.loads((tmp_path / name / "config.json").read_text())
        assert saved["noisy_student"]["teacher"] == teacher
        assert saved["noisy_student"]["unlabelled_split"] == "student"
        assert saved["noisy_student"]["unlabelled_data_dir"] == folder
        history = pd.read_csv(tmp_path / name / "history.csv")
        assert list(history.epoch) == [1] and history.train_loss.notna().all()
