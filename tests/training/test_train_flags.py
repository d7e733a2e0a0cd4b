"""train.py flags: ranges checked up front, no flag silently ignored."""

import pytest

from tagger.commands import train as train_cli
from tests.checks import call_main, one_line_error


@pytest.mark.parametrize("argv, fragment", [
    (["--lr", "-0.1"], "argument --lr: expected a number > 0, got '-0.1'"),
    (["--lr", "nan"], "argument --lr: expected a number > 0, got 'nan'"),
    (["--lr", "0"], "argument --lr: expected a number > 0"),
    (["--lr-decay", "1.5"], "argument --lr-decay: expected a number in (0, 1]"),
    (["--batch-size", "0"], "argument --batch-size: expected a number >= 1, got '0'"),
    (["--num-stages", "0"], "argument --num-stages: expected a number >= 1"),
    (["--max-epochs-per-stage", "-1"], "argument --max-epochs-per-stage"),
    (["--total-epochs", "0"], "argument --total-epochs: expected a number >= 1"),
    (["--patience", "-2"], "argument --patience: expected a number >= 0"),
    (["--momentum", "inf"], "argument --momentum: expected a number in [0, 1)"),
    (["--momentum", "1"], "argument --momentum: expected a number in [0, 1), got '1'"),
    (["--width", "0"], "argument --width: expected a number > 0"),
    (["--dropout", "1.2"], "argument --dropout: expected a number in [0, 1]"),
    (["--steps-per-epoch", "0"], "argument --steps-per-epoch"),
    (["--window-segments", "0"], "argument --window-segments"),
    (["--num-read-threads", "0"], "argument --num-read-threads"),
])
def test_numbers_out_of_range_are_refused(capsys, argv, fragment):
    code, _, err = call_main(train_cli.main, capsys, *argv)
    one_line_error(code, err, fragment)


@pytest.mark.parametrize("argv, fragment", [
    (["--model", "transformer", "--lr", "0.1"],
     "--lr applies to the staged schedule only (this run uses the adam_then_sgd schedule)"),
    (["--schedule", "adam_then_sgd", "--patience", "3", "--max-epochs-per-stage", "4"],
     "--patience, --max-epochs-per-stage apply to the staged schedule only"),
    (["--schedule", "adam_then_sgd", "--optimizer", "adam"],
     "--optimizer applies to the staged schedule only"),
    (["--schedule", "adam_then_sgd", "--lr-decay", "0.5"], "--lr-decay applies to the staged"),
    (["--schedule", "adam_then_sgd", "--num-stages", "2"],
     "--num-stages applies to the staged"),
    (["--switch-epochs", "1,2,3"],
     "--switch-epochs applies to the adam_then_sgd schedule only (this run uses the staged"),
    (["--model", "samplecnn", "--total-epochs", "10"],
     "--total-epochs applies to the adam_then_sgd schedule only"),
    (["--optimizer", "adam", "--momentum", "0.5"], "--momentum applies to SGD only"),
    (["--model", "multiscale", "--block", "rese"],
     "--block applies to --model samplecnn only (this run uses --model multiscale)"),
    (["--model", "transformer", "--width", "0.5"], "--width applies to --model samplecnn only"),
    (["--conv-ndim", "8"],
     "--conv-ndim applies to --model transformer only (this run uses --model samplecnn)"),
    (["--strategy", "default", "--tpu", "x"],
     "--tpu applies to --strategy auto and tpu only (this run uses --strategy default)"),
])
def test_flags_that_do_not_apply_are_errors(capsys, argv, fragment):
    code, _, err = call_main(train_cli.main, capsys, *argv)
    one_line_error(code, err, fragment)


def test_flags_that_apply_are_taken():
    config = train_cli.config_from_args(train_cli.parse_args(
        ["--schedule", "adam_then_sgd", "--momentum", "0.8", "--switch-epochs", "2,3,4",
         "--total-epochs", "6", "--model", "multiscale", "--dropout", "0.3"]))
    assert config.schedule == "adam_then_sgd" and config.momentum == 0.8
    assert tuple(config.switch_epochs) == (2, 3, 4) and config.total_epochs == 6
    assert config.model_args == {"dropout": 0.3}
    config = train_cli.config_from_args(train_cli.parse_args(
        ["--optimizer", "adam", "--lr", "0.001", "--lr-decay", "0.5", "--patience", "0"]))
    assert (config.optimizer, config.lr, config.lr_decay, config.patience) == \
        ("adam", 0.001, 0.5, 0)


def test_given_flags_are_told_from_defaults():
    args = train_cli.parse_args(["--lr", "0.01", "--no-multi", "--block", "se"])
    assert {"lr", "no_multi", "block"} <= args.given
    assert "patience" not in args.given and "data_dir" not in args.given
    assert train_cli.given_fields(args) >= {"lr", "multi", "block"}


def test_help_shows_defaults_and_the_monitor(capsys):
    code, out, _ = call_main(train_cli.main, capsys, "--help")
    assert code == 0
    text = " ".join(out.split())
    assert "improvement of the --monitor value that end a stage (default: 2)" in text
    for default in ("(default: 0.01)", "(default: 0.2)", "(default: 5)", "(default: 100)",
                    "(default: 80,100,120)", "(default: 200)", "(default: 0.9)",
                    "(default: 23)"):
        assert default in text, default
