"""Shared command-line plumbing of tagger/commands/: the argument parser and
its flag types, and one clear line and a non-zero exit for a user's
mistake, no traceback. The process set-up lives in tagger.runtime."""

from __future__ import annotations

import argparse
import os
import sys

from tagger.errors import UserError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def program_name() -> str:
    """The command as the user ran it: `python -m tagger.commands.synthetic`
    for a module of this package run with -m, otherwise the name of the
    script (`tagger-synthetic`, a console script; `train.py`)."""
    script = sys.argv[0] if sys.argv and sys.argv[0] else ""
    if not script:
        return "tagger"
    package = os.path.dirname(os.path.abspath(__file__))
    path = os.path.abspath(script)
    if path.startswith(package + os.sep) and path.endswith(".py"):
        module = os.path.relpath(path[:-3], os.path.dirname(package)).replace(os.sep, ".")
        return f"python -m {module.removesuffix('.__main__')}"
    return os.path.basename(script)


def main(action, args, tensorflow: bool = True, keras: bool = True) -> int:
    """The body of every CLI's main(): Keras's backend checked and set
    before Keras is imported (`tagger.backends.choose`: --backend where the
    command has it, else KERAS_BACKEND, else tensorflow; one line for a
    backend tagger does not run on); the process set up
    (`tagger.runtime.prepare_command_process`: freed host memory kept for
    reuse, TensorFlow imported quietly under the TensorFlow backend;
    `tensorflow=False` for a command that may not need it, which then
    imports it with `quiet_tensorflow` when it does; under JAX, the
    programs JAX compiles kept in the cache and, for a command computing
    with Keras run from its command line where JAX_PLATFORMS allows the
    CPU, glibc's malloc asking for huge pages for XLA's buffers and, where
    measured faster, XLA's own matrix products: `xla_cpu.start_as_a_command`);
    then `action(args)`
    with a user's mistakes and Ctrl-C as one-line exits. A command that computes
    with Keras (`keras`, unless `tensorflow=False` says it may not) is
    refused in one line where Keras would run on a TensorFlow that cannot
    be imported."""
    from tagger import backends
    from tagger.runtime import prepare_command_process

    asked = getattr(args, "backend", None)
    try:
        if tensorflow and keras:
            backends.require_tensorflow(backends.check(asked), asked)
        chosen = backends.choose(asked)
    except UserError as error:
        return _user_error(error)
    if chosen == "jax":
        from tagger.cache import keep_jax_programs
        from tagger.xla_cpu import start_as_a_command

        platforms = os.environ.get("JAX_PLATFORMS", "").lower().split(",")
        if (tensorflow and keras and getattr(args, "from_command_line", False)
                and (platforms == [""] or "cpu" in platforms)):  # may compute on the CPU
            start_as_a_command()

        keep_jax_programs()
    prepare_command_process(tensorflow=tensorflow and chosen == "tensorflow")
    return run(action, args)


def _user_error(error: UserError, prog: str | None = None) -> int:
    """A user's mistake as one line on stderr; the exit status."""
    print(f"{prog or program_name()}: error: {error}", file=sys.stderr)
    return EXIT_USER_ERROR


def add_backend_flag(parser) -> None:
    """--backend: the Keras backend the command computes on."""
    from tagger.backends import BACKENDS

    parser.add_argument("--backend", choices=BACKENDS, default=None,
                        help="Keras's backend: tensorflow, or jax for GPUs and TPUs "
                             "without TensorFlow (docs/jax.md) (default: KERAS_BACKEND, "
                             "else tensorflow)")


