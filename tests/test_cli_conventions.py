"""Conventions shared by every command-line tool: --help shows every
default, one spelling of --no-progress, progress bars only on a terminal."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import re
import sys

import pytest

from tagger import cli
from tagger.cli import adds_to_its_value, parser_actions
from tests.checks import HANG_S, command_modules, one_line_error

# every CLI of the project: the modules of tagger/commands with a main
CLIS = command_modules()
# the commands that draw no progress bar
NO_BAR = ("export", "convert_weights", "library", "similar")


def test_every_console_script_is_checked():
    """A command added to pyproject.toml is one these tests cover."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    import pathlib

    root = pathlib.Path(__file__).parents[1]
    scripts = tomllib.loads((root / "pyproject.toml").read_text())["project"]["scripts"]
    assert sorted({target.split(":")[0] for target in scripts.values()}) == sorted(CLIS)


class _Caught(Exception):
    def __init__(self, parser):
        self.parser = parser


def parser_of(name, monkeypatch):
    """The ArgumentParser the CLI builds, caught as it starts parsing."""
    module = importlib.import_module(name)

    def catch(self, args=None, namespace=None):
        raise _Caught(self)

    monkeypatch.setattr(cli.ArgumentParser, "parse_known_args", catch)
    entry = getattr(module, "parse_args", None) or module.main
    with pytest.raises(_Caught) as caught:
        entry([])
    monkeypatch.undo()
    return caught.value.parser


def test_a_parsers_actions_and_the_options_that_add_to_their_value():
    """What tagger.cli reads of argparse beyond its public API: the list of
    a parser's actions (--help's first, in the order added, those of its
    groups too) and the kinds of action that add to their value."""
    parser = cli.ArgumentParser(prog="probe")
    added = [parser.add_argument("--store", default=1, help="a value (default: %(default)s)"),
             parser.add_argument("--flag", action="store_true", help="a flag"),
             parser.add_argument_group("group").add_argument("--many", action="append",
                                                              help="each (default: none)"),
             parser.add_argument("-v", action="count", help="louder (default: 0)"),
             parser.add_argument("--more", action="extend", nargs="+", help="(default: none)"),
             parser.add_argument("--tag", action="append_const", const="x", help="(none)")]
    actions = parser_actions(parser)
    assert actions[0].option_strings == ["-h", "--help"] and actions[1:] == added
    assert [adds_to_its_value(action) for action in added] == [False, False, True, True, True,
                                                                True]
    args = parser.parse_args(["--many", "a", "-vv", "--sto", "2"])
    assert args.given == {"many", "v", "store"} and args.store == "2"


def help_entries(text: str) -> dict:
    """{option string: its entry in --help's text, the lines of its help
    joined} for every option --help lists (not a group's description that
    begins with an option's name)."""
    entries, current = {}, None
    for line in text.splitlines():
        stripped = line.strip()
        names = stripped.split("  ")[0].split(", ")
        if line.startswith("  -") and all(map(is_invocation, names)):
            current = [stripped]  # an option's first line: its names, maybe its help
            for name in names:
                entries.setdefault(name.split()[0], current)
        elif current is not None and line.startswith("      ") and stripped:
            current.append(stripped)
        else:
            current = None
    return {name: " ".join(lines) for name, lines in entries.items()}


def is_invocation(text: str) -> bool:
    """Whether `text` is an option as --help lists it (`--out PATH`,
    `--format {table,json}`, `-v`), not prose that begins with one."""
    option, _, metavars = text.partition(" ")
    return (re.fullmatch(r"--?[\w-]+", option) is not None
            and not re.search(r"[a-z]{2,}", re.sub(r"\{[^}]*\}", "", metavars)))


@pytest.mark.parametrize("name", CLIS)
def test_help_shows_every_default(name, monkeypatch):
    parser = parser_of(name, monkeypatch)
    entries = help_entries(parser.format_help())
    lacking = []
    for action in parser_actions(parser):
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        if action.nargs == 0 or action.required:
            continue  # a flag (--help, off unless given) or a required option (no default)
        if "default" not in entries[action.option_strings[0]].lower():
            lacking.append(action.option_strings[0])
    assert lacking == [], f"{name}: options whose --help states no default: {lacking}"
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        parser.parse_args(["--help"])
    assert done.value.code == 0 and "default" in out.getvalue()
    assert "--quiet" not in out.getvalue()  # one spelling: --no-progress


