"""Reads a results database: its models, its rows as CSV, JSON lines or
Parquet, and the files that could not be tagged.

The database is what `tag.py MODEL FOLDER --db library.sqlite` writes.

    tagger-library info --db library.sqlite
    tagger-library export --db library.sqlite --format csv --out tags.csv --top-k 3
    tagger-library export --db library.sqlite --format jsonl --threshold 0.5
    tagger-library export --db library.sqlite --format parquet --out tags.parquet
    tagger-library failures --db library.sqlite

info: the models in the database, how many files each has tagged and how
many could not be tagged. export: one row per tagged file (path, size,
mtime, duration, sample rate, windows, padded, model fingerprint, the chosen
tags and their scores); --top-k and --threshold choose the tags now, from
the stored scores of every tag; the files that could not be tagged are not
rows of it, a line on stderr counts them. failures: one row per file that
could not be tagged (path, size, mtime, model fingerprint, the reason).
Parquet needs pyarrow (it comes with the beam extra). See
docs/commands/library.md.
"""

from __future__ import annotations

import sys

from tagger import cli
from tagger.cli import ArgumentParser

ACTIONS = ("info", "export", "failures")
# the flags each action reads, beside --db
APPLIES = {"info": {"model"},
           "export": {"format", "out", "top_k", "threshold", "all_scores", "model", "overwrite"},
           "failures": {"format", "out", "model", "overwrite"}}


def parse_args(argv=None):
    from tagger.inference.library.library_export import FORMATS

    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("action", choices=ACTIONS,
                   help="info: the models and their file counts; export: the tagged files; "
                        "failures: the files that could not be tagged")
    p.add_argument("--db", required=True, metavar="PATH",
                   help="the database tag.py --db wrote")
    p.add_argument("--format", default="csv", choices=FORMATS,
                   help="export format (default: --out's suffix, .csv, .jsonl or .parquet, "
                        "else csv; parquet needs pyarrow)")
    p.add_argument("--out", default=None, metavar="PATH",
                   help="write the export here (default stdout; parquet needs a file)")
    p.add_argument("--top-k", type=cli.positive_int, default=None, metavar="K",
                   help="tags per file (default 5; with --threshold: no limit)")
    p.add_argument("--threshold", type=cli.number_in_range(float, 0.0, 1.0), default=None,
                   metavar="T", help="every tag scoring at least T (default: none, the top K)")
    p.add_argument("--all-scores", action="store_true",
                   help="also every tag's score (CSV and Parquet: a score:TAG column each)")
    p.add_argument("--model", default=None, metavar="FINGERPRINT",
                   help="the model whose results to read, by fingerprint prefix or path, "
                        "when the database holds several (see info; default: the only one)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out that tagger-library did not write")
    args = p.parse_args(argv)
    cli.format_of_out(args, {f".{name}": name for name in FORMATS})
    wrong = sorted(args.given - APPLIES[args.action] - {"action", "db"})
    if wrong:
        flags = ", ".join("--" + dest.replace("_", "-") for dest in wrong)
        readers = [a for a in ACTIONS if set(wrong) <= APPLIES[a]]
        p.error(f"{flags} do{'es' if len(wrong) == 1 else ''} not apply to {args.action}"
                + (f" (only to {' and '.join(readers)})" if readers else ""))
    if args.overwrite and not args.out:
        p.error("--overwrite applies with --out only (without it the rows go to the standard "
                "output); leave it out")
    return args


def main(argv=None):
    return cli.main(run, parse_args(argv), tensorflow=False)  # SQLite only


def run(args) -> int:
    from tagger.inference.library.library_export import export
    from tagger.inference.library.results_reader import ResultsReader

    if args.action == "info":
        with ResultsReader(args.db) as reader:
            found = reader.models()
        for model in found:
            dim = model["embedding_dim"]
            print(f"{model['fingerprint'][:12]}  {model['files']} files  "
                  f"{model['failures']} failed  {len(model['tag_names'])} tags  "
                  f"{'embeddings ' + str(dim) if dim else 'no embeddings'}  {model['path']}")
        return 0
    failures = args.action == "failures"
    done = export(args.db, args.format, args.out, args.top_k, args.threshold, args.model,
                  args.all_scores, args.overwrite, stdout=sys.stdout, failures=failures)
    what = "failed file" if failures else "file"
    if args.out:
        print(f"wrote {args.out}: {done.rows} {what}{'s' if done.rows != 1 else ''} of model "
              f"{done.fingerprint[:12]} as {args.format}", file=sys.stderr)
    if done.failures and not failures:
        many = done.failures != 1
        print(f"{done.failures} file{'s' if many else ''} of model {done.fingerprint[:12]} "
              f"could not be tagged and {'are' if many else 'is'} not in the export: "
              f"tagger-library failures --db {args.db} lists {'them' if many else 'it'}",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
