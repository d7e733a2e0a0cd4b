"""Tags your own audio files with a trained tagger.

    python tag.py log/samplecnn-se-multi/model.keras song.mp3 music/ --top-k 5

Every file is decoded (mp3, ogg, flac, wav, ... via libsndfile), mixed to
mono, resampled to the model's rate and cut into windows of the model's
input length; the clip's scores are the mean over its windows. Exit code
0: every input tagged; 1: some inputs were skipped (one line each on
stderr; paths that are not regular files, undecodable audio, audio with
NaN or infinite samples); when every input is skipped, `--out` is not
touched, so an earlier report survives; 2: a usage error (bad flag, missing or unusable model, no audio).
"""

from __future__ import annotations

from tagger import cli
from tagger.cli import ArgumentParser
from tagger.inference.config import ENGINES


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", metavar="MODEL", help="a .keras or .hdf5 model written by train.py, "
                   "or a pretrained name (tagger-pretrained list)")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="audio files and folders (folders: files with audio extensions)")
    p.add_argument("--top-k", type=int, default=None, metavar="K",
                   help="tags per file (default 5; with --threshold: no limit)")
    p.add_argument("--threshold", type=float, default=None, metavar="T",
                   help="list every tag scoring at least this (0..1; default: none, "
                        "the top K)")
    p.add_argument("--format", default="table", choices=["table", "json", "csv"],
                   help="report format (default table)")
    p.add_argument("--out", default=None, metavar="PATH",
                   help="write the report here (default stdout)")
    p.add_argument("--recursive", action="store_true", help="search folders recursively")
    p.add_argument("--hop", type=float, default=None, metavar="SECONDS",
                   help="seconds between window starts (default: the window, no overlap)")
    p.add_argument("--taggram", default=None, metavar="PATH",
                   help="write each file's window x tag scores as .npy and .png into "
                        "this folder (default: none)")
    p.add_argument("--embeddings", default=None, metavar="PATH",
                   help="write penultimate-layer embeddings to this .npz (default: none)")
    p.add_argument("--batch-size", type=int, default=32, metavar="N",
                   help="windows per model call (default 32)")
    p.add_argument("--workers", type=int, default=2, metavar="N",
                   help="decoder threads (default 2)")
    p.add_argument("--engine", default="keras", choices=ENGINES,
                   help="what runs the model: Keras (TensorFlow); Keras compiled with "
                        "XLA (xla; a few seconds of compiling at the start; "
                        "bench/bench_tag.py tells whether it pays on your machine); "
                        "or the model converted "
                        "to TFLite and run by LiteRT with XNNPACK on every core: float32, "
                        "float16 weights, or int8 weights (dynamic-range quantisation); "
                        "the conversion takes a few seconds at the start (default: keras)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv=None):
    return cli.main(run, parse_args(argv))


def run(args) -> int:
    from tagger.pretrained import resolve_model

    args.model = resolve_model(args.model, progress=not getattr(args, "no_progress", False))

    import os
    import sys

    from tagger.inference.config import TagConfig
    from tagger.inference.run import tag

    config = TagConfig(
        model=args.model, inputs=tuple(args.inputs), top_k=args.top_k,
        threshold=args.threshold, format=args.format, out=args.out,
        recursive=args.recursive, hop=args.hop, taggram_dir=args.taggram,
        embeddings=args.embeddings, batch_size=args.batch_size, workers=args.workers,
        progress=not args.no_progress, engine=args.engine)
    summary = tag(config, quiet_decoders=True)
    if not args.out:
        sys.stdout.write(summary.report)
        sys.stdout.flush()
    if summary.failures:
        line = (f"{len(summary.failures)} of {len(summary.failures) + len(summary.results)} "
                "inputs skipped")
        if args.out and not summary.out_written:
            line += (f"; nothing was tagged, so {args.out} was left as it was"
                     if os.path.exists(args.out) else
                     f"; nothing was tagged, so {args.out} was not written")
        print(line, file=sys.stderr)
    return summary.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
