"""train.py flags: ranges checked up front, no flag silently ignored."""

import argparse

import pytest

from tagger.commands import train as train_cli
from tests.checks import call_main, one_line_error


@pytest.mark.parametrize("argv, fragment", [
    (["--lr", "-0.1"], "argument --lr: expected a number in [1e-10, 10], got '-0.1'"),
    (["--lr", "nan"], "argument --lr: expected a number in [1e-10, 10], got 'nan'"),
    (["--lr", "0"], "argument --lr: expected a number in [1e-10, 10]"),
    (["--lr-decay", "1.5"], "argument --lr-decay: expected a number in (0, 1]"),
    (["--batch-size", "0"],
     "argument --batch-size: expected a number in [1, 2147483647], got '0'"),
    (["--num-stages", "0"], "argument --num-stages: expected a number in [1, 2147483647]"),
    (["--max-epochs-per-stage", "-1"], "argument --max-epochs-per-stage"),
    (["--total-epochs", "0"], "argument --total-epochs: expected a number in [1, "),
    (["--patience", "-2"], "argument --patience: expected a number in [0, 2147483647]"),
    (["--momentum", "inf"], "argument --momentum: expected a number in [0, 1)"),
    (["--momentum", "1"], "argument --momentum: expected a number in [0, 1), got '1'"),
    (["--width", "0"], "argument --width: expected a number in (0, 16]"),
    (["--dropout", "1.2"], "argument --dropout: expected a number in [0, 1)"),
    (["--steps-per-epoch", "0"], "argument --steps-per-epoch"),
    (["--window-segments", "0"], "argument --window-segments"),
    (["--num-read-threads", "0"], "argument --num-read-threads"),
])
def test_numbers_out_of_range_are_refused(capsys, argv, fragment):
    code, _, err = call_main(train_cli.main, capsys, *argv)
    one_line_error(code, err, fragment)


@pytest.mark.parametrize("argv, fragment", [
    # values the flags' kinds took that overflow or underflow training's arithmetic
    (["--pseudo-label-weight", "1e38"], "--pseudo-label-weight: expected a number in [0, 1000]"),
    (["--temperature", "1e-38"], "--temperature: expected a number in [0.001, 1000]"),
    (["--temperature", "1e30"], "--temperature: expected a number in [0.001, 1000]"),
    (["--lr", "1e30"], "--lr: expected a number in [1e-10, 10], got '1e30'"),
    (["--lr", "1e-300"], "--lr: expected a number in [1e-10, 10]"),
    (["--fine-tune-lr", "1e-30"], "--fine-tune-lr: expected a number in [1e-10, 10]"),
    (["--weight-decay", "1e38"], "--weight-decay: expected a number in [0, 1]"),
    (["--width", "1e30"], "--width: expected a number in (0, 16]"),
    (["--dropout", "1"], "--dropout: expected a number in [0, 1), got '1'"),
    (["--seed", "4294967296"], "--seed: expected a number in [0, 4294967295]"),
    (["--batch-size", str(2**31)], "--batch-size: expected a number in [1, 2147483647]"),
    (["--steps-per-epoch", "1" + "0" * 20], "--steps-per-epoch: expected a number in [1, "),
    (["--rounds", str(2**63)], "--rounds: expected a number in [1, 2147483647]"),
    (["--head-units", str(2**31)], "--head-units: expected a number in [0, 2147483647]"),
    (["--n-channels", "46341"], "--n-channels: expected a number in [1, 46340]"),
    (["--alpha", str(10**12)], "--alpha: expected a number in [1, 46340]"),
    (["--num-audios-per-shard", str(2**31)], "--num-audios-per-shard: expected a number"),
    # the staged schedule's last stage at a rate whose steps change no float32 weight
    (["--lr", "1e-3", "--lr-decay", "1e-5", "--num-stages", "3"],
     "--lr 0.001 x --lr-decay 1e-05^2 = 1e-13, the rate of the last of the 3 stages, "
     "is under 1e-10"),
])
def test_values_past_what_training_holds_are_refused(capsys, argv, fragment):
    code, _, err = call_main(train_cli.main, capsys, *argv)
    one_line_error(code, err, fragment)


