"""The command lines of resemul (github.com/tae-jun/resemul), the
sample-level CNN code this project grew from, parse here with their meaning:
its README's usage of train.py and the commands it runs, and the flags of
the scripts it runs, kept here as data. A renamed flag keeps its old name."""

import contextlib
import io
import re
import shlex

import pytest

from tagger.commands import build_mtt, extract_excitations
from tagger.commands import eval as eval_cli
from tagger.commands import train as train_cli
from tagger.training.schedule import schedule_for

# resemul's README, "Training a model with options": `python train.py -h`
TRAIN_USAGE = """\
usage: train.py [-h] [--data-dir PATH] [--train-dir PATH]
                [--block {se,rese,res,basic}] [--no-multi] [--alpha A]
                [--batch-size N] [--momentum M] [--lr LR] [--lr-decay DC]
                [--dropout DO] [--weight-decay WD] [--initial-stage N]
                [--patience N] [--num-lr-decays N] [--num-audios-per-shard N]
                [--num-segments-per-audio N] [--num-read-threads N]"""

# the flags of the other scripts its README runs (their argparse)
SCRIPT_FLAGS = {
    "build_mtt.py": ["--data-dir", "--sample-rate", "--num-samples", "--num-audios-per-shard"],
    "eval.py": ["--data-dir"],
    "extract_excitations.py": ["--data-dir", "--out"],
}

# the commands its README runs, and each script with every flag at
# resemul's default (its data dir the records' folder, as here)
COMMAND_LINES = [
    "build_mtt.py",
    "build_mtt.py --data-dir dataset --sample-rate 22050 --num-samples 59049 "
    "--num-audios-per-shard 100",
    "train.py",
    "train.py --block res --no-multi",
    "train.py --data-dir dataset/tfrecord --train-dir log --block se --alpha 16 "
    "--batch-size 23 --momentum 0.9 --lr 0.01 --lr-decay 0.2 --dropout 0.5 "
    "--weight-decay 0 --initial-stage 0 --patience 2 --num-lr-decays 5 "
    "--num-audios-per-shard 100 --num-segments-per-audio 10 --num-read-threads 8",
    "eval.py se-multi-auc_0.9111-tfrmodel.hdf5",
    "eval.py se-multi-auc_0.9111-tfrmodel.hdf5 --data-dir dataset/tfrecord",
    "extract_excitations.py se-multi-auc_0.9111-tfrmodel.hdf5",
    "extract_excitations.py se-multi-auc_0.9111-tfrmodel.hdf5 --data-dir dataset/tfrecord "
    "--out excitations.pkl",
]

PARSERS = {"train.py": train_cli.parse_args, "eval.py": eval_cli.parse_args,
           "extract_excitations.py": extract_excitations.parse_args,
           "build_mtt.py": lambda argv: build_mtt.build_flags.parse_args("mtt", argv)}