def run(action, args=None) -> int:
    """Calls `action(args)`; turns UserError and Ctrl-C into one-line exits."""
    prog = program_name()
    try:
        return action(args) or 0
    except UserError as error:
        return _user_error(error, prog)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader of our output went away (e.g. `| head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def progress_wanted(no_progress: bool = False) -> bool:
    """Whether to draw progress bars: not when asked for none, and not when
    stderr is not a terminal (a log file or a pipe would collect every
    redraw)."""
    if no_progress:
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stderr
        return False


class HelpFormatter(argparse.HelpFormatter):
    """Every option that takes a value shows its default in --help, unless
    its help already says what the default is (or it has none: then the
    help says what happens without it). argparse's one hook for a help
    text, the method its own ArgumentDefaultsHelpFormatter overrides, is
    private (checked with Python 3.11; tests/test_cli_conventions.py's
    test_help_shows_every_default fails if it changes)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (not action.option_strings or action.nargs == 0
                or action.default in (None, argparse.SUPPRESS) or "default" in text.lower()):
            return text
        return f"{text} (default: %(default)s)" if text else "default: %(default)s"


_PATH_WORDS = ("dir", "path", "out", "json", "csv", "file")


def _conventional(names, kwargs) -> dict:
    """An option's add_argument settings with the conventions filled in: a
    help stating the default where none was written, metavar `N` for an
    integer and `PATH` for a path-named option when none was given."""
    kwargs = dict(kwargs)
    option = bool(names) and names[0].startswith("-")
    takes_value = kwargs.get("action") in (None, "store", "append")
    if option and takes_value and "help" not in kwargs and kwargs.get("default") is not None:
        kwargs["help"] = "default: %(default)s"
    if (option and takes_value and "metavar" not in kwargs
            and kwargs.get("choices") is None and names[0].startswith("--")):
        kind = kwargs.get("type")
        if kind is int or getattr(kind, "__name__", None) == "int":
            kwargs["metavar"] = "N"
        elif kind in (None, str) and set(names[0][2:].split("-")) & set(_PATH_WORDS):
            kwargs["metavar"] = "PATH"
    return kwargs


def _add_option(add, names, kwargs):
    """`add(*names, **kwargs)` with the conventions (`_conventional`). A
    renamed option's `former=(old, ...)` names parse as it does (an error
    names the flag as typed); --help shows the option once, its help naming
    them (the words are added where it does not)."""
    kwargs = dict(kwargs)
    former = tuple(kwargs.pop("former", ()))
    text = kwargs.get("help", "")
    if former and not all(name in text for name in former):
        kwargs["help"] = (f"{text} " if text else "") + (
            f"({', '.join(former)}: its former name{'s' if len(former) > 1 else ''}, "
            "still accepted)")
    kwargs = _conventional(names, kwargs)
    action = add(*names, **kwargs)
    action.former_names = former
    for name in former:
        add(name, **{**kwargs, "dest": action.dest, "default": argparse.SUPPRESS,
                     "help": argparse.SUPPRESS})
    return action


def _names_given(tokens, names) -> list:
    """Which of `names` (option strings) the command-line `tokens` give,
    as `--name value` or `--name=value`, in their order."""
    given = []
    for token in tokens:
        if token == "--":
            break
        name = token.partition("=")[0]
        if name in names and name not in given:
            given.append(name)
    return given


UNRECOGNIZED = "unrecognized arguments: "  # argparse's error for what no option reads


class ArgumentParser(argparse.ArgumentParser):
    """The parser of every CLI here: named as the user ran it
    (`program_name`); a one-line error (no usage dump; an unknown option
    answered with the nearest known ones) and exit code 2;
    --help shows every default (HelpFormatter); a renamed option keeps its
    old name (`add_argument(new, former=(old,), ...)`); options that
    take a value without a stated metavar read `N` (integers) or `PATH`
    (paths, by name); after parsing, `args.given` holds the destinations
    of the flags the command line set (`given_flags`: as typed),
    `args.from_command_line` whether they came from the process's own
    (`sys.argv`: the process is the command, not a caller of it), and
    `no_progress` is set when stderr is not a terminal (`progress_wanted`)."""

    def __init__(self, *args, **kwargs):
        if not args:
            kwargs.setdefault("prog", program_name())
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def add_argument(self, *names, **kwargs):
        return _add_option(super().add_argument, names, kwargs)

    def add_argument_group(self, *args, **kwargs):
        group = super().add_argument_group(*args, **kwargs)
        plain = group.add_argument
        group.add_argument = lambda *names, **kw: _add_option(plain, names, kw)
        return group

    def parse_known_args(self, args=None, namespace=None):
        tokens = sys.argv[1:] if args is None else list(args)
        parsed, extras = super().parse_known_args(tokens, namespace)
        self._refuse_both_names(tokens)
        parsed.given = self._given(tokens)
        parsed.former_names = frozenset(_names_given(tokens, [  # renamed options, as typed
            name for action in parser_actions(self)
            for name in getattr(action, "former_names", ())]))
        parsed.from_command_line = args is None
        if getattr(parsed, "no_progress", True) is False and not progress_wanted():
            parsed.no_progress = True
        return parsed, extras

    def _given(self, tokens) -> frozenset:
        """The destinations of the flags the command line `tokens` set (a
        flag given at its default value too): `tokens` parsed again into a
        namespace holding every destination already, where argparse fills
        in no default."""
        unset = object()
        # flags that add to their value (append, count) start from None
        start = {action.dest: None if adds_to_its_value(action) else unset
                 for action in parser_actions(self) if action.dest != argparse.SUPPRESS}
        probe = argparse.Namespace(**start)
        super().parse_known_args(tokens, probe)
        return frozenset(dest for dest, value in start.items()
                         if getattr(probe, dest) is not value)

    def _refuse_both_names(self, tokens):
        """A renamed option given under its name and a former one is an
        error: which value was meant cannot be told."""
        tokens = [self._spelled_out(token) for token in tokens]
        for action in parser_actions(self):
            former = getattr(action, "former_names", ())
            given = _names_given(tokens, (*action.option_strings, *former)) if former else []
            if len(given) > 1:
                self.error(f"{' and '.join(given)} name one setting "
                           f"({action.option_strings[-1]} is its name now); give it once")

    def _spelled_out(self, token: str) -> str:
        """`token` with a long option abbreviated as argparse takes it
        (`--num-lr 2`: the one option that begins so) written in full."""
        name, equals, value = token.partition("=")
        known = [option for action in parser_actions(self) for option in action.option_strings]
        if not (self.allow_abbrev and name.startswith("--")) or name in known:
            return token
        matches = [option for option in known if option.startswith(name)]
        return matches[0] + equals + value if len(matches) == 1 else token

    def error(self, message):
        if message.startswith(UNRECOGNIZED):
            message += self._near_options(message[len(UNRECOGNIZED):].split())
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see --help)\n")

    def _near_options(self, tokens) -> str:
        """'; did you mean --batch-size?' for the options of the parser
        nearest the unknown long options among `tokens` (`--batchsize`,
        `--data_dir`, `--epochs`: one spelt otherwise or holding its word),
        or ''."""
        import difflib

        known = [option for action in parser_actions(self) for option in action.option_strings
                 if option.startswith("--")]
        near = []
        for token in tokens:
            name = token.partition("=")[0].replace("_", "-")
            if not name.startswith("--") or len(name) < 4:
                continue
            if name in known:  # spelt with underscores
                near.append(name)
                continue
            near += [option for option in known if name[2:] in option[2:].split("-")]
            near += difflib.get_close_matches(name, known, n=2, cutoff=0.75)
        near = list(dict.fromkeys(near))[:3]
        return f"; did you mean {' or '.join(near)}?" if near else ""


# argparse lists a parser's options, and tells the kinds of option, only by
# private names: `parser_actions` and `adds_to_its_value` alone read them
# (checked with Python 3.11's argparse; tests/test_cli_conventions.py fails
# if they change).
def parser_actions(parser) -> list:
    """Every option and argument of `parser` (argparse's actions), in the
    order they were added, --help's first."""
    return list(parser._actions)


def adds_to_its_value(action) -> bool:
    """Whether `action` adds to the value it finds (append, append_const,
    count, extend) rather than setting it."""
    return isinstance(action, (argparse._AppendAction, argparse._AppendConstAction,
                               argparse._CountAction, argparse._ExtendAction))


def given_flags(args, names) -> list:
    """The flags of `names` (destinations) the command line set, as typed
    (`--top-k`): those in `args.given` (every parse of `ArgumentParser`
    sets it; none for a namespace made otherwise)."""
    given = getattr(args, "given", frozenset())
    return [f"--{name.replace('_', '-')}" for name in names if name in given]


def format_of_out(args, suffixes: dict) -> str | None:
    """Where --format was not given, `args.format` from `args.out`'s suffix
    (`suffixes`: {'.csv': 'csv'}; another suffix keeps the default), so
    `--out tags.parquet` writes Parquet; a --format given is kept, as it
    always was. Returns that suffix (lower case) where --format was not
    given and --out has one, else None."""
    if "format" in getattr(args, "given", ()) or not args.out:
        return None
    suffix = os.path.splitext(args.out)[1].lower()
    args.format = suffixes.get(suffix, args.format)
    return suffix or None


def non_empty(what: str):
    """argparse type of a text that names something (`what`: 'a model
    file'): any text but an empty or blank one, which an unset shell
    variable gives (`--from "$MODEL"`)."""

    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(
                f"expected {what}, got {text!r} (an unset shell variable?); name one")
        return text

    return parse


# a model a command reads: a pretrained name or a saved model's path
model_name_or_path = non_empty("a pretrained name or a model file")


def comma_list(text: str) -> tuple:
    """argparse type: 'a, b,c' -> ('a', 'b', 'c')."""
    return tuple(v.strip() for v in text.split(",") if v.strip())


def comma_ints(text: str) -> tuple:
    """argparse type: '0,4,8' -> (0, 4, 8)."""
    try:
        return tuple(int(v) for v in comma_list(text))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}") from None


def number_in_range(kind, low=None, high=None, *, low_open=False, high_open=False,
                    allow_none=False):
    """argparse type for a finite int/float within [low, high] (`low_open`,
    `high_open`: that end itself excluded); the message states the valid
    range. `allow_none` accepts 'none' as None."""
    import math

    def describe() -> str:
        if low is not None and high is not None:
            return (f"a number in {'(' if low_open else '['}{low}, "
                    f"{high}{')' if high_open else ']'}")
        if low is not None:
            return f"a number {'>' if low_open else '>='} {low}"
        return f"a number {'<' if high_open else '<='} {high}"

    def parse(text: str):
        if allow_none and text.strip().lower() == "none":
            return None
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'an integer' if kind is int else 'a number'}, "
                f"got {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected {describe()}, got {text!r}")
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high:
            raise argparse.ArgumentTypeError(f"expected {describe()}, got {text!r}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


positive_int = number_in_range(int, 1)
non_negative_int = number_in_range(int, 0)
positive_float = number_in_range(float, 0, low_open=True)
non_negative_float = number_in_range(float, 0)
fraction = number_in_range(float, 0, 1)