@pytest.mark.parametrize("name", CLIS)
def test_progress_flag_is_spelled_no_progress(name, monkeypatch):
    """A CLI with a progress bar shows one switch for it, --no-progress, that
    sets `no_progress`; no other spelling is shown (synthetic keeps --quiet
    hidden); a CLI without a bar has none."""
    parser = parser_of(name, monkeypatch)
    actions = [a for a in parser_actions(parser)
               if any("progress" in s or s == "--quiet" for s in a.option_strings)]
    shown = sorted(s for a in actions if a.help != argparse.SUPPRESS for s in a.option_strings)
    hidden = sorted(s for a in actions if a.help == argparse.SUPPRESS for s in a.option_strings)
    has_bar = name.rsplit(".", 1)[-1] not in NO_BAR
    assert shown == (["--no-progress"] if has_bar else [])
    assert hidden == (["--quiet"] if name == "tagger.commands.synthetic" else [])
    assert all(a.nargs == 0 and (a.default, a.const) == (False, True)  # store_true
               and a.dest == "no_progress" for a in actions)


@pytest.mark.parametrize("name, argv", [
    ("tagger.commands.library", ["info", "--db", "/nonexistent/library.sqlite"]),
    ("tagger.commands.similar", ["--tags", "rock", "--db", "/nonexistent/library.sqlite"])])
def test_database_commands_set_their_process_up_as_every_command(name, argv, monkeypatch,
                                                                 capsys):
    """tagger-library and tagger-similar go through cli.main's process
    set-up (freed heap kept, TensorFlow's pooling allocator); they ask it
    not to import TensorFlow, which they need only to tag a query file."""
    from tagger import runtime

    calls = []
    monkeypatch.setattr(runtime, "prepare_command_process",
                        lambda **kwargs: calls.append(kwargs))
    code = importlib.import_module(name).main(argv)
    assert calls == [{"tensorflow": False}]
    assert code == cli.EXIT_USER_ERROR and "not found" in capsys.readouterr().err


@pytest.mark.parametrize("name", CLIS)
@pytest.mark.parametrize("backend", ["torch", "JAX"])
def test_every_command_refuses_a_backend_tagger_does_not_run_on(name, backend, monkeypatch,
                                                                 capsys, tmp_path):
    """KERAS_BACKEND naming a backend tagger does not run on (JAX in
    capitals: Keras knows it in lower case only): one line, before any work
    (tests/test_without_tensorflow.py: before Keras is imported)."""
    from tests.checks import argv_that_parses, call_main

    monkeypatch.setenv("KERAS_BACKEND", backend)
    main = importlib.import_module(name).main
    code, out, err = call_main(main, capsys, *argv_that_parses(name.rpartition(".")[2],
                                                               tmp_path / "unused"))
    one_line_error(code, err, f"KERAS_BACKEND {backend!r} is not a Keras backend tagger runs "
                   "on; valid: tensorflow, jax, in lower case as Keras reads them")
    assert out == "" and not (tmp_path / "unused").exists()


