"""Converts an original release's published weights into a tagger of ours.

    python convert_weights.py se-multi-auc_0.9111-tfrmodel.hdf5 --from resemul --out se-multi.keras
    python convert_weights.py ponswon.pth --from self_attention --out ponswon.keras
    python convert_weights.py teacher.ckpt --from transformer --size teacher --out teacher.keras
    python convert_weights.py best_model.pth --from zoo --model short_res --dataset msd \
        --out msd-short-res.keras
    python convert_weights.py musicnn-0.1.0-py3-none-any.whl --from musicnn \
        --model MTT_musicnn --out mtt-musicnn.keras

The result loads in tag.py, eval.py, export.py and the interpretation tools
like a model trained here. Reading .pth/.ckpt files needs no PyTorch
(tagger.convert.torch_checkpoint). See docs/pretrained.md.
"""

from __future__ import annotations

from tagger import cli
from tagger.cli import ArgumentParser


def parse_args(argv=None):
    from tagger.convert import CONVERTERS

    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source", metavar="SOURCE",
                   type=cli.non_empty("the original weights file or folder"),
                   help="the downloaded original weights file (--from musicnn: the wheel "
                        "musicnn-0.1.0-py3-none-any.whl, or the installed package's folder)")
    p.add_argument("--from", dest="kind", required=True, choices=CONVERTERS.names(),
                   help="which release SOURCE comes from")
    for name in option_names():
        takers = [(kind.name, kind.option(name)) for _, kind in CONVERTERS.items()
                  if kind.option(name) is not None]
        values = tuple(dict.fromkeys(v for _, option in takers for v in option.values))
        p.add_argument(f"--{name}", choices=values, default=None, help="; ".join(
            f"{kind}{' only' if len(takers) == 1 else ''}: {option.help}"
            + (" (required: no default)" if option.required else "") for kind, option in takers))
    p.add_argument("--tags", metavar="FILE", default=None,
                   help="tag names, one per line in output order (default: the original's)")
    p.add_argument("--tag-order", metavar="FILE", default=None,
                   help="reorder the outputs to this order of the same names: a text file "
                        "(one per line) or a dataset_info.json, e.g. to evaluate on records "
                        "whose tags are in another order (default: the original's order)")
    p.add_argument("--out", required=True, metavar="PATH", help="the .keras or .hdf5 to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    return p.parse_args(argv)


def option_names() -> tuple:
    """Every converter's option names, each once, in registry order."""
    from tagger.convert import CONVERTERS

    return tuple(dict.fromkeys(option.name for _, kind in CONVERTERS.items()
                               for option in kind.options))


def main(argv=None):
    return cli.main(run, parse_args(argv))


def run(args) -> int:
    from tagger.convert import ConvertConfig, convert_file, read_tag_file

    tags = read_tag_file(args.tags) if args.tags else None
    order = read_tag_file(args.tag_order, "--tag-order") if args.tag_order else None
    options = tuple((name, getattr(args, name)) for name in option_names())
    config = ConvertConfig(source=args.source, kind=args.kind, out=args.out, options=options,
                           tags=tags, tag_order=order, overwrite=args.overwrite)
    info = convert_file(config)
    seconds = info.window_segments * info.segment_length / info.sample_rate
    print(f"wrote {args.out}: {info.model} {info.model_args}, "
          f"{len(info.tag_names)} tags, windows of {seconds:.2f} s at "
          f"{info.sample_rate} Hz")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
