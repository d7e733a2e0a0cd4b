"""Turns MagnaTagATune (or the synthetic dataset in its layout) into sharded TFRecords.

    python build_mtt.py --data-dir dataset --features raw
"""

from __future__ import annotations

import os

from tagger import cli
from tagger.beam.flags import add_runner_flags, beam_run
from tagger.cli import (ArgumentParser, fraction, non_negative_float, non_negative_int,
                        number_in_range, positive_float, positive_int)


LOGMEL_DEFAULTS = {"n_mels": 128, "n_fft": 1024, "hop_length": 512, "f_min": 0.0,
                   "f_max": None, "top_db": None}
RAW_DEFAULTS = {"dtype": "int16"}


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="dataset", metavar="PATH",
                   help="folder with annotations_final.csv and mp3/ (default: dataset)")
    p.add_argument("--out-dir", default=None, metavar="PATH",
                   help="where shards go (default: <data-dir>/tfrecord); any tf.io.gfile path")
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
    p.add_argument("--sample-rate", type=number_in_range(int, 1000, 384000), default=22050,
                   metavar="HZ", help="Hz, 1000..384000 (default: 22050)")
    p.add_argument("--segment-length", type=positive_int, default=59049, metavar="N",
                   help="samples per segment (default: 59049 = 3^10)")
    p.add_argument("--num-audios-per-shard", type=positive_int, default=100, metavar="N",
                   help="clips per shard, >= 1 (default: 100)")
    p.add_argument("--workers", type=number_in_range(int, 1, 256), default=None,
                   metavar="N",
                   help=f"decoding processes of the local builder, 1..256 (default: all "
                        f"cores, {os.cpu_count() or 1} here)")
    p.add_argument("--split", default="directory", metavar="SPLIT",
                   help="'directory' (0-b train, c val, d-f test) or a folder of split "
                        "lists (default: directory)")
    p.add_argument("--merge-synonyms", action="store_true",
                   help="merge synonym tags before choosing the top k")
    p.add_argument("--top-k", type=positive_int, default=50, metavar="N",
                   help="number of tags, >= 1 (default: 50)")
    p.add_argument("--seed", type=non_negative_int, default=0, metavar="N",
                   help="shuffles the train shards (default: 0)")
    p.add_argument("--unlabelled-fraction", type=fraction, default=0.0, metavar="F",
                   help="move this share of the train clips, labels dropped, into an "
                        "unlabelled 'student' split for noisy-student training, "
                        "in [0, 1) (default: 0)")
    p.add_argument("--max-file-mb", type=positive_float, default=64.0, metavar="MB",
                   help="skip audio files larger than this, with a reason (default: 64)")
    p.add_argument("--max-seconds", type=positive_float, default=60.0, metavar="S",
                   help="cut longer clips here; cut clips are listed in "
                        "dataset_info.json (default: 60)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a build made with other settings (or shards and a "
                        "dataset_info.json this builder did not write) in --out-dir; "
                        "other files there are kept")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_runner_flags(p)
    return p.parse_args(argv)


def main(argv=None):
    return cli.main(build, parse_args(argv))


def build(args):
    from tagger.config import AudioConfig, BuildConfig, FeatureConfig, LogMelConfig
    from tagger.datasets.mtt import build_mtt, plan_from_config
    from tagger.errors import UserError
    from tagger.records.info import describe

    _check_feature_flags(args)
    run = beam_run(args)
    if run is not None and args.workers is not None:
        raise UserError("--workers sets the local builder's processes; with --runner "
                        "the runner decides (e.g. --beam-option direct_num_workers=2)")
    try:
        logmel = LogMelConfig(**{name: default if getattr(args, name) is None
                                 else getattr(args, name)
                                 for name, default in LOGMEL_DEFAULTS.items()})
        config = BuildConfig(
            data_dir=args.data_dir, out_dir=args.out_dir,
            audio=AudioConfig(args.sample_rate, args.segment_length),
            features=FeatureConfig(args.features, args.dtype or RAW_DEFAULTS["dtype"],
                                   logmel),
            clips_per_shard=args.num_audios_per_shard,
            workers=args.workers if args.workers is not None else os.cpu_count() or 1,
            split=args.split, merge_synonyms=args.merge_synonyms, top_k=args.top_k,
            seed=args.seed, unlabelled_fraction=args.unlabelled_fraction,
            overwrite=args.overwrite, progress=not args.no_progress,
            max_file_mb=args.max_file_mb, max_seconds=args.max_seconds)
    except ValueError as error:
        raise UserError(str(error)) from None
    if run is None:
        info = build_mtt(config)
    else:
        from tagger.beam.build import run_beam_build
        info = run_beam_build(plan_from_config(config), config, run)
    print(describe(info, config.output_dir))


def _check_feature_flags(args) -> None:
    """A flag of the other feature kind is an error, not silently dropped."""
    from tagger.errors import UserError

    other = RAW_DEFAULTS if args.features == "logmel" else LOGMEL_DEFAULTS
    given = [f"--{name.replace('_', '-')}" for name in other
             if getattr(args, name) is not None]
    if given:
        kind = "raw" if args.features == "logmel" else "logmel"
        raise UserError(f"{', '.join(given)} applies to --features {kind} only, and "
                        f"--features is {args.features}; drop it or choose --features {kind}")


if __name__ == "__main__":
    raise SystemExit(main())
