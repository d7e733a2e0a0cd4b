"""demo.py's pipeline on a small synthetic dataset (48 clips of 5.4 s, one
epoch): the attention families' demos write their model, metrics and
attention maps, and a rerun reuses exactly the steps whose settings did not
change. (tests/test_demo.py shows that the convolutional families learn.)

The rerun starts from the self-attention demo's run, taken once per module.
"""

import contextlib
import dataclasses
import io
import json
import pathlib

import pytest

from tagger.commands import demo

SMALL = ["--clips", "48", "--seconds", "5.4", "--epochs", "1", "--workers", "1",
         "--no-progress"]


def run_demo(work_dir, *flags) -> list:
    """The lines demo.py prints with the small settings and `flags`; it must succeed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = demo.main(["--work-dir", str(work_dir), *SMALL, *flags])
    assert code == 0, out.getvalue()
    return out.getvalue().splitlines()


@dataclasses.dataclass(frozen=True)
class FirstRun:
    """A demo's first run, as it was before any test ran it again."""
    work_dir: pathlib.Path
    lines: list
    metrics: dict
    model_bytes: int
    maps: list


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    """`first_run(model)`: the FirstRun of `model`'s small demo, run once per module."""
    runs = {}

    def get(model: str) -> FirstRun:
        if model not in runs:
            work_dir = tmp_path_factory.mktemp(model)
            lines = run_demo(work_dir, "--model", model)
            run_dir = work_dir / "runs" / model
            runs[model] = FirstRun(
                work_dir, lines, json.loads((run_dir / "metrics.json").read_text()),
                (run_dir / "model.keras").stat().st_size,
                sorted(p.name for p in (work_dir / "attention_maps").iterdir()))
        return runs[model]

    return get


# The attention families are checked as pipelines: on 2 CPU cores their
# demos need about 6 minutes each to learn the synthetic tags (the
# self-attention demo reaches a validation ROC-AUC of 0.88 after 4 epochs of
# 85 s). That a small transformer learns them is shown by the
# contribution-localisation test (tests/interpret).
@pytest.mark.slow
@pytest.mark.parametrize("model", ["self_attention", "transformer"])
def test_the_attention_demos_write_their_model_metrics_and_attention_maps(first_run, model):
    run = first_run(model)
    assert run.metrics["epochs"] == 1 and 0.0 <= run.metrics["test"]["roc_auc"] <= 1.0
    assert run.model_bytes > 0
    assert any(name.endswith(".png") for name in run.maps), run.maps
    assert run.lines[-1].startswith("demo finished in ")


@pytest.mark.slow
def test_a_rerun_redoes_the_steps_whose_settings_changed(first_run):
    """Reused steps must match the settings asked for; changed ones are redone."""
    work_dir = first_run("self_attention").work_dir

    def epochs():
        metrics = work_dir / "runs" / "self_attention" / "metrics.json"
        return json.loads(metrics.read_text())["epochs"]

    again = run_demo(work_dir, "--model", "self_attention")
    assert any(line.endswith("(already there)") for line in again)
    assert any(line.endswith("(already finished)") for line in again)
    more = run_demo(work_dir, "--model", "self_attention", "--epochs", "2")
    assert any(line.startswith("synthetic dataset") and line.endswith("(already there)")
               for line in more)
    assert any(line.startswith("training: settings changed (max_epochs_per_stage 1 -> 2")
               and line.endswith("is trained anew") for line in more), more
    assert epochs() == 2
    bigger = run_demo(work_dir, "--model", "self_attention", "--epochs", "2", "--clips", "50")
    assert "synthetic dataset: settings changed (clips 48 -> 50): made anew" in bigger
    assert any("dataset.clips 48 -> 50" in line for line in bigger)
    assert epochs() == 2
