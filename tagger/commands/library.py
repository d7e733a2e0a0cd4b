"""Reads a results database: its models, and its rows as CSV, JSON lines or Parquet.

The database is what `tag.py MODEL FOLDER --db library.sqlite` writes.

    tagger-library info --db library.sqlite
    tagger-library export --db library.sqlite --format csv --out tags.csv --top-k 3
    tagger-library export --db library.sqlite --format jsonl --threshold 0.5
    tagger-library export --db library.sqlite --format parquet --out tags.parquet

info: the models in the database and how many files each has tagged.
export: one row per file (path, size, mtime, duration, sample rate, windows,
padded, model fingerprint, the chosen tags and their scores); --top-k and
--threshold choose the tags now, from the stored scores of every tag.
Parquet needs pyarrow (it comes with the beam extra). See
docs/commands/library.md.
"""

from __future__ import annotations

import sys

from tagger import cli
from tagger.cli import ArgumentParser

ACTIONS = ("info", "export")


def parse_args(argv=None):
    from tagger.inference.library_export import FORMATS

    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("action", choices=ACTIONS,
                   help="info: the models and their file counts; export: the rows")
    p.add_argument("--db", required=True, metavar="PATH",
                   help="the database tag.py --db wrote")
    p.add_argument("--format", default="csv", choices=FORMATS,
                   help="export format (default csv; parquet needs pyarrow)")
    p.add_argument("--out", default=None, metavar="PATH",
                   help="write the export here (default stdout; parquet needs a file)")
    p.add_argument("--top-k", type=cli.positive_int, default=None, metavar="K",
                   help="tags per file (default 5; with --threshold: no limit)")
    p.add_argument("--threshold", type=cli.number_in_range(float, 0.0, 1.0), default=None,
                   metavar="T", help="every tag scoring at least T (default: none, the top K)")
    p.add_argument("--all-scores", action="store_true",
                   help="also every tag's score (CSV and Parquet: a score:TAG column each)")
    p.add_argument("--model", default=None, metavar="FINGERPRINT",
                   help="the model whose results to export, by fingerprint prefix or path, "
                        "when the database holds several (see info)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out that tagger-library did not write")
    args = p.parse_args(argv)
    if args.action == "info" and (args.out or args.top_k or args.threshold is not None):
        p.error("--out, --top-k and --threshold apply to export only")
    return args


def main(argv=None):
    return cli.run(run, parse_args(argv))


def run(args) -> int:
    from tagger.inference.library_export import export
    from tagger.inference.results_reader import ResultsReader

    if args.action == "info":
        with ResultsReader(args.db) as reader:
            found = reader.models()
        for model in found:
            dim = model["embedding_dim"]
            print(f"{model['fingerprint'][:12]}  {model['files']} files  "
                  f"{len(model['tag_names'])} tags  "
                  f"{'embeddings ' + str(dim) if dim else 'no embeddings'}  {model['path']}")
        return 0
    count, fingerprint = export(args.db, args.format, args.out, args.top_k, args.threshold,
                                args.model, args.all_scores, args.overwrite,
                                stdout=sys.stdout)
    if args.out:
        print(f"wrote {args.out}: {count} file{'s' if count != 1 else ''} of model "
              f"{fingerprint[:12]} as {args.format}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
