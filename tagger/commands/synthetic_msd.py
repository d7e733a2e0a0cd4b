"""Writes a synthetic Million Song Dataset in the real file layouts
(tagger.datasets.synthetic_msd).

    python -m tagger.commands.synthetic_msd OUT [--tracks N] [--seed S]
        [--seconds S] [--workers N] [--metadata-only] [--no-progress]
"""

from __future__ import annotations

import os
import sys

from tagger import cli
from tagger.cli import ArgumentParser, non_negative_int, number_in_range
from tagger.commands.synthetic import run_generator
from tagger.datasets.synthetic_msd import MIN_TRACKS, generate


def main(argv=None) -> int:
    parser = ArgumentParser(
        description="Write a synthetic Million Song Dataset (SQLite metadata and Last.fm "
                    "tags, 7digital-layout MP3 previews, CALS and classic split files) "
                    "into OUT.")
    parser.add_argument("out_dir", metavar="OUT")
    parser.add_argument("--tracks", type=number_in_range(int, MIN_TRACKS), default=300,
                        help="tracks in the dataset (default: 300)")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="random seed (default: 0)")
    parser.add_argument("--seconds", type=number_in_range(float, 1, 120), default=30.0,
                        help="preview length in seconds, 1-120 (default: 30)")
    parser.add_argument("--workers", type=number_in_range(int, 1, 256),
                        default=min(os.cpu_count() or 1, 256),
                        help="processes synthesising previews, 1..256 (default: all cores)")
    parser.add_argument("--metadata-only", action="store_true",
                        help="write the databases and split files, no audio")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a synthetic MSD already in OUT")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.metadata_only and cli.given_flags(args, ("workers",)):
        parser.error("--workers applies without --metadata-only only (no previews are "
                     "synthesised); leave it out")

    def report(s, seconds):
        defects = ", ".join(f"{tid} {kind}" for tid, kind in sorted(s.defects.items()))
        return (f"wrote {s.tracks} tracks by {s.artists} artists ({s.labelled_tracks} with a "
                f"tag above 50) to {s.out_dir} in {seconds:.1f} s; CALS {s.cals_sizes}, "
                f"classic {s.classic_sizes}; defects on purpose: {defects}")

    return run_generator(
        parser.prog, lambda: generate(args.out_dir, args.tracks, args.seed, args.seconds,
                                      args.workers, progress=not args.no_progress,
                                      metadata_only=args.metadata_only,
                                      overwrite=args.overwrite),
        f"to {args.out_dir!r}", report)


if __name__ == "__main__":
    sys.exit(main())
