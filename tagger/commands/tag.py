"""Tags your own audio files with a trained tagger.

    python tag.py log/samplecnn-se-multi/model.keras song.mp3 music/ --top-k 5

Every file is decoded (mp3, ogg, flac, wav, ... via libsndfile), mixed to
mono, resampled to the model's rate and cut into windows of the model's
input length; the clip's scores are the mean over its windows. Exit code
0: every input tagged (with --db: every input this run tried; files that
failed in an earlier run and have not changed are not tried again, and one
line counts them); 1: some inputs were skipped (one line each on
stderr; paths that are not regular files, undecodable audio, audio with
NaN or infinite samples); when every input is skipped, `--out` is not
touched, so an earlier report survives; 2: a usage error (bad flag, missing or
unusable model, no audio).
"""

from __future__ import annotations

from tagger import cli
from tagger.cli import ArgumentParser
from tagger.inference.engine.registry import ENGINES
from tagger.inference.tag.config import EMBEDDINGS_IN_DB
from tagger.inference.window_choice import LIBRARY_WINDOWS


def workers_count(text: str):
    """--workers: "auto" (None) or a number of decoder threads >= 1."""
    import argparse

    if text.strip().lower() == "auto":
        return None
    try:
        return cli.positive_int(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected auto or a number >= 1, "
                                         f"got {text!r}") from None


def windows_flag(text: str) -> int:
    """--windows: a number of windows, or 0 or all (every window)."""
    import argparse

    from tagger.inference.window_choice import windows_count

    try:
        return windows_count(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", metavar="MODEL", type=cli.model_name_or_path,
                   help="a .keras or .hdf5 model written by train.py, or a pretrained "
                        "name (tagger-pretrained list)")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="audio files and folders (folders: files with audio extensions)")
    p.add_argument("--top-k", type=int, default=None, metavar="K",
                   help="tags per file (default 5; with --threshold: no limit)")
    p.add_argument("--threshold", type=float, default=None, metavar="T",
                   help="list every tag scoring at least this (0..1; default: none, "
                        "the top K)")
    p.add_argument("--format", default="table", choices=["table", "json", "csv"],
                   help="report format (default: json or csv for an --out ending in .json "
                        "or .csv, else table)")
    p.add_argument("--out", default=None, metavar="PATH",
                   help="write the report here (default stdout)")
    p.add_argument("--recursive", action="store_true", help="search folders recursively")
    p.add_argument("--hop", type=float, default=None, metavar="SECONDS",
                   help="seconds between window starts (default: the window, no overlap)")
    p.add_argument("--windows", type=windows_flag, default=None, metavar="N",
                   help="score each file from N windows spread over it (the centres of N "
                        "equal parts of the file), decoding "
                        "only those: a library tagged several times faster, its top tags "
                        "nearly those of every window (docs/performance.md); 0 or all: every "
                        f"window (default: {LIBRARY_WINDOWS} with --db, without --taggram; "
                        "else every window)")
    p.add_argument("--taggram", default=None, metavar="PATH",
                   help="write each file's window x tag scores as .npy and .png into "
                        "this folder (default: none)")
    p.add_argument("--embeddings", default=None, metavar="PATH", nargs="?",
                   const=EMBEDDINGS_IN_DB,
                   help="write penultimate-layer embeddings to this .npz; with --db and "
                        "no PATH, store them in the database (default: none)")
    p.add_argument("--embedding-layer", default=None, metavar="LAYER",
                   help="with --embeddings PATH: write this layer's output instead of the "
                        "penultimate layer's, any layer giving one vector per window (the "
                        "musicnn package's models: max_pool, mean_pool, pooled: its "
                        "pooled features) (default: the family's penultimate layer)")
    p.add_argument("--batch-size", type=int, default=32, metavar="N",
                   help="windows per model call (default 32)")
    p.add_argument("--workers", type=workers_count, default=None, metavar="N",
                   help="decoder threads, or auto (default): 2, and more (up to the "
                        "cores) when the model outpaces them, sized from the rates "
                        "measured while tagging")
    p.add_argument("--engine", default=None, choices=ENGINES,
                   help="what runs the model: auto: the fastest of keras-bf16 and "
                        "tflite-int8 on this machine whose top-5 tags agree with keras's by "
                        "0.98 or more on windows of the inputs, else keras, measured once per "
                        "model and machine (cached) and named in one line (the default; "
                        "$TAGGER_ENGINE names another; keras with --runner); "
                        "keras: Keras on TensorFlow, float32's exact scores; xla: "
                        "Keras compiled with XLA (a few seconds of compiling at the start; "
                        "bench/bench_tag.py tells whether it pays on your machine); "
                        "keras-bf16: Keras in mixed bfloat16, the front end and the tag "
                        "scores float32 (fast on CPUs with AMX-BF16 or AVX-512 BF16, a "
                        "line says which; on recorded music, scores within 0.012 of keras's); the "
                        "model converted to TFLite (a few seconds at the start) and run "
                        "with XNNPACK on every core by LiteRT (ai-edge-litert, or "
                        "TensorFlow's own interpreter when it is not installed: a line "
                        "says so): tflite: float32; tflite-fp16: float16 weights; "
                        "tflite-dynamic: int8 weights (dynamic-range quantisation); "
                        "tflite-int8: int8 weights and activations, ranges measured on up "
                        "to 32 windows of the inputs (the whole sample-level CNN; of a "
                        "spectrogram model, the convolutions over the log-mel image, the "
                        "front end and the rest float32; the converted model is cached for "
                        "a rerun on the same model and windows). The tflite engines give no "
                        "--embeddings")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out, --embeddings, --db or taggram index "
                        "that tag.py did not write (default: refuse; an input is never "
                        "replaced)")
    p.add_argument("--db", default=None, metavar="PATH",
                   help="stream the results into this SQLite database as they come (one "
                        "row per file); a rerun skips files tagged already by the same "
                        "model (same path, size and time); read it with tagger-library "
                        "and tagger-similar (default: none)")
    p.add_argument("--rescan", action="store_true",
                   help="with --db: tag every file again, even those up to date there")
    p.add_argument("--write-tags", action="store_true",
                   help="write the selected tags (--top-k, --threshold) into each audio "
                        "file's own metadata (ID3 TXXX:tagger for MP3 and WAV, Vorbis "
                        "comments for FLAC/Ogg/Opus, MP4 freeform atoms for M4A); the "
                        "audio data is never touched")
    p.add_argument("--write-scores", action="store_true",
                   help="with --write-tags: also write the tags' scores")
    p.add_argument("--genre", action="store_true",
                   help="with --write-tags: also set the genre (TCON, GENRE, \u00a9gen) to "
                        "the highest-scoring selected tag that is a genre of the model's tag "
                        "set (MagnaTagATune, MSD Last.fm, MTG-Jamendo); none: left as it is")
    p.add_argument("--dry-run", action="store_true",
                   help="with --write-tags: print what would change and change nothing")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    from tagger.commands.beam_flags import add_runner_flags

    add_runner_flags(p, "tag on an Apache Beam pipeline with RunInference instead of this "
                        "process: --out PATH (.jsonl, or .parquet) is required (needs "
                        "requirements-beam.txt; see docs/commands/tag.md)")
    args = p.parse_args(argv)
    if args.runner is None:  # a Beam pipeline writes what --out's suffix says
        suffix = cli.format_of_out(args, {".json": "json", ".csv": "csv"})
        if suffix in (".jsonl", ".parquet"):  # the table would go into it
            p.error(f"--out {args.out!r}: tag.py writes {suffix} results on a Beam pipeline "
                    "(--runner direct); here its report is a table, JSON (.json) or CSV "
                    "(.csv), and tagger-library export writes a --db's rows as JSON lines "
                    "or Parquet")
    return args