@pytest.mark.slow  # starts a process
def test_the_set_up_without_tensorflow_imports_none_and_pools_its_memory():
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "TF_CPU_ALLOCATOR_USE_BFC"}
    code = ("import os, sys\n"
            "from tagger.runtime import prepare_command_process\n"
            "prepare_command_process(tensorflow=False)\n"
            "print('tensorflow' in sys.modules, os.environ['TF_CPU_ALLOCATOR_USE_BFC'])\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True, timeout=HANG_S)
    assert out.stdout.split() == ["False", "true"]


def test_a_log_handler_made_while_native_stderr_is_hidden_writes_where_stderr_did(
        monkeypatch, capfd):
    """absl's first log call adds a handler on `sys.stderr` (basicConfig):
    one made while native output is hidden writes where stderr wrote after,
    not to the stand-in the block closed (a "--- Logging error ---")."""
    import logging
    import os

    from tagger.runtime import native_stderr_silenced

    stderr = os.fdopen(2, "w", closefd=False)  # Python's stderr on file descriptor 2
    monkeypatch.setattr(sys, "stderr", stderr)
    logger = logging.getLogger("tagger.tests.hidden_stderr")
    monkeypatch.setattr(logger, "propagate", False)
    with native_stderr_silenced():
        os.write(2, b"native\n")  # hidden
        handler = logging.StreamHandler()  # on sys.stderr, as basicConfig makes it
        logger.addHandler(handler)
    try:
        logger.warning("after")
        stderr.flush()
    finally:
        logger.removeHandler(handler)
    assert capfd.readouterr().err == "after\n"


def test_synthetic_keeps_quiet_as_a_hidden_alias(monkeypatch):
    parser = parser_of("tagger.commands.synthetic", monkeypatch)
    with contextlib.redirect_stderr(io.StringIO()):
        assert parser.parse_args(["out", "--quiet"]).no_progress is True


def test_progress_bars_only_on_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    parser = cli.ArgumentParser()
    parser.add_argument("--no-progress", action="store_true")
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a pipe or a log file
    assert cli.progress_wanted() is False
    assert parser.parse_args([]).no_progress is True
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert cli.progress_wanted() is True and cli.progress_wanted(no_progress=True) is False
    assert parser.parse_args([]).no_progress is False
    assert parser.parse_args(["--no-progress"]).no_progress is True


def test_value_options_read_n_or_path():
    parser = cli.ArgumentParser()
    parser.add_argument("--count", type=int, default=3)
    parser.add_argument("--size", type=cli.positive_int, default=3)
    parser.add_argument("--out-dir", default="x")
    parser.add_argument("--mode", choices=["a", "b"], default="a")
    parser.add_argument("--label", metavar="TEXT", default="x")
    parser.add_argument("--timeout", default="none")  # "out" inside a word: not a path
    usage = parser.format_help()
    for expected in ("--count N", "--size N", "--out-dir PATH", "--mode {a,b}",
                     "--label TEXT", "--timeout TIMEOUT"):
        assert expected in usage
    assert " ".join(usage.split()).count("default: 3") == 2  # --count, --size
    assert "--out-dir PATH default: x" in " ".join(usage.split())


# (module, its console script in pyproject.toml): modules users also run with -m
SCRIPTS = [("tagger.commands.synthetic", "tagger-synthetic"),
           ("tagger.commands.synthetic_msd", "tagger-synthetic-msd"),
           ("tagger.commands.attention", "tagger-attention")]


@pytest.mark.parametrize("name, script", SCRIPTS)
def test_usage_names_the_command_as_it_was_run(name, script, monkeypatch):
    module = importlib.import_module(name)
    monkeypatch.setattr(sys, "argv", [f"/opt/venv/bin/{script}"])
    assert parser_of(name, monkeypatch).prog == script
    monkeypatch.setattr(sys, "argv", [module.__file__])  # what `python -m` sets
    assert parser_of(name, monkeypatch).prog == f"python -m {name}"
    monkeypatch.setattr(sys, "argv", ["/work/train.py"])
    assert cli.program_name() == "train.py"


@pytest.mark.slow
def test_usage_of_a_real_module_run_and_console_script(tmp_path):
    import os
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    module = subprocess.run([sys.executable, "-m", "tagger.commands.synthetic", "--help"],
                            cwd=root, capture_output=True, text=True, timeout=HANG_S)
    assert module.stdout.startswith("usage: python -m tagger.commands.synthetic "), module
    # a console script as pip writes it: a file named after the command
    script = tmp_path / "tagger-synthetic"
    script.write_text("import sys\nfrom tagger.commands.synthetic import main\n"
                      "if __name__ == '__main__':\n    sys.exit(main())\n")
    run = subprocess.run([sys.executable, str(script), str(tmp_path / "out"), "--workers", "0"],
                         cwd=root, capture_output=True, text=True, timeout=HANG_S,
                         env={**os.environ, "PYTHONPATH": root})
    assert run.returncode == 2 and run.stderr.startswith(
        "tagger-synthetic: error: argument --workers: expected a number in [1, 256]"), run.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("module, expected", [
    ("tagger.datasets.synthetic", "run python -m tagger.commands.synthetic"),
    ("tagger.records.writer",
     "the commands are listed in README.md (python -m tagger.commands.NAME)")])
def test_a_library_module_run_as_a_command_names_the_command(module, expected, tmp_path):
    """`python -m` on a module that is not a command exits 2 with one line,
    having done nothing, instead of exiting 0 silently."""
    import os
    import subprocess

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-m", module, str(tmp_path / "out")], cwd=root,
                          capture_output=True, text=True, timeout=HANG_S)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == f"{module} is not a command: {expected}\n"
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
@pytest.mark.parametrize("setting, expected", [(None, "true"), ("false", "false")])
def test_commands_pool_tensorflow_host_memory_unless_told_not_to(setting, expected):
    """Every command runs TensorFlow with its pooling CPU allocator (set
    before TensorFlow's first tensor); an explicit setting is kept."""
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "TF_CPU_ALLOCATOR_USE_BFC"}
    if setting is not None:
        env["TF_CPU_ALLOCATOR_USE_BFC"] = setting
    code = ("import os, sys\n"
            "from tagger import cli\n"
            "cli.main(lambda args: print(os.environ['TF_CPU_ALLOCATOR_USE_BFC']), None)\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == expected


def test_given_flags_include_those_that_add_to_their_value():
    parser = cli.ArgumentParser(prog="x")
    parser.add_argument("--option", action="append", default=[])
    parser.add_argument("--verbose", action="count", default=0)
    parser.add_argument("--level", type=int, default=3)
    args = parser.parse_args(["--option", "a=1", "--option", "b=2", "--verbose"])
    assert args.option == ["a=1", "b=2"] and args.verbose == 1 and args.level == 3
    assert args.given == {"option", "verbose"}
    assert parser.parse_args([]).given == frozenset()


def test_given_flags_are_those_the_command_line_set_not_those_with_a_value():
    """One record of the flags given (`args.given`, set by every parse):
    a flag at its default is not given, one typed at its default is."""
    parser = cli.ArgumentParser(prog="x")
    parser.add_argument("--level", type=int, default=3)
    parser.add_argument("--name", default=None)
    parser.add_argument("--quick", action="store_true")
    assert cli.given_flags(parser.parse_args([]), ["level", "name", "quick"]) == []
    assert cli.given_flags(parser.parse_args(["--level", "3", "--quick"]),
                           ["level", "name", "quick"]) == ["--level", "--quick"]
    args, extras = parser.parse_known_args(["--name", "a", "rest"])
    assert (args.given, extras) == ({"name"}, ["rest"])


@pytest.mark.parametrize("name, argv, argument", [
    ("tagger.commands.train", ["--from", ""], "--from"),
    ("tagger.commands.train", ["--teacher", ""], "--teacher"),
    ("tagger.commands.train", ["--distil", "MTT_vgg", "--distil", " "], "--distil"),
    ("tagger.commands.eval", [""], "MODEL"),
    ("tagger.commands.eval", ["MTT_vgg", "--against", ""], "--against"),
    ("tagger.commands.tag", ["", "song.mp3"], "MODEL"),
    ("tagger.commands.export", [""], "MODEL"),
    ("tagger.commands.extract_excitations", [""], "MODEL"),
    ("tagger.commands.attention", [""], "MODEL"),
    ("tagger.commands.serve", [""], "MODEL"),
    ("tagger.commands.serve", ["--model", ""], "--model"),
    ("tagger.commands.demo", ["--own-tags", "--from", ""], "--from"),
    ("tagger.commands.demo", ["--distil", "--teacher", ""], "--teacher"),
    ("tagger.commands.convert_weights", ["", "--from", "resemul", "--out", "m.keras"],
     "SOURCE"),
    ("tagger.commands.pretrained", ["download", "MTT_vgg", "--weights", ""], "--weights"),
])
def test_an_empty_model_is_refused_in_one_line(name, argv, argument, capsys):
    """An unset shell variable (`--from "$MODEL"`) names no model: refused as
    the flags are read, before anything starts (an empty --from once trained
    a model from scratch)."""
    from tests.checks import one_line_error

    with pytest.raises(SystemExit) as done:
        importlib.import_module(name).parse_args(argv)
    one_line_error(done.value.code, capsys.readouterr().err,
                   f"argument {argument}: expected ", "(an unset shell variable?)")


def test_a_renamed_option_keeps_its_former_name(capsys):
    parser = cli.ArgumentParser(prog="tool")
    parser.add_argument("--num-stages", type=int, default=5, former=("--num-lr-decays",),
                        help="stages")
    group = parser.add_argument_group("more")
    group.add_argument("--segment-length", type=int, default=9, former=("--num-samples",),
                       help="samples per segment; --num-samples is the same")
    args = parser.parse_args(["--num-lr-decays", "2", "--num-samples", "3"])
    assert (args.num_stages, args.segment_length) == (2, 3)
    assert args.given == {"num_stages", "segment_length"}
    text = " ".join(parser.format_help().split())
    assert "--num-stages N stages (--num-lr-decays: its former name, still accepted) " \
           "(default: 5)" in text
    assert "samples per segment; --num-samples is the same (default: 9)" in text
    assert "[--num-lr-decays" not in text and "--num-samples N" not in text  # shown once
    with pytest.raises(SystemExit):  # an error names the flag as typed
        parser.parse_args(["--num-lr-decays", "x"])
    assert "tool: error: argument --num-lr-decays: invalid int value: 'x'" in \
        capsys.readouterr().err


@pytest.mark.parametrize("tokens, named", [
    (["--num-lr-decays", "2", "--num-stages", "3"], "--num-lr-decays and --num-stages"),
    (["--num-stages=3", "--num-lr-decays=2"], "--num-stages and --num-lr-decays"),
    (["--num-lr", "2", "--num-st=3"], "--num-lr-decays and --num-stages")])  # abbreviated
def test_a_renamed_option_given_under_both_names_is_refused(capsys, tokens, named):
    parser = cli.ArgumentParser(prog="tool")
    parser.add_argument("--num-stages", type=int, default=5, former=("--num-lr-decays",))
    assert parser.parse_args(["--num-stages", "2", "--num-stages", "4"]).num_stages == 4
    with pytest.raises(SystemExit) as done:
        parser.parse_args(tokens)
    one_line_error(done.value.code, capsys.readouterr().err,
                   f"tool: error: {named} name one setting "
                   "(--num-stages is its name now); give it once")


def test_flags_from_the_process_s_own_command_line_say_so(monkeypatch):
    """Only a process's own command line (`sys.argv`) may start it again
    (`host_memory.restart_with_huge_pages`): a caller's list may not."""
    from tagger.cli import ArgumentParser

    parser = ArgumentParser()
    parser.add_argument("--n", type=int, default=1)
    monkeypatch.setattr(sys, "argv", ["prog", "--n", "2"])
    own = parser.parse_args()
    assert (own.n, own.from_command_line) == (2, True)
    given = parser.parse_args(["--n", "3"])
    assert (given.n, given.from_command_line) == (3, False)


@pytest.mark.parametrize("name, argv, expected", [
    ("tagger.commands.export", ["m.keras", "--out", "m.tflite"], "tflite"),
    ("tagger.commands.export", ["m.keras", "--out", "M.TFLITE"], "tflite"),
    ("tagger.commands.export", ["m.keras", "--out", "exported"], "saved_model"),
    ("tagger.commands.export", ["m.keras"], "saved_model"),
    ("tagger.commands.tag", ["m.keras", "a.mp3", "--out", "r.json"], "json"),
    ("tagger.commands.tag", ["m.keras", "a.mp3", "--out", "r.csv"], "csv"),
    ("tagger.commands.tag", ["m.keras", "a.mp3", "--out", "r.txt"], "table"),
    ("tagger.commands.tag", ["m.keras", "a.mp3", "--out", "r.json", "--format", "json"], "json"),
    # a Beam pipeline writes what its --out's suffix says and takes no --format
    ("tagger.commands.tag", ["m.keras", "a.mp3", "--runner", "DirectRunner", "--out", "r.csv"],
     "table"),
    ("tagger.commands.library", ["export", "--db", "l.sqlite", "--out", "t.parquet"], "parquet"),
    ("tagger.commands.library", ["export", "--db", "l.sqlite", "--out", "t.jsonl"], "jsonl"),
    ("tagger.commands.library", ["failures", "--db", "l.sqlite", "--out", "t.jsonl"], "jsonl"),
    ("tagger.commands.library", ["export", "--db", "l.sqlite", "--out", "t.tsv"], "csv"),
    ("tagger.commands.library", ["export", "--db", "l.sqlite"], "csv"),
])
def test_an_outputs_suffix_chooses_its_format_unless_format_is_given(name, argv, expected):
    """`--out tags.parquet` writes Parquet, `--out m.tflite` a TFLite file:
    not CSV into a .parquet file, or a SavedModel folder named m.tflite."""
    assert importlib.import_module(name).parse_args(argv).format == expected


@pytest.mark.parametrize("name, argv, expected", [
    ("tagger.commands.export", ["m.keras", "--format", "saved_model", "--out", "m.tflite"],
     "saved_model"),
    ("tagger.commands.tag", ["m.keras", "a.mp3", "--format", "table", "--out", "r.json"],
     "table"),
    ("tagger.commands.tag", ["m.keras", "a.mp3", "--format", "json", "--out", "r.jsonl"], "json"),
    ("tagger.commands.library", ["export", "--db", "l.sqlite", "--format", "csv", "--out",
                                 "t.parquet"], "csv"),
])
def test_a_format_given_is_kept_whatever_the_outputs_suffix(name, argv, expected):
    """A command line that names its format does what it did before the
    suffix rule, whatever --out is called."""
    assert importlib.import_module(name).parse_args(argv).format == expected


@pytest.mark.parametrize("name, argv, said", [
    ("tagger.commands.train", ["--batchsize", "4"], "--batchsize 4; did you mean --batch-size?"),
    ("tagger.commands.train", ["--data_dir", "r"], "--data_dir r; did you mean --data-dir?"),
    ("tagger.commands.train", ["--mdoel", "fcn"], "--mdoel fcn; did you mean --model?"),
    ("tagger.commands.train", ["--epochs=3"],
     "--epochs=3; did you mean --max-epochs-per-stage or --switch-epochs or --total-epochs?"),
    ("tagger.commands.tag", ["m.keras", "a.mp3", "--top_k", "3"], "did you mean --top-k?"),
    ("tagger.commands.train", ["--foo", "x"], "unrecognized arguments: --foo x (see --help)"),
])
def test_an_unknown_option_is_answered_with_the_nearest_ones(name, argv, said, capsys):
    """A misspelt or guessed option names the options it may have meant."""
    with pytest.raises(SystemExit) as done:
        importlib.import_module(name).parse_args(argv)
    one_line_error(done.value.code, capsys.readouterr().err, said)


@pytest.mark.parametrize("out", ["tags.jsonl", "tags.parquet"])
def test_tag_refuses_a_beam_pipelines_output_without_one(out, capsys):
    """JSON lines and Parquet are what tag.py writes on a Beam pipeline:
    without --runner it would have written its table into the file."""
    from tagger.commands import tag

    assert tag.parse_args(["m.keras", "a.mp3", "--runner", "direct", "--out", out]).out == out
    with pytest.raises(SystemExit) as done:
        tag.parse_args(["m.keras", "a.mp3", "--out", out])
    one_line_error(done.value.code, capsys.readouterr().err, f"--out '{out}': tag.py writes",
                   "(--runner direct)", "tagger-library export")
