"""Writes the synthetic MagnaTagATune-layout dataset (tagger.datasets.synthetic).

    python -m tagger.commands.synthetic OUT_DIR [--clips N] [--seconds S] [--seed K]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from tagger import cli
from tagger.cli import ArgumentParser, non_negative_int, number_in_range
from tagger.datasets.synthetic import MAX_CLIPS, MAX_SECONDS, MIN_CLIPS, MIN_SECONDS, generate


def main(argv=None) -> int:
    parser = ArgumentParser(
        description="Write the synthetic MagnaTagATune-layout dataset "
                    "(annotations_final.csv + mp3/0..f) into OUT_DIR.")
    parser.add_argument("out_dir", metavar="OUT_DIR")
    parser.add_argument("--clips", type=number_in_range(int, MIN_CLIPS, MAX_CLIPS), default=400,
                        help=f"rows in the CSV, {MIN_CLIPS}-{MAX_CLIPS} (default 400)")
    parser.add_argument("--seconds", type=number_in_range(float, MIN_SECONDS, MAX_SECONDS),
                        default=29.1, metavar="S",
                        help=f"clip length, {MIN_SECONDS:g}-{MAX_SECONDS:g} s (default 29.1)")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="random seed (default 0)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing annotations_final.csv and mp3/ in OUT_DIR")
    parser.add_argument("--workers", type=number_in_range(int, 1, 256),
                        default=min(os.cpu_count() or 1, 256),
                        help="processes synthesising clips, 1..256 (default: all cores)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--quiet", action="store_true", dest="no_progress",
                        help=argparse.SUPPRESS)  # the former spelling
    args = parser.parse_args(argv)

    def report(summary, seconds):
        broken = ", ".join(f"{b.clip_id} {b.kind}" for b in summary.broken)
        return (f"wrote {summary.num_clips} clips x {summary.seconds:g} s, "
                f"{len(summary.tag_names)} tags, "
                f"to {summary.csv_path} and {summary.audio_root}/ "
                f"in {seconds:.1f} s; "
                f"broken on purpose: {broken}")

    return run_generator(
        parser.prog, lambda: generate(args.out_dir, args.clips, args.seconds, args.seed,
                                      progress=not args.no_progress,
                                      overwrite=args.overwrite, workers=args.workers),
        f"the dataset to {args.out_dir!r}", report)


def run_generator(prog: str, generate, target: str, report) -> int:
    """Calls `generate()` and prints `report(its result, seconds taken)`:
    exit status 0. A bad argument (ValueError) is one error line and
    status 2, a failed write (OSError) one line naming `target`, status 1;
    as every command, after `cli.main`'s check of Keras's backend."""
    return cli.main(lambda _: _generated(prog, generate, target, report), None,
                    tensorflow=False)


def _generated(prog: str, generate, target: str, report) -> int:
    start = time.perf_counter()
    try:
        result = generate()
    except ValueError as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        print(f"{prog}: error: cannot write {target}: {error.strerror or error}{where}",
              file=sys.stderr)
        return 1
    print(report(result, time.perf_counter() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