def unread_flags(args) -> None:
    """A local run's flags where nothing reads them: --overwrite where no
    file is written, --format with --db and no --out (no report is made),
    --top-k and --threshold where neither a table or JSON report,
    --write-tags nor --taggram chooses tags (a CSV report holds every tag's
    score)."""
    from tagger.errors import flags_do_not_apply

    if args.overwrite and not (args.out or args.db or args.taggram
                               or args.embeddings not in (None, EMBEDDINGS_IN_DB)):
        raise flags_do_not_apply(["--overwrite"], "with --out, --embeddings PATH, --db or "
                                 "--taggram", "nothing else is written to a file")
    report = args.out is not None or args.db is None  # with --db and no --out: none
    if not report and cli.given_flags(args, ("format",)):
        raise flags_do_not_apply(["--format"], "to a report", "with --db and no --out none is "
                                 "made", "add --out PATH")
    chosen = cli.given_flags(args, ("top_k", "threshold"))
    if chosen and not (args.write_tags or args.taggram or (report and args.format != "csv")):
        why = "a CSV report holds every tag's score" if report else (
            "with --db and no --out no report is made")
        raise flags_do_not_apply(chosen, "to a table or JSON report, --write-tags and --taggram",
                                 why)


def main(argv=None):
    return cli.main(run, parse_args(argv))


