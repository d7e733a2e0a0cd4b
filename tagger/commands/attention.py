"""Attention heat maps and tag-wise contribution maps of an attention tagger.

    python -m tagger.commands.attention log/self_attention/model.keras song.mp3 --out maps
"""

from __future__ import annotations

from tagger import cli
from tagger.cli import ArgumentParser


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", metavar="MODEL", type=cli.model_name_or_path,
                   help="a .keras or .hdf5 self_attention or transformer model "
                        "written by train.py, or a pretrained name "
                        "(mtat-self-attention, msd-transformer, ...)")
    p.add_argument("audio", nargs="*", help="audio files (any format tag.py reads, any "
                                            "length)")
    p.add_argument("--out", default="attention_maps", metavar="DIR",
                   help="where the PNGs and .npy arrays go (default: attention_maps)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace files in --out of the maps' names that tagger-attention "
                        "did not write (default: refuse)")
    p.add_argument("--tags", type=cli.comma_list, default=None, metavar="T1,T2,...",
                   help="tags of the contribution map (default: each input's top-k tags)")
    p.add_argument("--top-k", type=int, default=5, metavar="K",
                   help="number of top tags shown, without --tags (default: 5)")
    p.add_argument("--concat", nargs=2, action="append", default=[], metavar=("A", "B"),
                   help="join two files end to end and map them as one input (repeatable)")
    p.add_argument("--batch-size", type=int, default=32,
                   help="forced-attention steps per batch (default: 32)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if not args.audio and not args.concat:
        p.error("give at least one audio file or --concat A B")
    if args.tags is not None and not args.tags:
        p.error("--tags names no tag; give T1,T2,... or leave it out for the top-k tags")
    if args.tags and cli.given_flags(args, ("top_k",)):
        p.error("--top-k applies without --tags only (the tags given are shown); leave it out")
    return args


def main(argv=None):
    return cli.main(run, parse_args(argv))


def run(args):
    from tagger.pretrained import resolve_model

    args.model = resolve_model(args.model, progress=not getattr(args, "no_progress", False))

    from tagger.interpret.attention_maps import write_attention_maps

    for line in write_attention_maps(args.model, args.audio, args.concat, args.out,
                                     args.tags, args.top_k, args.batch_size,
                                     progress=not args.no_progress,
                                     overwrite=args.overwrite):
        print(line, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
