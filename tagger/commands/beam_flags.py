"""The `--runner` / `--beam-option` / `--beam-pipeline-options` flags every
dataset-building command shares, read back as a `tagger.beam.build.BeamRun`.
Plain argparse: nothing of Beam is imported."""

from __future__ import annotations

import argparse
import shlex

from tagger.beam.build import BeamRun
from tagger.errors import UserError

# Short runner names -> Beam's runner class names; any name ending in
# "Runner" (a runner Beam knows by that name) is passed through as given.
RUNNERS = {
    "direct": "DirectRunner",
    "dataflow": "DataflowRunner",
    "flink": "FlinkRunner",
    "spark": "SparkRunner",
    "portable": "PortableRunner",
    "prism": "PrismRunner",
}


def runner_name(text: str) -> str:
    """argparse type: a short runner name or a Beam runner class name."""
    name = RUNNERS.get(text.strip().lower())
    if name is None and text.endswith("Runner") and text.isidentifier():
        name = text
    if name is None:
        raise argparse.ArgumentTypeError(
            f"expected one of {', '.join(RUNNERS)} or a Beam runner class name "
            f"(e.g. DataflowRunner), got {text!r}")
    return name


def beam_option(text: str) -> str:
    """argparse type: 'key=value' or 'flag' -> '--key=value' / '--flag'."""
    key, sep, value = text.strip().lstrip("-").partition("=")
    if not key or not key.replace("_", "").replace("-", "").isalnum():
        raise argparse.ArgumentTypeError(
            f"expected KEY=VALUE (e.g. project=my-project) or a flag name, got {text!r}")
    return f"--{key}={value}" if sep else f"--{key}"


def add_runner_flags(parser, description: str | None = None) -> None:
    """Adds the Beam flags to a build CLI's parser (or to tag.py's, with its
    own `description` of the group)."""
    group = parser.add_argument_group(
        "Apache Beam", description or "build with a Beam pipeline instead of local "
        "processes (needs requirements-beam.txt; see docs/beam.md)")
    group.add_argument("--runner", type=runner_name, default=None,
                       help=f"Beam runner: {', '.join(RUNNERS)} or a runner class name "
                            "(default: none, the local multi-process builder)")
    group.add_argument("--beam-option", type=beam_option, action="append", default=[],
                       metavar="KEY=VALUE",
                       help="a Beam pipeline option, repeatable (e.g. project=my-project, "
                            "region=europe-west1, direct_num_workers=2)")
    group.add_argument("--beam-pipeline-options", default=None, metavar="'--K=V ...'",
                       help="Beam pipeline options as one string of flags, as Beam's own "
                            "command lines take them; give it with '=' "
                            "(--beam-pipeline-options=\"--project=p --region=r\"; "
                            "default: none)")


def beam_run(args) -> BeamRun | None:
    """The BeamRun the parsed flags ask for, or None for a local build."""
    options = list(args.beam_option)
    if args.beam_pipeline_options is not None:
        try:
            words = shlex.split(args.beam_pipeline_options)
        except ValueError as error:
            raise UserError(f"--beam-pipeline-options: {error}") from None
        stray = [w for w in words if not w.startswith("--")]
        if stray and not all(_is_value(words, w) for w in stray):
            raise UserError(f"--beam-pipeline-options takes flags like --key=value, got "
                            f"{stray[0]!r}")
        options += words
    if args.runner is None:
        if options:
            raise UserError("--beam-option and --beam-pipeline-options apply only with "
                            "--runner (e.g. --runner direct)")
        return None
    if any(o.split("=", 1)[0] == "--runner" for o in options):
        raise UserError("name the runner with --runner, not as a Beam option")
    return BeamRun(args.runner, tuple(options))


def _is_value(words, word) -> bool:
    """`word` follows a `--key` flag without '=' (Beam's '--key value' form)."""
    i = words.index(word)
    return i > 0 and words[i - 1].startswith("--") and "=" not in words[i - 1]
