"""Turns the Million Song Dataset (or the synthetic MSD) into sharded TFRecords.

    python build_msd.py --data-dir msd --split lastfm
    python build_msd.py --data-dir msd --split cals msd/cals
    python build_msd.py --data-dir msd --split classic msd/classic

--data-dir holds track_metadata.db (and lastfm_tags.db for --split lastfm);
the audio lies under --audio-dir (default <data-dir>/audio) in the 7digital
layout (8/9/8947470.clip.mp3) or by MSD id (A/B/C/TRABC....wav). The records
are those of build_mtt.py; an unlabelled `student` split is stored without
labels. See docs/msd.md.
"""

from __future__ import annotations

import argparse

from tagger import cli
from tagger.cli import ArgumentParser
from tagger.commands.build_flags import add_record_flags

# The MSD's audio is 30 s previews: longer files are cut there.
MAX_SECONDS = 30.0


class _SplitAction(argparse.Action):
    """--split lastfm | --split cals DIR | --split classic DIR"""

    def __call__(self, parser, namespace, values, option_string=None):
        source, *rest = values
        if source not in ("lastfm", "cals", "classic"):
            parser.error(f"--split: expected lastfm, cals DIR or classic DIR, got {source!r}")
        if source == "lastfm" and rest:
            parser.error("--split lastfm takes no folder (its split is made from "
                         "lastfm_tags.db)")
        if source != "lastfm" and len(rest) != 1:
            parser.error(f"--split {source} needs the folder of its split files, "
                         f"e.g. --split {source} msd/{source}")
        namespace.split = (source, rest[0] if rest else None)


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="msd",
                   help="folder with track_metadata.db and lastfm_tags.db (default: msd)")
    p.add_argument("--split", nargs="+", action=_SplitAction, default=("lastfm", None),
                   metavar="SOURCE [DIR]",
                   help="label source: 'lastfm' (top-k Last.fm tags, our artist-level "
                        "split), 'cals DIR' (CALS .npy files) or 'classic DIR' (the "
                        "classic pickles) (default: lastfm)")
    p.add_argument("--audio-dir", default=None,
                   help="root of the audio files (default: <data-dir>/audio)")
    p.add_argument("--layout", choices=["auto", "7digital", "msd"], default="auto",
                   help="audio layout: 7digital ({d0}/{d1}/{d}.clip.mp3), msd "
                        "({tid[2]}/{tid[3]}/{tid[4]}/{tid}.ext) or auto (default: auto)")
    p.add_argument("--top-k", type=int, default=None,
                   help="--split lastfm: number of tags (default: 50)")
    p.add_argument("--min-tag-value", type=float, default=None,
                   help="--split lastfm: a tag counts when its val (0-100) is above this "
                        "(default: 50)")
    p.add_argument("--seed", type=int, default=None,
                   help="--split lastfm: seeds the artist-level split and the train "
                        "shuffle (default: 0)")
    add_record_flags(p, max_seconds=MAX_SECONDS)
    return p.parse_args(argv)


def main(argv=None):
    return cli.main(build, parse_args(argv))


def settings_from_args(args):
    from tagger.datasets.msd.plan import MsdSettings
    from tagger.errors import UserError, flags_do_not_apply

    source, folder = args.split
    lastfm_only = [f for f, v in (("--top-k", args.top_k), ("--min-tag-value",
                   args.min_tag_value), ("--seed", args.seed)) if v is not None]
    if source != "lastfm" and lastfm_only:
        raise flags_do_not_apply(lastfm_only, "to --split lastfm",
                                 f"the {source} split files fix the tags and the split")
    given = {name: value for name, value in (("top_k", args.top_k),
             ("min_tag_value", args.min_tag_value), ("seed", args.seed)) if value is not None}
    try:
        return MsdSettings(source=source, source_dir=folder, audio_dir=args.audio_dir,
                           layout=args.layout, **given)
    except ValueError as error:
        raise UserError(str(error)) from None


def build(args):
    from tagger.commands.build_flags import build_source, record_settings
    from tagger.config import BuildConfig
    from tagger.datasets.msd.plan import SOURCE
    from tagger.errors import UserError
    from tagger.records.info import describe

    settings = settings_from_args(args)
    try:
        config = BuildConfig(data_dir=args.data_dir, **record_settings(args))
    except ValueError as error:
        raise UserError(str(error)) from None
    info = build_source(SOURCE, settings, config, args)
    print(describe(info, config.output_dir))


if __name__ == "__main__":
    raise SystemExit(main())
