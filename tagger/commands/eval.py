"""Evaluates a trained tagger: clip-level macro ROC-AUC and PR-AUC.

    python eval.py log/samplecnn-se-multi/model.keras --data-dir dataset/tfrecord
"""

from __future__ import annotations

from tagger import cli
from tagger.cli import ArgumentParser, non_negative_int, number_in_range, positive_int


def parse_args(argv=None):
    from tagger.evaluation.metrics import DEFAULT_BOOTSTRAP

    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", metavar="MODEL", type=cli.model_name_or_path,
                   help="a .keras or .hdf5 model written by train.py, or a "
                        "pretrained name (tagger-pretrained list)")
    p.add_argument("--data-dir", default="./dataset/tfrecord", metavar="PATH",
                   help="folder with dataset_info.json and shards (default: ./dataset/tfrecord)")
    p.add_argument("--split", default="test",
                   help="a labelled split of the dataset: train, val or test (default: test)")
    p.add_argument("--batch-size", type=positive_int, default=32, metavar="N",
                   help="windows per batch (default: 32)")
    p.add_argument("--bootstrap", type=non_negative_int, default=DEFAULT_BOOTSTRAP,
                   metavar="N", help="resamples of the clips for 95%% confidence intervals "
                   f"of the macro AUCs; 0: none (default: {DEFAULT_BOOTSTRAP})")
    p.add_argument("--seed", type=non_negative_int, default=0, metavar="N",
                   help="seed of the bootstrap resamples (default: 0)")
    p.add_argument("--out-json", default=None, metavar="PATH",
                   help="write the metrics as JSON here; an undefined value (no tag "
                        "with both classes) is null (default: none)")
    p.add_argument("--per-tag-csv", default=None, metavar="PATH",
                   help="write the per-tag table as CSV here (default: none)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out-json or --per-tag-csv that eval.py did "
                        "not write (default: refuse)")
    p.add_argument("--against", action="append", type=cli.model_name_or_path, default=None,
                   metavar="TEACHER",
                   help="measure the model against a teacher (a pretrained name or model "
                        "file; repeated: several, averaged) on its tags, labels or none "
                        "(docs/distillation.md) (default: against the records' labels)")
    p.add_argument("--top-k", type=positive_int, default=None, metavar="K",
                   help="with --against: the teacher's tags of a clip are its K best, and "
                        "top-K agreement counts K (default: 5; with --threshold: no limit)")
    p.add_argument("--threshold", type=number_in_range(float, 0, 1, low_open=True),
                   default=None, metavar="T", help="with --against: instead, a teacher "
                   "score at or above T counts as the tag (default: none)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    cli.add_backend_flag(p)
    return p.parse_args(argv)


def _dataset_file(name: str) -> bool:
    """Whether eval.py reads a file of this name in --data-dir (the shards'
    framing indexes too)."""
    from tagger.records.shard_index import INDEX_SUFFIX, SHARD_SUFFIX

    return name == "dataset_info.json" or name.endswith((SHARD_SUFFIX, INDEX_SUFFIX))


def _is_json_report(path: str) -> bool:
    """An eval.py --out-json report: a JSON object naming model and split."""
    import json

    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    return isinstance(data, dict) and {"model", "split", "clips"} <= set(data)


def _is_per_tag(path: str) -> bool:
    from tagger import fileio

    return fileio.first_line(path).startswith("tag,roc_auc,pr_auc")


def main(argv=None):
    return cli.main(run, parse_args(argv))


def run(args):
    from tagger.errors import flags_do_not_apply
    from tagger.pretrained import resolve_model

    given = cli.given_flags(args, ("top_k", "threshold"))
    if given and not args.against:
        raise flags_do_not_apply(given, "with --against TEACHER")
    if args.overwrite and not (args.out_json or args.per_tag_csv):
        raise flags_do_not_apply(["--overwrite"], "with --out-json or --per-tag-csv",
                                 "the report goes to the standard output")
    if args.bootstrap == 0 and cli.given_flags(args, ("seed",)):
        raise flags_do_not_apply(["--seed"], "with --bootstrap N above 0",
                                 "--bootstrap 0 draws no resamples")

    args.model = resolve_model(args.model, progress=not getattr(args, "no_progress", False))

    from tagger import destination, strict_json
    from tagger.evaluation.evaluate import evaluate, report_lines

    outputs = [(args.out_json, "--out-json", "an eval.py JSON report", _is_json_report),
               (args.per_tag_csv, "--per-tag-csv", "an eval.py per-tag table", _is_per_tag)]
    for path, what, kind, recognise in outputs:  # before the long part
        if path:
            destination.check_destination(path, what, kind=kind, recognise=recognise,
                                          overwrite=args.overwrite,
                                          inputs=[args.model, args.data_dir],
                                          walked=[(args.data_dir, False, _dataset_file)])
    if args.against:
        from tagger.evaluation.against import evaluate_against
        from tagger.training.teacher_targets import targets_for

        result = evaluate_against(args.model, args.against, args.data_dir,
                                  targets_for(args.against, args.data_dir, not args.no_progress),
                                  args.split, args.batch_size, not args.no_progress,
                                  args.bootstrap, args.seed, args.top_k, args.threshold)
    else:
        from tagger.training.model_outputs import tagger_predictions

        result = evaluate(args.model, args.data_dir, args.split, args.batch_size,
                          progress=not args.no_progress, bootstrap=args.bootstrap,
                          seed=args.seed, over_audio=tagger_predictions)
    print("\n".join(result.report_lines() if args.against else report_lines(result)))
    if args.out_json:
        destination.write_output(args.out_json, strict_json.dumps(result.as_dict(), indent=2)
                                 + "\n", "--out-json")
    if args.per_tag_csv:
        from tagger.csv_cells import frame_text

        destination.write_output(args.per_tag_csv, frame_text(result.metrics.per_tag),
                                 "--per-tag-csv")


if __name__ == "__main__":
    raise SystemExit(main())
