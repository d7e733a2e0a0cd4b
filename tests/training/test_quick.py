"""train.py --quick (the family's demo preset), small adam_then_sgd totals, and the
run size said at the start."""

import pytest

from tagger.commands import train as train_cli
from tagger.models import family
from tests.checks import call_main, one_line_error


def quick_config(*argv):
    return train_cli.config_from_args(train_cli.parse_args(["--quick", *argv]))


def test_quick_is_the_familys_demo_preset_and_flags_beside_it_override_it():
    demo = family("samplecnn").demo
    config = quick_config()
    assert {k: config.model_args[k] for k in demo.model_args} == demo.model_args
    assert (config.batch_size, config.optimizer, config.lr, config.num_stages,
            config.max_epochs_per_stage) == (demo.batch_size, "adam", demo.lr, 1, demo.epochs)
    config = quick_config("--width", "0.25", "--batch-size", "4", "--lr", "0.01")
    assert (config.model_args["width"], config.model_args["block"]) == (0.25, "rese")
    assert (config.batch_size, config.lr) == (4, 0.01)
    transformer = family("transformer").demo
    config = quick_config("--model", "transformer")  # as demo.py trains it
    assert (config.schedule, config.optimizer, config.lr, config.max_epochs_per_stage) == (
        "staged", "adam", transformer.lr, transformer.epochs)
    assert config.model_args["size"] == "student" and config.batch_size == 8
    config = quick_config("--model", "transformer", "--schedule", "adam_then_sgd")
    assert config.schedule == "adam_then_sgd" and config.total_epochs == transformer.epochs
    assert tuple(config.switch_epochs) == (2, 3, 4)  # 80,100,120 of 200 scaled to 6


@pytest.mark.parametrize("total, switches", [(4, (1, 2, 3)), (10, (4, 5, 6)),
                                             (200, (80, 100, 120))])
def test_small_adam_then_sgd_totals_scale_the_switch_epochs(total, switches):
    config = train_cli.config_from_args(train_cli.parse_args(
        ["--model", "transformer", "--total-epochs", str(total)]))
    assert tuple(config.switch_epochs) == switches


def test_too_few_adam_then_sgd_epochs_are_one_line_saying_what_works(capsys):
    code, _, err = call_main(train_cli.main, capsys, "--model", "transformer",
                             "--total-epochs", "1")
    one_line_error(code, err,
                   "--total-epochs 1 is too few for the adam_then_sgd schedule's 4 stages",
                   "--total-epochs 4 or more", "--schedule staged")


def test_the_run_says_its_size_at_the_start(raw_records, tmp_path):
    from tagger.config import TrainConfig
    from tagger.training.backend import for_run
    from tagger.training.run import Run

    records, info = raw_records
    config = TrainConfig(data_dir=records, train_dir=str(tmp_path), model="samplecnn",
                         model_args=dict(family("samplecnn").tiny), batch_size=8,
                         num_stages=2, max_epochs_per_stage=3, patience=2,
                         strategy="default", progress=False)
    run = Run(config, info, for_run("default"), "off")
    windows = info.splits["train"]["segments"]  # one-segment windows
    steps = windows // 8
    assert run._epoch_size()[1] == (
        f"run size: {windows} training windows of 1 segment(s) per pass / batch 8 = "
        f"{steps} steps per epoch; up to 3 epochs per stage x 2 stage(s) (a stage ends "
        f"after 2 epochs without improvement) = up to {6 * steps} steps")
