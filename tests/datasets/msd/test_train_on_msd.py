"""train.py and eval.py run unchanged on MSD records (tiny models)."""

from __future__ import annotations

import json

import pytest

from tagger.commands import eval as eval_cli
from tagger.commands import train as train_cli

COMMON = ["--batch-size", "8", "--steps-per-epoch", "2", "--strategy", "default",
          "--no-progress", "--seed", "0"]
MODELS = {
    "samplecnn": ["--block", "basic", "--alpha", "2", "--width", "0.0625",
                  "--num-stages", "1", "--max-epochs-per-stage", "1", "--patience", "1"],
    "transformer": ["--model", "transformer", "--size", "student", "--conv-ndim", "8",
                    "--attention-layers", "1", "--attention-heads", "2",
                    "--window-segments", "1", "--schedule", "staged", "--optimizer", "adam",
                    "--lr", "0.001", "--num-stages", "1", "--max-epochs-per-stage", "1",
                    "--patience", "1"],
}


@pytest.mark.slow
@pytest.mark.parametrize("model", list(MODELS))
def test_train_and_eval_run_on_an_msd_build(msd_builds, tmp_path, model, capsys):
    records, info, _ = msd_builds["lastfm"]
    assert train_cli.main(["--data-dir", records, "--train-dir", str(tmp_path),
                           "--run-name", model, *MODELS[model], *COMMON]) == 0
    run = tmp_path / model
    out = tmp_path / "metrics.json"
    assert eval_cli.main([str(run / "model.keras"), "--data-dir", records,
                          "--out-json", str(out), "--no-progress"]) == 0
    metrics = json.loads(out.read_text())
    assert 0.0 <= metrics["roc_auc"] <= 1.0
    capsys.readouterr()
    assert eval_cli.main([str(run / "model.keras"), "--data-dir", records,
                          "--split", "student", "--no-progress"]) == 2
    assert "holds no labels" in capsys.readouterr().err
