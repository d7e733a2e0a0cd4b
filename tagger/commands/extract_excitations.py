"""Extracts the SE excitations of a sample-level CNN for every clip of a split.

    python extract_excitations.py log/samplecnn-se-multi/model.hdf5 --plots excitation_plots
"""

from __future__ import annotations

from tagger import cli
from tagger.cli import ArgumentParser


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", metavar="MODEL", type=cli.model_name_or_path,
                   help="a .keras or .hdf5 SE or ReSE model written by train.py, "
                        "or mtat-samplecnn-se / mtat-samplecnn-rese")
    p.add_argument("--data-dir", default="./dataset/tfrecord",
                   help="folder with dataset_info.json and shards (default: ./dataset/tfrecord)")
    p.add_argument("--split", default="test",
                   help="labelled split to analyse: train, val or test (default: test)")
    p.add_argument("--out", default="excitations.pkl",
                   help="pandas pickle to write (default: excitations.pkl)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out that is not an excitation table, or "
                        "figures in --plots that matplotlib did not draw (default: refuse)")
    p.add_argument("--plots", default=None, metavar="PATH",
                   help="also write the excitation figures (PNG) into this folder "
                        "(default: no figures)")
    p.add_argument("--depths", type=cli.comma_ints, default=None, metavar="D1,D2,...",
                   help="depths to plot per tag (default: first, middle and last block)")
    p.add_argument("--compare-tags", type=cli.comma_list, default=None, metavar="T1,T2,...",
                   help="tags compared at the first block (default: classical, metal or "
                        "rock, dance or techno; those present)")
    p.add_argument("--batch-size", type=cli.positive_int, default=32, metavar="N",
                   help="windows per batch (default: 32)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    for flag, value in (("--depths", args.depths), ("--compare-tags", args.compare_tags)):
        if value is not None and not value:
            p.error(f"{flag} names none; give a comma-separated list or leave it out")
    return args


def main(argv=None):
    return cli.main(run, parse_args(argv))


def run(args):
    from tagger.errors import flags_do_not_apply
    from tagger.pretrained import resolve_model

    given = cli.given_flags(args, ("depths", "compare_tags"))
    if given and not args.plots:
        raise flags_do_not_apply(given, "with --plots DIR", "no figures are drawn", "add --plots")
    args.model = resolve_model(args.model, progress=not getattr(args, "no_progress", False))

    from tagger.interpret.excitation_run import ExcitationConfig, run_excitations

    config = ExcitationConfig(
        model_path=args.model, data_dir=args.data_dir, split=args.split, out=args.out,
        plots_dir=args.plots, depths=args.depths, compare_tags=args.compare_tags,
        batch_size=args.batch_size, progress=not args.no_progress, overwrite=args.overwrite)
    for line in run_excitations(config):
        print(line, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
