"""demo.py --semi-supervised on a tiny configuration, its flags and its table."""

import json
import shutil

import numpy as np
import pytest

from tagger.commands import demo
from tagger.demos.semi_supervised import (
    SemiSupervisedDemoConfig,
    run_semi_supervised_demo,
    table_lines,
    verdict,
)


def _gain(seed, student, roc_low, pr_low=-0.01):
    return {"seed": seed, "student": student, "roc_auc": [roc_low + 0.02, roc_low, 0.09],
            "pr_auc": [pr_low + 0.02, pr_low, 0.08]}


def test_table_shows_every_model_with_intervals_the_gains_and_a_verdict():
    summary = {"test_clips": 105, "bootstrap": {"level": 0.95, "resamples": 1000, "seed": 0},
               "models": [{"seed": 0, "model": m, "run": "r", "roc_auc": [0.8, 0.75, 0.85],
                           "pr_auc": [0.4, 0.35, 0.45]}
                          for m in ("teacher", "compact student", "equal-size student")],
               "gains": [_gain(0, "compact", 0.01), _gain(0, "equal", -0.02)]}
    lines = table_lines(summary)
    assert "105 clips" in lines[0] and "1000 resamples, seed 0, as eval.py" in lines[0]
    assert "ROC-AUC [95% CI]" in lines[1] and "PR-AUC [95% CI]" in lines[1]
    assert lines[2].split() == ["0", "teacher", "0.8000", "[0.7500,", "0.8500]", "0.4000",
                                "[0.3500,", "0.4500]"]
    assert lines[4].split()[:3] == ["0", "equal-size", "student"]
    compact, equal = lines[7], lines[8]
    assert compact.split()[:5] == ["0", "compact", "student", "+0.0300", "[+0.0100,"]
    assert compact.endswith("*") and not equal.endswith("*")
    assert lines[-1] == ("verdict: the compact student beats its teacher beyond the interval "
                         "(gain's interval above 0 in 1 of 1 seed(s) on ROC-AUC, 0 of 1 on "
                         "PR-AUC); the equal-size student does not beat its teacher beyond "
                         "the interval (gain's interval above 0 in 0 of 1 seed(s) on "
                         "ROC-AUC, 0 of 1 on PR-AUC)")


def test_verdict_counts_the_seeds_beyond_the_interval():
    gains = [_gain(0, "compact", 0.01, 0.02), _gain(1, "compact", -0.01)]
    assert verdict(gains) == ("verdict: the compact student beats its teacher beyond the "
                              "interval in some seeds only (gain's interval above 0 in 1 of 2 "
                              "seed(s) on ROC-AUC, 1 of 2 on PR-AUC)")
    assert verdict([]) == "verdict: no student was trained"


def test_flags_of_the_other_demo_are_refused(capsys):
    assert demo.main(["--semi-supervised", "--width", "0.5"]) == 2
    assert "--width applies without --semi-supervised only" in capsys.readouterr().err
    assert demo.main(["--semi-supervised", "--epochs", "3"]) == 2
    assert "--teacher-epochs, --student-epochs" in capsys.readouterr().err
    assert demo.main(["--seeds", "3"]) == 2
    assert "--seeds applies with --semi-supervised only" in capsys.readouterr().err
    assert demo.main(["--teacher-epochs", "3", "--student-epochs", "4"]) == 2
    assert ("--teacher-epochs, --student-epochs apply with --semi-supervised only"
            in capsys.readouterr().err)
    config = demo.semi_supervised_config(demo.parse_args(
        ["--semi-supervised", "--seeds", "3", "--clips", "80", "--work-dir", "w",
         "--teacher-epochs", "5", "--student-epochs", "7"]))
    assert (config.seeds, config.clips, config.seconds, config.work_dir) == (3, 80, 6.0, "w")
    assert (config.teacher_epochs, config.student_epochs) == (5, 7)
    defaults = demo.semi_supervised_config(demo.parse_args(["--semi-supervised"]))
    assert (defaults.seeds, defaults.teacher_epochs, defaults.student_epochs) == (2, 12, 30)