def _default_engine(args) -> str:
    """auto (or $TAGGER_ENGINE); keras with --runner, where each worker
    would choose for itself."""
    from tagger.inference.engine.registry import default_engine

    return "keras" if args.runner is not None else default_engine()


def run(args) -> int:
    from tagger.pretrained import resolve_model

    if args.runner is None:
        unread_flags(args)

    given = args.model
    args.model = resolve_model(given, progress=not getattr(args, "no_progress", False))

    import os
    import sys

    from tagger.inference.tag.config import TagConfig
    from tagger.inference.tag.run import tag

    config = TagConfig(
        model=args.model, model_name=given if args.model != given else None,
        inputs=tuple(args.inputs), top_k=args.top_k,
        threshold=args.threshold, format=args.format, out=args.out,
        recursive=args.recursive, hop=args.hop, taggram_dir=args.taggram,
        embeddings=args.embeddings, embedding_layer=args.embedding_layer,
        batch_size=args.batch_size, workers=args.workers,
        progress=not args.no_progress, engine=args.engine or _default_engine(args),
        overwrite=args.overwrite,
        db=args.db, rescan=args.rescan, write_tags=args.write_tags,
        write_scores=args.write_scores, genre=args.genre, dry_run=args.dry_run,
        windows=args.windows)
    from tagger.commands.beam_flags import beam_run

    beam = beam_run(args)
    if beam is not None:
        from tagger.errors import flags_do_not_apply
        from tagger.inference.beam_tagging import tag_with_beam

        local = [flag for flag, on in (("--db", args.db), ("--taggram", args.taggram),
                                       ("--embeddings", args.embeddings is not None),
                                       ("--embedding-layer", args.embedding_layer),
                                       ("--write-tags", args.write_tags),
                                       ("--windows", args.windows is not None),
                                       ("--workers", args.workers is not None),
                                       ("--format", args.format != "table"))
                 if on]
        if local:
            raise flags_do_not_apply(local, "without --runner",
                                     "the Beam pipeline writes JSON lines or Parquet to --out")
        tag_with_beam(config, beam, log=lambda line: print(line, file=sys.stderr))
        return 0
    summary = tag(config, quiet_decoders=True)
    shown = not args.out and not args.db  # the report, on stdout
    if shown:
        sys.stdout.write(summary.report)
        sys.stdout.flush()
    if summary.note and summary.tagged and not (shown and args.format != "csv"):
        print(f"note: {summary.note}", file=sys.stderr)  # no report on stdout carries it
    for line in summary.tag_lines:
        print(line, file=sys.stderr)
    if summary.out_written:
        print(f"wrote {args.out}: {args.format} report of {summary.tagged} file"
              f"{'s' if summary.tagged != 1 else ''}", file=sys.stderr)
    if args.db:
        print(f"{args.db}: {summary.db_written} file{'s' if summary.db_written != 1 else ''} "
              f"tagged and stored, {summary.db_skipped} up to date and skipped"
              + ("" if args.rescan or not summary.db_skipped else " (--rescan redoes them)"),
              file=sys.stderr)
        if summary.db_other_engines:
            others = ", ".join(f"{count} by {engine}"
                               for engine, count in summary.db_other_engines.items())
            print(f"{args.db}: of the files up to date, {others} (another engine than "
                  f"{config.engine}, this run's; --rescan tags them again with it)",
                  file=sys.stderr)
        failed, unchanged = summary.db_failed, summary.db_failures_skipped
        if failed:
            print(f"{args.db}: {failed} file{'s' if failed != 1 else ''} that could not be "
                  f"tagged stored with the reason (tagger-library failures --db {args.db} "
                  "lists them; a rerun tries a file again once it changes)", file=sys.stderr)
        if unchanged:
            print(f"{args.db}: {unchanged} file{'s' if unchanged != 1 else ''} that could not "
                  "be tagged before, unchanged since, not tried again (--rescan tries them; "
                  "tagger-library failures lists them)", file=sys.stderr)
        if summary.db_changed:
            changed = summary.db_changed
            one = changed == 1
            print(f"{args.db}: {changed} file{'' if one else 's'} changed while "
                  f"{'it was' if one else 'they were'} tagged, not stored; the next run tags "
                  f"{'it' if one else 'them'} again", file=sys.stderr)
    if summary.failures:
        line = (f"{len(summary.failures)} of {len(summary.failures) + summary.tagged} "
                "inputs skipped")
        if args.out and not summary.out_written:
            line += (f"; nothing was tagged, so {args.out} was left as it was"
                     if os.path.exists(args.out) else
                     f"; nothing was tagged, so {args.out} was not written")
        print(line, file=sys.stderr)
    return summary.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
