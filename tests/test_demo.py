"""demo.py end to end on a smaller synthetic dataset: every model family
learns the synthetic tags (test ROC-AUC well above chance), and a rerun
finds every step done.

All families share one dataset and one set of records (the demo skips the
steps whose outputs exist); each trains its own run folder.
"""

import contextlib
import io
import json

import pytest

import demo

# 400 clips as in the real demo, but 10.8 s (four segments) each: as many
# training segments as 160 full-length clips, and a test split of 66 clips
# whose macro ROC-AUC is far steadier than that of 30.
DATASET = ["--clips", "400", "--seconds", "10.8"]
EPOCHS = {"samplecnn": 3, "multiscale": 4, "self_attention": 4, "transformer": 4}
# The multi-scale CNN's 10-segment window would be 60% padding on these clips.
OPTIONS = {"multiscale": ["--window-segments", "4"]}
RUN_NAMES = {"samplecnn": "samplecnn-rese-multi"}


@pytest.fixture(scope="module")
def work_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("demo")


def run_demo(work_dir, model):
    """Runs demo.py for `model`; returns (printed lines, metrics.json)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = demo.main(["--work-dir", str(work_dir), "--model", model, *DATASET,
                          "--epochs", str(EPOCHS[model]), "--no-progress",
                          *OPTIONS.get(model, [])])
    assert code == 0, out.getvalue()
    run_dir = work_dir / "runs" / RUN_NAMES.get(model, model)
    return out.getvalue().splitlines(), json.loads((run_dir / "metrics.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("model", list(EPOCHS))
def test_demo_learns_the_synthetic_tags(work_dir, model):
    lines, metrics = run_demo(work_dir, model)
    roc_auc = metrics["test"]["roc_auc"]
    assert roc_auc >= 0.75, lines
    assert f"test split: macro ROC-AUC {roc_auc:.4f}" in "\n".join(lines)
    assert metrics["monitor"] == "val_roc_auc" and metrics["epochs"] == EPOCHS[model]
    assert metrics["best"]["val_roc_auc"] == max(r["val_roc_auc"] for r in
                                                 _history(work_dir, model))
    assert lines[-1].startswith("demo finished in ")

    again, _ = run_demo(work_dir, model)
    assert any(line.endswith("(already there)") for line in again if
               line.startswith("synthetic dataset"))
    assert any(line.endswith("(already finished)") for line in again)


def _history(work_dir, model):
    import csv

    path = work_dir / "runs" / RUN_NAMES.get(model, model) / "history.csv"
    with open(path) as f:
        return [{k: float(v) for k, v in row.items() if k.startswith("val_")}
                for row in csv.DictReader(f)]


def test_flags_override_the_family_settings():
    default = demo.config_from_args(demo.parse_args([]))
    assert (default.model, default.batch_size, default.lr, default.epochs) == \
        ("samplecnn", 8, 0.003, 4)
    assert default.model_args["width"] == 0.125 and default.window_segments is None
    config = demo.config_from_args(demo.parse_args(
        ["--model", "multiscale", "--batch-size", "4", "--lr", "0.01", "--epochs", "2",
         "--window-segments", "3", "--clips", "50", "--seconds", "12", "--workers", "1"]))
    assert (config.batch_size, config.lr, config.epochs, config.window_segments) == \
        (4, 0.01, 2, 3)
    assert (config.clips, config.seconds, config.workers) == (50, 12.0, 1)
    assert config.model_args == {"bn_momentum": 0.9}