def test_every_numeric_flag_has_a_range_said_in_the_help(capsys):
    """No numeric flag of train.py takes a value its arithmetic cannot hold:
    each has a range, which --help says."""
    from tagger.commands.train_ranges import ranged, say_ranges

    parser = train_cli.ArgumentParser()
    for add in (train_cli.add_data_flags, train_cli.add_model_flags,
                train_cli.add_optimisation_flags, train_cli.add_hardware_flags,
                train_cli.semi_supervised_flags.add_flags, train_cli.add_pretrained_flags):
        add(parser)
    say_ranges(parser)
    numeric = [a for a in parser._actions if getattr(a.type, "__name__", None) in
               ("int", "float") and a.help != argparse.SUPPRESS]  # not a former name
    assert len(numeric) >= 30
    for action in numeric:
        assert action.type.range_words in action.help, action.option_strings
    code, out, _ = call_main(train_cli.main, capsys, "--help")
    text = " ".join(out.split())
    for said in ("global mini-batch size, in [1, 2^31 - 1] (default: 23)",
                 "staged: learning rate of stage 0, in [1e-10, 10] (default: 0.01)",
                 "weight of the pseudo-label BCE, in [0, 1000] (default: 1.0)",
                 "in [0.001, 1000] (default: 1, plain BCE on the soft targets)",
                 "input order, in [0, 2^32 - 1] (default: 0)"):
        assert said in text, said
    assert ranged("lr")("10") == 10.0 and ranged("seed")("4294967295") == 2**32 - 1


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
    (["--drop-damaged-checkpoints"], "--drop-damaged-checkpoints applies with --resume or "
     "--initial-stage only (a new run has no checkpoints); leave it out or add --resume"),
    # checked on the settings the run uses: --quick's and --from's too
    (["--quick", "--momentum", "0.5"], "--momentum applies to SGD only (--quick trains with "
     "Adam unless --optimizer sgd is given); leave it out or use --optimizer sgd"),
    (["--num-stages", "1", "--lr-decay", "0.5"], "--lr-decay applies to a run of two or more "
     "stages only (this run has one stage); leave it out or give --num-stages 2 or more"),
    (["--quick", "--lr-decay", "0.5"], "(this run has one stage: --quick trains one)"),
    (["--from", "MTT_musicnn", "--lr-decay", "0.5"],
     "(this run has one stage: --from trains its head in one)"),
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


def test_one_stage_and_quick_flags_that_apply_are_taken():
    config = train_cli.config_from_args(train_cli.parse_args(
        ["--quick", "--optimizer", "sgd", "--momentum", "0.5", "--num-stages", "2",
         "--lr-decay", "0.5"]))
    assert (config.optimizer, config.momentum, config.num_stages, config.lr_decay) == \
        ("sgd", 0.5, 2, 0.5)
    config = train_cli.config_from_args(train_cli.parse_args(
        ["--from", "MTT_musicnn", "--num-stages", "3", "--lr-decay", "0.5"]))
    assert (config.num_stages, config.lr_decay) == (3, 0.5)


def write_run(folder, *argv, state=None):
    """A run folder holding the config.json of train.py `argv` (and a
    state.json of `state`), its records a missing folder."""
    import json

    from tagger.config import to_dict

    folder.mkdir(parents=True)
    config = train_cli.config_from_args(train_cli.parse_args(
        [*argv, "--data-dir", str(folder / "missing")]))
    (folder / "config.json").write_text(json.dumps(to_dict(config)))
    if state is not None:
        (folder / "state.json").write_text(json.dumps(state))


@pytest.mark.parametrize("state, fragment", [
    (None, "holds no run"), ({}, "holds no best model yet")])
def test_initial_stage_without_a_run_to_start_from_is_refused(capsys, tmp_path, state,
                                                              fragment):
    if state is not None:
        write_run(tmp_path / "run", state=state)
    for extra in ([], ["--drop-damaged-checkpoints"]):
        code, _, err = call_main(train_cli.main, capsys, "--initial-stage", "1",
                                 "--train-dir", tmp_path, "--run-name", "run",
                                 "--data-dir", tmp_path / "missing", *extra)
        if extra and state is not None:  # a run there: from the start when none is good
            one_line_error(code, err, "dataset_info.json' not found")  # past the check
            continue
        one_line_error(code, err, "--initial-stage 1 starts from the best model of an "
                       f"earlier run, and {str(tmp_path / 'run')!r} {fragment}; leave it out")


