"""demo.py end to end on a smaller synthetic dataset: the convolutional
families (the Short-chunk ResNet on its own 16 kHz records) learn the
synthetic tags (test ROC-AUC well above chance). tests/test_demo_small.py
runs the attention families' demos and a rerun on a small dataset.

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
# (the multi-scale CNN's validation ROC-AUC passes 0.9 in its first epoch)
EPOCHS = {"samplecnn": 3, "multiscale": 2, "short_res": 3}
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