def help_text(script: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        PARSERS[script](["--help"])
    assert done.value.code == 0
    return out.getvalue()


def seed_flags() -> list:
    """(script, flag) of every flag resemul's scripts take."""
    train = re.findall(r"\[(--[a-z-]+)", TRAIN_USAGE)
    assert len(train) == 17
    return [("train.py", flag) for flag in train] + [
        (script, flag) for script, flags in SCRIPT_FLAGS.items() for flag in flags]


@pytest.mark.parametrize("script, flag", seed_flags())
def test_every_flag_of_resemul_is_in_our_help(script, flag):
    assert re.search(rf"{re.escape(flag)}\b(?!-)", help_text(script)), f"{script} {flag}"


@pytest.mark.parametrize("line", COMMAND_LINES)
def test_resemuls_command_lines_parse(line):
    script, *argv = shlex.split(line)
    args = PARSERS[script](argv)
    if script == "train.py":
        train_cli.config_from_args(args)


def test_resemuls_train_flags_keep_their_meaning():
    """Every flag at resemul's default gives resemul's model and schedule:
    five stages of SGD from 0.01, each a fifth of the one before."""
    config = train_cli.config_from_args(train_cli.parse_args(
        shlex.split(COMMAND_LINES[4])[1:]))
    assert (config.data_dir, config.train_dir) == ("dataset/tfrecord", "log")
    assert config.model == "samplecnn" and config.model_args == {
        "block": "se", "multi": True, "alpha": 16, "width": 1.0, "dropout": 0.5,
        "weight_decay": 0.0}
    assert (config.batch_size, config.momentum, config.initial_stage, config.patience,
            config.num_read_threads, config.optimizer) == (23, 0.9, 0, 2, 8, "sgd")
    rates = [stage.learning_rate for stage in schedule_for(config)]
    assert rates == pytest.approx([0.01, 0.002, 0.0004, 0.00008, 0.000016])


@pytest.mark.parametrize("decays", [1, 2, 7])
def test_num_lr_decays_counts_the_stages_as_resemul_does(decays):
    """resemul trains `for stage in range(initial_stage, num_lr_decays)` at
    lr * lr_decay ** stage: N 'decays' are N stages, the first at --lr."""
    args = train_cli.parse_args(["--num-lr-decays", str(decays), "--lr", "0.5",
                                 "--lr-decay", "0.1"])  # resemul's line, one stage too
    config = train_cli.config_from_args(args)
    assert train_cli.seed_flag_notes(args) == ([] if decays > 1 else [
        "note: --lr-decay 0.1 does not apply to one stage (--num-lr-decays 1): its rate is "
        "--lr's"])
    assert config.num_stages == decays
    assert [stage.learning_rate for stage in schedule_for(config)] == pytest.approx(
        [0.5 * 0.1 ** k for k in range(decays)])
    assert "num_stages" in train_cli.parse_args(["--num-lr-decays", "2"]).given


def test_num_lr_decays_says_what_it_counts_in_help():
    text = " ".join(help_text("train.py").split()).replace("- ", "-")  # wrapped at hyphens
    assert "--num-lr-decays N, resemul's name for it, is the same N" in text
    assert "stage k at --lr x --lr-decay^k for k = 0..N-1" in text


def test_num_samples_is_the_segment_length():
    args = PARSERS["build_mtt.py"](["--num-samples", "3000"])
    assert args.segment_length == 3000


def test_flags_the_records_carry_are_taken_with_a_note():
    args = train_cli.parse_args(["--num-audios-per-shard", "100",
                                 "--num-segments-per-audio", "10"])
    assert train_cli.seed_flag_notes(args) == [
        "note: --num-audios-per-shard 100 is resemul's; the records carry their clips per "
        "shard (dataset_info.json; build_mtt.py --num-audios-per-shard sets it), so "
        "train.py does not use it",
        "note: --num-segments-per-audio 10 is resemul's; the records carry each clip's "
        "segments (dataset_info.json; build_mtt.py --segment-length cuts them), so "
        "train.py does not use it"]
    assert train_cli.seed_flag_notes(train_cli.parse_args([])) == []


@pytest.mark.slow  # trains a model
def test_num_lr_decays_2_trains_two_stages(raw_records, tmp_path, capsys):
    """`train.py --num-lr-decays 2`: stage 0 at --lr, stage 1 at --lr x --lr-decay."""
    import pandas as pd

    from tagger.models import family
    from tests.checks import call_main

    records, _ = raw_records
    tiny = family("samplecnn").tiny
    code, out, err = call_main(
        train_cli.main, capsys, "--data-dir", records, "--train-dir", tmp_path,
        "--block", tiny["block"], "--alpha", tiny["alpha"], "--width", tiny["width"],
        "--batch-size", 4, "--num-lr-decays", 2, "--lr", 0.01, "--lr-decay", 0.2,
        "--max-epochs-per-stage", 1, "--steps-per-epoch", 1, "--validation-steps", 1,
        "--num-segments-per-audio", 10, "--strategy", "default", "--no-test",
        "--no-progress", "--shuffle-segments", 64)
    assert code == 0, err
    assert "note: --num-segments-per-audio 10 is resemul's" in out
    history = pd.read_csv(tmp_path / "samplecnn-rese-multi" / "history.csv")
    assert list(history["stage"]) == [0, 1]
    assert list(history["lr"]) == pytest.approx([0.01, 0.002])
