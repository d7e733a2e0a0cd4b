"""More like this: the library files nearest to a query file or to tags.

    tag.py MODEL ~/Music --recursive --db library.sqlite --embeddings
    tagger-similar ~/Music/song.mp3 --db library.sqlite -k 10
    tagger-similar --tags "piano,slow" --db library.sqlite

A query file is compared by the cosine similarity of its embedding (the
mean penultimate-layer vector) with every file's in the database; a file
not in the database is tagged on the fly with the database's model. With
--tags, files are ranked by the mean of those tags' scores. The search is
exact. See docs/commands/similar.md.
"""

from __future__ import annotations

import sys

from tagger import cli
from tagger.cli import ArgumentParser


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("query", nargs="?", default=None, metavar="QUERY",
                   help="an audio file (in the database or not)")
    p.add_argument("--db", required=True, metavar="PATH",
                   help="the database tag.py --db wrote (with --embeddings for a file query)")
    p.add_argument("--tags", type=cli.comma_list, default=None, metavar="T1,T2,...",
                   help="rank by the mean score of these tags instead of a query file "
                        "(default: none, give QUERY)")
    p.add_argument("-k", type=cli.positive_int, default=10, metavar="K",
                   help="how many files to list (default 10)")
    p.add_argument("--index", default="auto", choices=["auto", "exact", "faiss"],
                   help="exact: every embedding compared in NumPy; faiss: an approximate "
                        "HNSW index kept beside the database (pip install faiss-cpu); auto: "
                        "faiss from 100,000 files on when installed, else exact (default)")
    p.add_argument("--model", default=None, metavar="FINGERPRINT",
                   help="the model whose results to use when the database holds several "
                        "(default: the only one)")
    args = p.parse_args(argv)
    if (args.query is None) == (args.tags is None):
        p.error("give a QUERY file or --tags, one of the two")
    if args.tags is not None and cli.given_flags(args, ("index",)):
        p.error("--index applies to a QUERY file only (--tags ranks every file by its "
                "scores, exactly); leave it out")
    return args


def main(argv=None):
    # TensorFlow only to tag a query file that is not in the database (similar.embed)
    return cli.main(run, parse_args(argv), tensorflow=False)


def run(args) -> int:
    from tagger.fileio import path_text
    from tagger.inference.library import similar

    if args.tags is not None:
        found = similar.by_tags(args.db, list(args.tags), args.k, args.model)
        what = "mean score"
    else:
        found = similar.by_file(args.db, args.query, args.k, args.model,
                                log=lambda line: print(line, file=sys.stderr),
                                index=args.index)
        what = "cosine"
    print(f"rank  {what:>10}  path")
    for rank, (path, score) in enumerate(found, 1):
        print(f"{rank:4d}  {score:10.4f}  {path_text(path)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