def test_initial_stage_goes_on_from_a_runs_best_model(capsys, tmp_path):
    write_run(tmp_path / "run", state={"best_checkpoint": "best-00001"})
    code, _, err = call_main(train_cli.main, capsys, "--initial-stage", "1",
                             "--train-dir", tmp_path, "--run-name", "run",
                             "--data-dir", tmp_path / "missing")
    one_line_error(code, err, "dataset_info.json' not found")  # past the check, at the data


def test_initial_stage_over_rounds_is_refused(capsys, tmp_path):
    """Each round after the first learns from the round before, which a
    restart retrains: a later round would go on from its best model on
    another teacher. Refused before anything trains, naming how to restart
    one round."""
    write_run(tmp_path / "run", state={"best_checkpoint": "best-00001"})
    code, _, err = call_main(train_cli.main, capsys, "--initial-stage", "1", "--rounds", "2",
                             "--teacher", tmp_path / "teacher.keras",
                             "--train-dir", tmp_path, "--run-name", "run",
                             "--data-dir", tmp_path / "missing")
    one_line_error(code, err, "--initial-stage restarts one run, and --rounds 2 trains 2, "
                   "each round's teacher the model of the round before, which a restart of "
                   "that round replaces; restart one round: the first with --rounds 1, a "
                   "later one as a run of its own (round 2: --run-name run-round2 --teacher "
                   f"{str(tmp_path / 'run' / 'model.keras')})")


def test_quick_resumes_only_a_quick_run(capsys, tmp_path):
    write_run(tmp_path / "plain")
    write_run(tmp_path / "quick", "--quick")
    code, _, err = call_main(train_cli.main, capsys, "--resume", "--quick",
                             "--train-dir", tmp_path, "--run-name", "plain")
    one_line_error(code, err, f"--quick sets what the run in {str(tmp_path / 'plain')!r} "
                   "was not started with (block rese where it has se; width 0.125 where it "
                   "has 1.0; ",
                   "resume with the flags it was started with, or leave --quick out")
    code, out, err = call_main(train_cli.main, capsys, "--resume", "--quick",
                               "--train-dir", tmp_path, "--run-name", "quick")
    one_line_error(code, err, "dataset_info.json' not found")  # taken: the run's own
    assert "--quick:" not in out
    write_run(tmp_path / "quick1", "--quick", "--patience", "1")  # --quick and an override
    code, _, err = call_main(train_cli.main, capsys, "--resume", "--quick",
                             "--train-dir", tmp_path, "--run-name", "quick1")
    one_line_error(code, err, "(patience ", " where it has 1)")
    code, _, err = call_main(train_cli.main, capsys, "--resume", "--quick", "--patience", "1",
                             "--train-dir", tmp_path, "--run-name", "quick1")
    one_line_error(code, err, "dataset_info.json' not found")  # the command it started with
    code, _, err = call_main(train_cli.main, capsys, "--resume", "--lr-decay", "0.2",
                             "--train-dir", tmp_path, "--run-name", "quick")
    one_line_error(code, err, "--lr-decay applies to a run of two or more stages only (the "
                   f"run in {str(tmp_path / 'quick')!r} has one stage); leave it out")
    code, _, err = call_main(train_cli.main, capsys, "--resume", "--momentum", "0.5",
                             "--train-dir", tmp_path, "--run-name", "quick")
    one_line_error(code, err, "--momentum applies to SGD only (the run in "
                   f"{str(tmp_path / 'quick')!r} trains with Adam)")


def test_given_flags_are_told_from_defaults():
    args = train_cli.parse_args(["--lr", "0.01", "--no-multi", "--block", "se"])
    assert {"lr", "no_multi", "block"} <= args.given
    assert "patience" not in args.given and "data_dir" not in args.given
    assert train_cli.given_fields(args) >= {"lr", "multi", "block"}


def test_help_shows_defaults_and_the_monitor(capsys):
    code, out, _ = call_main(train_cli.main, capsys, "--help")
    assert code == 0
    text = " ".join(out.split())
    assert ("improvement of the --monitor value that end a stage, in [0, 2^31 - 1] "
            "(default: 2)") in text
    for default in ("(default: 0.01)", "(default: 0.2)", "(default: 5)", "(default: 100)",
                    "(default: 80,100,120)", "(default: 200)", "(default: 0.9)",
                    "(default: 23)"):
        assert default in text, default
