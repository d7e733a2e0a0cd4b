"""demo.py --semi-supervised on a tiny configuration, and its bootstrap."""

import json
import shutil

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from tagger.commands import demo
from tagger.semi_supervised_demo import (SemiSupervisedDemoConfig, macro_aucs,
                                         paired_bootstrap, run_semi_supervised_demo)


def test_macro_aucs_equal_sklearn():
    rng = np.random.default_rng(0)
    y = rng.random((60, 7)) < 0.3
    s = rng.random((60, 7))
    y[:, 6] = False  # no positive: left out
    got = macro_aucs(y, s)
    np.testing.assert_allclose(got["roc_auc"], np.mean(
        [roc_auc_score(y[:, k], s[:, k]) for k in range(6)]))
    np.testing.assert_allclose(got["pr_auc"], np.mean(
        [average_precision_score(y[:, k], s[:, k]) for k in range(6)]))
    tied = np.round(s, 1)  # ties: ranks averaged, as sklearn
    np.testing.assert_allclose(macro_aucs(y, tied)["roc_auc"], np.mean(
        [roc_auc_score(y[:, k], tied[:, k]) for k in range(6)]))


def test_paired_bootstrap_finds_a_real_gain_and_no_gain_between_equals():
    rng = np.random.default_rng(1)
    y = rng.random((300, 5)) < 0.3
    weak = y + rng.normal(0, 1.0, y.shape)
    strong = y + rng.normal(0, 0.4, y.shape)
    stats = paired_bootstrap(y, weak, strong, resamples=200)
    point, low, high = stats["gain"]["roc_auc"]
    assert low > 0 and low <= point <= high
    np.testing.assert_allclose(point, stats["student_model"]["roc_auc"][0]
                               - stats["teacher"]["roc_auc"][0])
    same = paired_bootstrap(y, weak, weak, resamples=50)
    assert same["gain"]["roc_auc"] == (0.0, 0.0, 0.0)


def test_flags_of_the_other_demo_are_refused(capsys):
    assert demo.main(["--semi-supervised", "--width", "0.5"]) == 2
    assert "--width do(es) not apply with --semi-supervised" in capsys.readouterr().err
    assert demo.main(["--seeds", "3"]) == 2
    assert "--seeds applies with --semi-supervised only" in capsys.readouterr().err
    config = demo.semi_supervised_config(demo.parse_args(
        ["--semi-supervised", "--seeds", "3", "--clips", "80", "--work-dir", "w"]))
    assert (config.seeds, config.clips, config.seconds, config.work_dir) == (3, 80, 6.0, "w")


@pytest.mark.slow
def test_tiny_demo_end_to_end(synthetic_mtt, tmp_path):
    from tests.conftest import SYNTHETIC_CLIPS, SYNTHETIC_SECONDS

    shutil.copytree(synthetic_mtt[0], tmp_path / "dataset")  # reused: same settings
    config = SemiSupervisedDemoConfig(
        work_dir=str(tmp_path), clips=SYNTHETIC_CLIPS, seconds=SYNTHETIC_SECONDS, seeds=1,
        students=("compact",),
        teacher_width=1 / 16, compact_width=1 / 32, teacher_epochs=1, student_epochs=1,
        steps_per_epoch=2, resamples=20, progress=False)
    lines = list(run_semi_supervised_demo(config))
    assert any("(already there)" in line for line in lines)
    rows = json.loads((tmp_path / "semi_supervised" / "results.json").read_text())
    assert [(r["seed"], r["student"]) for r in rows] == [(0, "compact")]
    from tagger.evaluation.evaluate import evaluate

    records = str(tmp_path / "semi_supervised" / "tfrecord")
    teacher = evaluate(rows[0]["teacher_run"] + "/model.keras", records, "test")
    np.testing.assert_allclose(rows[0]["teacher"]["roc_auc"][0], teacher.metrics.roc_auc)
    student = json.loads((tmp_path / "semi_supervised" / "runs" / "student-compact-seed0" /
                          "config.json").read_text())
    assert student["noisy_student"]["teacher"].endswith("teacher-seed0/model.keras")
    assert any(line.startswith("   0 compact  roc_auc") for line in lines)
