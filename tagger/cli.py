"""Shared command-line plumbing: one clear line and a non-zero exit for a
user's mistake, no traceback."""

from __future__ import annotations

import argparse
import os
import sys

from tagger.errors import UserError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def quiet_tensorflow() -> None:
    """Imports TensorFlow with its C++ start-up chatter hidden (it logs to
    stderr before its log level applies) unless TF_CPP_MIN_LOG_LEVEL=0 asks
    for every message."""
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        import tensorflow  # noqa: F401
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    import absl.logging
    absl.logging.set_verbosity(absl.logging.ERROR)


def main(action, args) -> int:
    """The body of every CLI's main(): imports TensorFlow quietly, then
    `action(args)` with a user's mistakes and Ctrl-C as one-line exits."""
    quiet_tensorflow()
    return run(action, args)


def run(action, args=None) -> int:
    """Calls `action(args)`; turns UserError and Ctrl-C into one-line exits."""
    prog = os.path.basename(sys.argv[0])
    try:
        return action(args) or 0
    except UserError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader of our output went away (e.g. `| head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


class ArgumentParser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump) and exit code 2."""

    def error(self, message):
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see --help)\n")

    def parse_args_given(self, argv=None):
        """`parse_args`, plus `args.given`: the destinations of the flags the
        command line actually set (defaults stay visible in --help, yet a
        flag the user gave can be told from one left at its default)."""
        args = self.parse_args(argv)
        unset = object()
        probe = argparse.Namespace(**{action.dest: unset for action in self._actions
                                      if action.dest != argparse.SUPPRESS})
        self.parse_args(argv, probe)  # argparse fills no default into a set attribute
        args.given = frozenset(dest for dest, value in vars(probe).items()
                               if value is not unset)
        return args


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


def number_in_range(kind, low=None, high=None, *, low_open=False,
                    allow_none=False):
    """argparse type for a finite int/float within [low, high] (`low_open`:
    low itself excluded); the message states the valid range. `allow_none`
    accepts 'none' as None."""
    import math

    def describe() -> str:
        if low is not None and high is not None:
            return f"a number in {'(' if low_open else '['}{low}, {high}]"
        if low is not None:
            return f"a number {'>' if low_open else '>='} {low}"
        return f"a number <= {high}"

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
        too_high = high is not None and value > high
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
