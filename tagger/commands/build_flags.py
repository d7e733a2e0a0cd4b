"""The build command of any dataset source (build_mtt.py, build_msd.py,
build_folder.py: each a `main` naming its source in
`tagger.datasets.SOURCES`): the source's data dir and settings flags
(declared on its settings dataclass) and the flags every builder shares:
features, audio, shards, workers, resume/overwrite/verify, progress, Beam runner.

    main(name, argv)                    parses and builds, one-line errors
    parse_args(name, argv)              the source's parser, parsed
    add_record_flags(parser)            adds the shared flags
    record_settings(args) -> dict       BuildConfig fields they set
    build_source(source, settings, config, args)
                                        local processes or a Beam runner
"""

from __future__ import annotations

import dataclasses
import os
import textwrap

from tagger import cli
from tagger.cli import non_negative_float, number_in_range, positive_float, positive_int
from tagger.commands.beam_flags import add_runner_flags, beam_run
from tagger.config import AudioConfig, BuildConfig, FeatureConfig, LogMelConfig
from tagger.datasets import SOURCES
from tagger.errors import UserError, flags_do_not_apply

# Every flag's default is its config dataclass field's (tagger.config).
_LOGMEL, _AUDIO, _WRITE = LogMelConfig(), AudioConfig(), BuildConfig()
LOGMEL_DEFAULTS = {name: getattr(_LOGMEL, name)
                   for name in ("n_mels", "n_fft", "hop_length", "f_min", "f_max", "top_db")}
RAW_DEFAULTS = {"dtype": FeatureConfig().dtype}


def add_record_flags(p, max_seconds: float, data_dir: str = "<data-dir>") -> None:
    """Adds the shared flags; `max_seconds` is the builder's default cut,
    `data_dir` how --help names the data dir."""
    p.add_argument("--out-dir", default=None, metavar="PATH",
                   help=f"where shards go (default: {data_dir}/tfrecord); any tf.io.gfile path")
    p.add_argument("--features", choices=["raw", "logmel"], default="raw",
                   help="store raw waveforms or log-mel frames (default: raw)")
    raw = p.add_argument_group("raw features only")
    raw.add_argument("--dtype", choices=["int16", "float32"], default=None,
                     help="storage type of raw waveforms (default: int16)")
    mel = p.add_argument_group("log-mel features only")
    mel.add_argument("--n-mels", type=number_in_range(int, 1, 1024), default=None,
                     metavar="N", help="log-mel bins, 1..1024 (default: 128)")
    mel.add_argument("--n-fft", type=number_in_range(int, 2, 65536), default=None,
                     metavar="N", help="FFT size, 2..65536 and at most the segment "
                                       "length (default: 1024)")
    mel.add_argument("--hop-length", type=positive_int, default=None, metavar="N",
                     help="hop in samples, >= 1 (default: 512)")
    mel.add_argument("--f-min", type=non_negative_float, default=None, metavar="HZ",
                     help="lowest mel frequency, >= 0 Hz (default: 0)")
    mel.add_argument("--f-max", type=positive_float, default=None, metavar="HZ",
                     help="highest mel frequency, at most sample rate / 2 "
                          "(default: sample rate / 2)")
    mel.add_argument("--top-db", type=positive_float, default=None, metavar="DB",
                     help="per-segment dynamic range clamp in dB, > 0 (default: none)")
    p.add_argument("--sample-rate", type=number_in_range(int, 1000, 384000),
                   default=_AUDIO.sample_rate, metavar="HZ", help="Hz, 1000..384000")
    p.add_argument("--segment-length", type=positive_int, default=_AUDIO.segment_length,
                   metavar="N", former=("--num-samples",),
                   help="samples per segment (59049 = 3^10); --num-samples, resemul's "
                        "name for it, is the same")
    p.add_argument("--num-audios-per-shard", type=positive_int,
                   default=_WRITE.clips_per_shard, metavar="N", help="clips per shard, >= 1")
    p.add_argument("--workers", type=number_in_range(int, 1, 256), default=None,
                   metavar="N",
                   help=f"decoding processes of the local builder, 1..256 (default: all "
                        f"cores, {os.cpu_count() or 1} here)")
    p.add_argument("--max-file-mb", type=positive_float, default=_WRITE.max_file_mb,
                   metavar="MB", help="skip audio files larger than this, with a reason")
    p.add_argument("--max-seconds", type=positive_float, default=max_seconds, metavar="S",
                   help="cut longer clips here; cut clips are listed in "
                        f"dataset_info.json (default: {max_seconds:g})")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a build made with other settings (or shards and a "
                        "dataset_info.json this builder did not write) in --out-dir; "
                        "other files there are kept")
    p.add_argument("--verify", action="store_true",
                   help="read every byte of the finished shards a rerun keeps and check "
                        "each record's CRC32C (without it a kept shard is read only where "
                        "its size or time changed); a shard that differs is written again")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_runner_flags(p)


def check_feature_flags(args) -> None:
    """A flag of the other feature kind is an error, not silently dropped."""
    other = RAW_DEFAULTS if args.features == "logmel" else LOGMEL_DEFAULTS
    given = cli.given_flags(args, other)
    if given:
        kind = "raw" if args.features == "logmel" else "logmel"
        raise flags_do_not_apply(given, f"to --features {kind}",
                                 f"this build uses --features {args.features}",
                                 f"choose --features {kind}")


