"""Converts an original release's published weights into a tagger of ours.

    python convert_weights.py se-multi-auc_0.9111-tfrmodel.hdf5 --from resemul --out se-multi.keras
    python convert_weights.py ponswon.pth --from self_attention --out ponswon.keras
    python convert_weights.py teacher.ckpt --from transformer --size teacher --out teacher.keras
    python convert_weights.py best_model.pth --from sota --model short_res --dataset msd \
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
    from tagger.convert import BLOCKS, SIZES, SOURCES
    from tagger.convert.musicnn_package import MODELS as MUSICNN_MODELS
    from tagger.convert.sota import DATASETS, MODELS

    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("source", metavar="SOURCE",
                   help="the downloaded original weights file (--from musicnn: the wheel "
                        "musicnn-0.1.0-py3-none-any.whl, or the installed package's folder)")
    p.add_argument("--from", dest="kind", required=True, choices=SOURCES,
                   help="which release SOURCE comes from")
    p.add_argument("--block", choices=BLOCKS, default=None,
                   help="resemul only: the block type the file must hold (default: read "
                        "from the file)")
    p.add_argument("--size", choices=SIZES, default=None,
                   help="transformer only: teacher (width 256) or student (64) the file "
                        "must hold (default: read from the file)")
    p.add_argument("--model", choices=MODELS + tuple(MUSICNN_MODELS), default=None,
                   help="sota: the model SOURCE holds (models/<dataset>/<model>/; "
                        "the release's 'short' is short_cnn, 'sample' sample_level, 'se' "
                        "sample_level_se, 'attention' cnnsa) (default: read from SOURCE's "
                        "tensors); musicnn: which of the package's four models, "
                        f"{', '.join(MUSICNN_MODELS)} (required)")
    p.add_argument("--dataset", choices=DATASETS, default=None,
                   help="sota only: the dataset SOURCE was trained on, which names its "
                        "outputs (models/<dataset>/); no default: required with --from sota")
    p.add_argument("--tags", metavar="FILE", default=None,
                   help="tag names, one per line in output order (default: the original's)")
    p.add_argument("--tag-order", metavar="FILE", default=None,
                   help="reorder the outputs to this order of the same names: a text file "
                        "(one per line) or a dataset_info.json, e.g. to evaluate on records "
                        "whose tags are in another order (default: the original's order)")
    p.add_argument("--out", required=True, metavar="PATH", help="the .keras or .hdf5 to write")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    return p.parse_args(argv)


def main(argv=None):
    return cli.main(run, parse_args(argv))


def run(args) -> int:
    from tagger.convert import ConvertConfig, convert_file, read_tag_file

    tags = read_tag_file(args.tags) if args.tags else None
    order = read_tag_file(args.tag_order, "--tag-order") if args.tag_order else None
    config = ConvertConfig(source=args.source, kind=args.kind, out=args.out,
                           block=args.block, size=args.size, model=args.model,
                           dataset=args.dataset, tags=tags, tag_order=order,
                           overwrite=args.overwrite)
    info = convert_file(config)
    seconds = info.window_segments * info.segment_length / info.sample_rate
    print(f"wrote {args.out}: {info.model} {info.model_args}, "
          f"{len(info.tag_names)} tags, windows of {seconds:.2f} s at "
          f"{info.sample_rate} Hz")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