def test_help_documents_the_seeds_and_epochs_flags(capsys):
    with pytest.raises(SystemExit):
        demo.parse_args(["--semi-supervised", "--help"])
    text = " ".join(capsys.readouterr().out.split()).split("noisy-student demonstration:")[1]
    flags = [("--seeds N", "(default: 2)"), ("--teacher-epochs N", "(default: 12)"),
             ("--student-epochs N", "(default: 30)")]
    for (flag, default), (following, _) in zip(flags, flags[1:] + [("", "")]):
        assert flag in text
        entry = text.split(flag, 1)[1]
        entry = entry.split(following, 1)[0] if following else entry
        assert default in entry


def test_the_semi_supervised_demo_keeps_its_own_dataset(synthetic_mtt, tmp_path):
    """demo.py's <work_dir>/dataset (400 clips of 29.1 s) is not remade as
    600 clips of 6 s (which left demo.py's records not matching the audio)."""
    (tmp_path / "dataset").mkdir()
    (tmp_path / "dataset" / "mine.txt").write_text("demo.py's dataset\n")
    own = tmp_path / "semi_supervised" / "dataset"
    shutil.copytree(synthetic_mtt[0], own)
    run = run_semi_supervised_demo(SemiSupervisedDemoConfig(
        work_dir=str(tmp_path), clips=synthetic_mtt[1].num_clips,
        seconds=synthetic_mtt[1].seconds, progress=False))
    first = next(run)
    run.close()
    assert first == f"synthetic dataset: {own} (already there)"
    assert [p.name for p in (tmp_path / "dataset").iterdir()] == ["mine.txt"]


@pytest.mark.slow
def test_tiny_demo_end_to_end(synthetic_mtt, tmp_path):
    from tests.presets import SYNTHETIC_CLIPS, SYNTHETIC_SECONDS

    # reused: same settings; its own folder, apart from demo.py's <work_dir>/dataset
    shutil.copytree(synthetic_mtt[0], tmp_path / "semi_supervised" / "dataset")
    config = SemiSupervisedDemoConfig(
        work_dir=str(tmp_path), clips=SYNTHETIC_CLIPS, seconds=SYNTHETIC_SECONDS, seeds=1,
        students=("compact",),
        teacher_width=1 / 16, compact_width=1 / 32, teacher_epochs=1, student_epochs=1,
        steps_per_epoch=2, resamples=20, progress=False)
    lines = list(run_semi_supervised_demo(config))
    assert any("(already there)" in line for line in lines)
    assert not (tmp_path / "dataset").exists()
    summary = json.loads((tmp_path / "semi_supervised" / "results.json").read_text())
    assert [(r["seed"], r["model"]) for r in summary["models"]] == [
        (0, "teacher"), (0, "compact student")]
    assert [(g["seed"], g["student"]) for g in summary["gains"]] == [(0, "compact")]
    assert summary["bootstrap"] == {"level": 0.95, "resamples": 20, "seed": 0}
    from tagger.evaluation.evaluate import evaluate

    # each model's figures and intervals are eval.py's own
    records = str(tmp_path / "semi_supervised" / "tfrecord")
    teacher_row, student_row = summary["models"]
    teacher = evaluate(teacher_row["run"] + "/model.keras", records, "test", bootstrap=20)
    student = evaluate(student_row["run"] + "/model.keras", records, "test", bootstrap=20)
    for row, result in ((teacher_row, teacher), (student_row, student)):
        for metric in ("roc_auc", "pr_auc"):
            np.testing.assert_allclose(row[metric], [getattr(result.metrics, metric),
                                                     *result.metrics.intervals[metric]])
    gain = summary["gains"][0]
    np.testing.assert_allclose(gain["roc_auc"][0],
                               student.metrics.roc_auc - teacher.metrics.roc_auc)
    assert gain["roc_auc"][1] <= gain["roc_auc"][2]
    saved = json.loads((tmp_path / "semi_supervised" / "runs" / "student-compact-seed0" /
                        "config.json").read_text())
    assert saved["noisy_student"]["teacher"].endswith("teacher-seed0/model.keras")
    table = lines[lines.index(next(line for line in lines if line.startswith("test split"))):]
    assert [line.split()[:2] for line in table[2:4]] == [["0", "teacher"], ["0", "compact"]]
    assert any(line.startswith("verdict: the compact student") for line in table)