def record_settings(args) -> dict:
    """The BuildConfig fields the shared flags set (audio, features, shards,
    workers, limits, overwrite, verify, progress)."""

    check_feature_flags(args)
    try:
        logmel = LogMelConfig(**{name: default if getattr(args, name) is None
                                 else getattr(args, name)
                                 for name, default in LOGMEL_DEFAULTS.items()})
        return dict(
            out_dir=args.out_dir,
            audio=AudioConfig(args.sample_rate, args.segment_length),
            features=FeatureConfig(args.features, args.dtype or RAW_DEFAULTS["dtype"],
                                   logmel),
            clips_per_shard=args.num_audios_per_shard,
            workers=args.workers if args.workers is not None else os.cpu_count() or 1,
            max_file_mb=args.max_file_mb, max_seconds=args.max_seconds,
            overwrite=args.overwrite, verify=args.verify, progress=not args.no_progress)
    except ValueError as error:
        raise UserError(str(error)) from None


def build_source(source, settings, config, args) -> dict:
    """Writes `source`'s records (tagger.datasets.build) with local processes
    or the Beam runner the flags name; returns dataset_info."""
    from tagger.datasets.build import build

    run = beam_run(args)
    if run is not None and args.workers is not None:
        raise flags_do_not_apply(["--workers"], "to the local builder",
                                 "with --runner the runner decides",
                                 "set --beam-option direct_num_workers=2 or the like")
    return build(source, settings, config, run)


def main(name: str, argv=None) -> int:
    """The build command of the source `name`."""
    return cli.main(build, parse_args(name, argv), keras=False)  # records, without Keras


def parse_args(name: str, argv=None):
    """The flags of the source `name`'s build command, parsed;
    `args.dataset_source` is the source."""
    source = SOURCES.get(name)
    p = cli.ArgumentParser(description=f"Turns {source.title} into sharded TFRecords.",
                           epilog=source.manual_download, formatter_class=_HelpFormatter)
    named = "<data-dir>"
    if source.data_dir_default is None:
        p.add_argument("data_dir", metavar="FOLDER", help=source.data_dir_help)
        named = "FOLDER"
    else:
        p.add_argument("--data-dir", default=source.data_dir_default, metavar="PATH",
                       help=source.data_dir_help)
    for field, flag, setting in settings_flags(source):
        options = {k: v for k, v in setting.items() if k not in _OURS}
        if field.default is False:  # a switch
            p.add_argument(flag, dest=field.name, action="store_true", **options)
            continue
        typed = not isinstance(field.default, (str, type(None)))  # else argparse's str
        if typed and not {"action", "choices"} & set(options):
            options["type"] = type(field.default)
            if "low" in setting or "high" in setting:
                options["type"] = number_in_range(options["type"], setting.get("low"),
                                                  setting.get("high"))
        # a flag that applies only with some value of another setting is None
        # unless given (its help states its default)
        default = None if "only_with" in setting else field.default
        p.add_argument(flag, dest=field.name, default=default, **options)
    add_record_flags(p, source.max_seconds, named)
    args = p.parse_args(argv)
    args.dataset_source = source
    return args


class _HelpFormatter(cli.HelpFormatter):
    """cli.HelpFormatter, with text wrapped at spaces only (an address in
    the instructions stays whole)."""

    def _fill_text(self, text, width, indent):
        return textwrap.fill(" ".join(text.split()), width, initial_indent=indent,
                             subsequent_indent=indent, break_on_hyphens=False)


_OURS = ("flag", "low", "high", "only_with")  # setting() keys argparse lacks


def settings_flags(source) -> list:
    """(field, flag, setting options) of each settings field with a flag."""
    return [(f, f.metadata["flag"].get("flag", "--" + f.name.replace("_", "-")),
             f.metadata["flag"]) for f in dataclasses.fields(source.settings_type)
            if "flag" in f.metadata]


def source_settings(source, args):
    """The source's settings dataclass from the flags (and what their actions
    set; None: the field's default); a flag given where it does not apply
    is an error."""
    flags = settings_flags(source)
    flag_of = {field.name: flag for field, flag, _ in flags}
    off = [(flag, setting["only_with"]) for field, flag, setting in flags
           if "only_with" in setting and getattr(args, field.name) is not None
           and getattr(args, setting["only_with"][0]) != setting["only_with"][1]]
    if off:
        name, value, why = off[0][1]
        raise flags_do_not_apply([flag for flag, _ in off], f"to {flag_of[name]} {value}",
                                 why.format(**vars(args)))
    fields = dataclasses.fields(source.settings_type)
    values = {f.name: getattr(args, f.name, None) for f in fields}
    try:
        return source.settings_type(**{k: v for k, v in values.items() if v is not None})
    except ValueError as error:
        raise UserError(str(error)) from None


def build(args):
    from tagger.records.info import describe

    source = args.dataset_source
    settings = source_settings(source, args)
    try:
        config = BuildConfig(data_dir=args.data_dir, **record_settings(args))
    except ValueError as error:
        raise UserError(str(error)) from None
    info = build_source(source, settings, config, args)
    print(describe(info, config.output_dir))
