"""demo.py end to end on a smaller synthetic dataset: the convolutional
families (the Short-chunk ResNet on its own 16 kHz records) learn the
synthetic tags (test ROC-AUC well above chance), the Transformer's demo
writes everything it promises (that it learns is shown by
tests/interpret/test_contribution_localisation.py, which trains one), and a
rerun reuses exactly the steps whose settings did not change.

All families share one dataset and the 22050 Hz ones one set of records
(the demo skips the steps whose outputs exist); each trains its own run folder.
"""

import contextlib
import io
import json

import pytest

from tagger.commands import demo

# 400 clips as in the real demo, but 10.8 s (four segments) each: as many
# training segments as 160 full-length clips, and a test split of 66 clips
# whose macro ROC-AUC is far steadier than that of 30.
DATASET = ["--clips", "400", "--seconds", "10.8"]
EPOCHS = {"samplecnn": 3, "multiscale": 4, "short_res": 3}
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


# The attention families are checked as pipelines on a small dataset: on 2
# CPU cores their demos need about 6 minutes each to learn the synthetic
# tags (the self-attention demo reaches a validation ROC-AUC of 0.88 after 4
# epochs of 85 s). That a small transformer learns them is shown by the
# contribution-localisation test (tests/interpret).
@pytest.mark.slow
@pytest.mark.parametrize("model", ["self_attention", "transformer"])
def test_the_attention_demos_write_their_model_metrics_and_attention_maps(tmp_path, model):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = demo.main(["--work-dir", str(tmp_path), "--model", model,
                          "--clips", "48", "--seconds", "5.4", "--epochs", "1",
                          "--workers", "1", "--no-progress"])
    lines = out.getvalue().splitlines()
    assert code == 0, lines
    run_dir = tmp_path / "runs" / model
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["epochs"] == 1 and 0.0 <= metrics["test"]["roc_auc"] <= 1.0
    assert (run_dir / "model.keras").stat().st_size > 0
    maps = sorted(p.name for p in (tmp_path / "attention_maps").iterdir())
    assert any(name.endswith(".png") for name in maps), maps
    assert lines[-1].startswith("demo finished in ")


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


@pytest.mark.slow
def test_a_rerun_redoes_the_steps_whose_settings_changed(tmp_path):
    """Reused steps must match the settings asked for; changed ones are redone."""
    base = ["--clips", "48", "--seconds", "3", "--epochs", "1", "--width", "0.0625",
            "--workers", "1"]

    def run(*flags):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = demo.main(["--work-dir", str(tmp_path), "--no-progress", *base, *flags])
        assert code == 0, out.getvalue()
        return out.getvalue().splitlines()

    def epochs():
        metrics = tmp_path / "runs" / "samplecnn-rese-multi" / "metrics.json"
        return json.loads(metrics.read_text())["epochs"]

    run()
    again = run()
    assert any(line.endswith("(already there)") for line in again)
    assert any(line.endswith("(already finished)") for line in again)
    more = run("--epochs", "2")
    assert any(line.startswith("synthetic dataset") and line.endswith("(already there)")
               for line in more)
    assert any(line.startswith("training: settings changed (max_epochs_per_stage 1 -> 2")
               and line.endswith("is trained anew") for line in more), more
    assert epochs() == 2
    bigger = run("--epochs", "2", "--clips", "50")
    assert "synthetic dataset: settings changed (clips 48 -> 50): made anew" in bigger
    assert any("dataset.clips 48 -> 50" in line for line in bigger)
    assert epochs() == 2


def test_each_family_reads_records_at_its_paper_rate_and_segment():
    """The demo builds each family's records at its own input: a 16 kHz folder
    for Won et al. 2020's models (FCN's 29 s segments apart), so switching
    --model never mixes records of different rates."""
    from tagger.demos.pipeline import family_audio, records_folder, segment_seconds

    assert records_folder("samplecnn") == records_folder("transformer") == "tfrecord"
    assert records_folder("short_res") == "tfrecord-16000hz-59049"
    assert records_folder("fcn") == "tfrecord-16000hz-464000"
    assert (family_audio("fcn").sample_rate, segment_seconds("fcn")) == (16000, 29.0)
    assert demo.config_from_args(demo.parse_args(["--model", "fcn"])).seconds == 29.1


def test_clips_shorter_than_the_familys_segment_are_refused(capsys):
    assert demo.main(["--model", "fcn", "--seconds", "10", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("--seconds 10 holds no whole 29 s segment of --model fcn (its "
                        "records' unit); give --seconds 29.1 or more"), err
    assert len(err.splitlines()) == 1


def test_flags_that_do_not_apply_are_errors(capsys):
    assert demo.main(["--model", "transformer", "--width", "0.5"]) == 2
    assert capsys.readouterr().err.strip().endswith(
        "--width applies to --model samplecnn only (this demo trains --model transformer); "
        "leave it out")


@pytest.mark.parametrize("argv, fragment", [
    (["--workers", "0"], "argument --workers: expected a number >= 1, got '0'"),
    (["--clips", "5"], "argument --clips: expected a number in [10, 25000], got '5'"),
    (["--clips", "many"], "argument --clips: expected an integer, got 'many'"),
    (["--seconds", "1"], "argument --seconds: expected a number in [3.0, 600.0], got '1'"),
    (["--seconds", "nan"], "argument --seconds: expected a number in [3.0, 600.0]"),
    (["--epochs", "0"], "argument --epochs: expected a number >= 1, got '0'"),
    (["--lr", "nan"], "argument --lr: expected a number > 0, got 'nan'"),
    (["--lr", "-0.001"], "argument --lr: expected a number > 0, got '-0.001'"),
    (["--batch-size", "0"], "argument --batch-size: expected a number >= 1, got '0'"),
    (["--width", "0"], "argument --width: expected a number > 0, got '0'"),
    (["--width", "inf"], "argument --width: expected a number > 0, got 'inf'"),
    (["--window-segments", "-1"], "argument --window-segments: expected a number >= 1"),
    (["--seed", "-1"], "argument --seed: expected a number >= 0, got '-1'"),
    (["--semi-supervised", "--seeds", "0"], "argument --seeds: expected a number >= 1"),
])
def test_numbers_out_of_range_are_refused_up_front(capsys, argv, fragment):
    """Parsing alone refuses them (nothing runs): one line, exit 2, the valid range."""
    with pytest.raises(SystemExit) as exit_:
        demo.parse_args(argv)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert len(err.strip().splitlines()) == 1 and fragment in err, err
    assert "Traceback" not in err
