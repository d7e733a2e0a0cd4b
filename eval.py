"""Evaluates a trained tagger: clip-level macro ROC-AUC and PR-AUC.

    python eval.py log/samplecnn-se-multi/model.keras --data-dir dataset/tfrecord
"""

from __future__ import annotations

from tagger import cli
from tagger.cli import ArgumentParser


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", help="a .keras or .hdf5 model written by train.py")
    p.add_argument("--data-dir", default="./dataset/tfrecord",
                   help="folder with dataset_info.json and shards")
    p.add_argument("--split", default="test",
                   help="a labelled split of the dataset: train, val or test (default: test)")
    p.add_argument("--batch-size", type=int, default=32, help="windows per batch")
    p.add_argument("--out-json", default=None, help="write the metrics as JSON here (default: none)")
    p.add_argument("--per-tag-csv", default=None, help="write the per-tag table as CSV here (default: none)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv=None):
    return cli.main(run, parse_args(argv))


def run(args):
    import json

    from tagger import fileio
    from tagger.evaluation.evaluate import evaluate, report_lines

    result = evaluate(args.model, args.data_dir, args.split, args.batch_size,
                      progress=not args.no_progress)
    print("\n".join(report_lines(result)))
    if args.out_json:
        fileio.write_atomic(args.out_json, json.dumps(result.as_dict(), indent=2))
    if args.per_tag_csv:
        fileio.write_atomic(args.per_tag_csv, result.metrics.per_tag.to_csv(index=False))


if __name__ == "__main__":
    raise SystemExit(main())
