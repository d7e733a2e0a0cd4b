"""Turns MagnaTagATune (or the synthetic dataset in its layout) into sharded TFRecords.

    python build_mtt.py --data-dir dataset --features raw
"""

from __future__ import annotations

from tagger import cli
from tagger.cli import ArgumentParser, fraction, non_negative_int, positive_int
from tagger.commands.beam_flags import beam_run  # noqa: F401  (the runner the flags ask for)
from tagger.commands.build_flags import add_record_flags
from tagger.config import BuildConfig
from tagger.datasets.mtt import MttSettings

DEFAULTS = MttSettings()  # every source flag's default is its MttSettings field's


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=BuildConfig.data_dir, metavar="PATH",
                   help="folder with annotations_final.csv and mp3/")
    p.add_argument("--split", default=DEFAULTS.split, metavar="SPLIT",
                   help="'directory' (0-b train, c val, d-f test) or a folder of split "
                        "lists")
    p.add_argument("--merge-synonyms", action="store_true",
                   help="merge synonym tags before choosing the top k")
    p.add_argument("--top-k", type=positive_int, default=DEFAULTS.top_k, metavar="N",
                   help="number of tags, >= 1")
    p.add_argument("--seed", type=non_negative_int, default=DEFAULTS.seed, metavar="N",
                   help="shuffles the train shards")
    p.add_argument("--unlabelled-fraction", type=fraction,
                   default=DEFAULTS.unlabelled_fraction, metavar="F",
                   help="move this share of the train clips, labels dropped, into an "
                        "unlabelled 'student' split for noisy-student training, "
                        "in [0, 1)")
    add_record_flags(p, max_seconds=60.0)
    return p.parse_args(argv)


def main(argv=None):
    return cli.main(build, parse_args(argv))


def build(args):
    from tagger.commands.build_flags import build_source, record_settings
    from tagger.datasets.mtt import SOURCE
    from tagger.errors import UserError
    from tagger.records.info import describe

    try:
        settings = MttSettings(split=args.split, merge_synonyms=args.merge_synonyms,
                               top_k=args.top_k, seed=args.seed,
                               unlabelled_fraction=args.unlabelled_fraction)
        config = BuildConfig(data_dir=args.data_dir, **record_settings(args))
    except ValueError as error:
        raise UserError(str(error)) from None
    info = build_source(SOURCE, settings, config, args)
    print(describe(info, config.output_dir))


if __name__ == "__main__":
    raise SystemExit(main())
