"""The whole pipeline on the embedded synthetic dataset, offline, on a laptop.

synthetic MagnaTagATune-layout dataset -> TFRecords -> train a small
ReSE+multi sample-level CNN (or another family) -> evaluate on the test split.
A step is skipped when its output is already there and was made with the
settings asked for, so a rerun (or a run after an interruption) continues
where it stopped; a step whose settings changed is redone.

    python demo.py
    python demo.py --semi-supervised   # a teacher against noisy students
    python demo.py --distil            # MTT_musicnn teaches ReSE+multi on real music
    python demo.py --own-tags          # your own tags on musicnn's taggers, beside from scratch
"""

from __future__ import annotations

import os

from tagger import cli
from tagger.cli import (
    ArgumentParser,
    given_flags,
    non_negative_int,
    number_in_range,
    positive_float,
    positive_int,
)
from tagger.datasets.synthetic import MAX_CLIPS, MIN_CLIPS
from tagger.demos.pipeline import DemoConfig

# Clips of at least one 2.68 s segment with a margin (the build skips a clip
# that holds no whole segment), at most the synthetic dataset's 600 s; a
# family with longer segments (FCN: 29 s) needs its segment plus the margin.
MIN_SECONDS, MAX_SECONDS = 3.0, 600.0
SEGMENT_MARGIN = 0.1

SEMI_SUPERVISED_FLAGS = ("seeds", "teacher_epochs", "student_epochs")
DISTIL_ONLY_FLAGS = ("teacher", "steps_per_epoch")
DISTIL_FLAGS = DISTIL_ONLY_FLAGS + ("music", "epochs", "batch_size", "lr", "width")
OWN_TAGS_ONLY_FLAGS = ("per_tag", "from_model")
OWN_TAGS_FLAGS = OWN_TAGS_ONLY_FLAGS + ("music", "epochs", "batch_size", "lr")


def parse_args(argv=None):
    from tagger.models import FAMILY_NAMES

    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work-dir", default="demo_output",
                   help="where the dataset, records and runs go (default: demo_output)")
    p.add_argument("--model", default=None, choices=FAMILY_NAMES,
                   help=f"model family to train, in its demo setting (default: "
                        f"{DemoConfig.model})")
    p.add_argument("--clips", type=number_in_range(int, MIN_CLIPS, MAX_CLIPS), default=None,
                   metavar="N",
                   help="synthetic clips (default: 400; 600 with --semi-supervised)")
    p.add_argument("--seconds", type=number_in_range(float, MIN_SECONDS, MAX_SECONDS),
                   default=None, metavar="S",
                   help="clip length (default: 29.1; 6 with --semi-supervised)")
    p.add_argument("--epochs", type=positive_int, default=None, metavar="N",
                   help="training epochs (default: the family's demo setting)")
    p.add_argument("--width", type=positive_float, default=None, metavar="W",
                   help="samplecnn channel width (default: 0.125)")
    p.add_argument("--window-segments", type=positive_int, default=None, metavar="K",
                   help="record segments (2.68 s; FCN's: 29 s) per training "
                        "window (default: the family's; keep it within the clip length)")
    p.add_argument("--batch-size", type=positive_int, default=None, metavar="N",
                   help="training batch size (default: the family's demo setting)")
    p.add_argument("--lr", type=positive_float, default=None, metavar="LR",
                   help="Adam learning rate (default: the family's demo setting)")
    p.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1, metavar="N",
                   help="decoding processes for the build (default: all cores)")
    p.add_argument("--seed", type=non_negative_int, default=0, metavar="N")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    semi = p.add_argument_group("noisy-student demonstration")
    semi.add_argument("--semi-supervised", action="store_true",
                      help="instead: teacher vs noisy students (compact and equal size) "
                           "on a small labelled and a large unlabelled split")
    semi.add_argument("--seeds", type=positive_int, default=None,
                      help="with --semi-supervised: seeds, one teacher and two students "
                           "each, seeded --seed, --seed + 1, ... (default: 2)")
    semi.add_argument("--teacher-epochs", type=positive_int, default=None, metavar="N",
                      help="with --semi-supervised: the teacher's training epochs "
                           "(default: 12)")
    semi.add_argument("--student-epochs", type=positive_int, default=None, metavar="N",
                      help="with --semi-supervised: each student's training epochs; an "
                           "epoch is one pass over the labelled clips (default: 30)")
    distil = p.add_argument_group("distillation demonstration")
    distil.add_argument("--distil", action="store_true",
                        help="instead: a trained tagger (--teacher) teaches the paper-size "
                             "ReSE+multi sample-level CNN on real music without labels "
                             "(Debian's game soundtracks, fetched with apt-get download, or "
                             "--music), measured against it on held-out tracks; in "
                             "WORK_DIR/distil")
    distil.add_argument("--music", default=None, metavar="DIR",
                        help="with --distil or --own-tags: a folder of your own audio, with "
                             "--own-tags a tag per top-level folder (default: Debian's game "
                             "soundtracks)")
    distil.add_argument("--teacher", type=cli.model_name_or_path, default=None,
                        metavar="MODEL",
                        help="with --distil: the teacher, a pretrained name or a saved model "
                             "(default: MTT_musicnn)")
    distil.add_argument("--steps-per-epoch", type=positive_int, default=None, metavar="N",
                        help="with --distil: training batches per epoch (default: 150)")
    own = p.add_argument_group("your own tags demonstration")
    own.add_argument("--own-tags", action="store_true",
                     help="instead: label each of Debian's game soundtracks (or --music's "
                          "folders) by its name in a few files, learn the tags on a trained "
                          "model's body (train.py --from) and from scratch on the same "
                          "split, and measure both on the other files; in WORK_DIR/own_tags")
    own.add_argument("--from", dest="from_model", type=cli.model_name_or_path,
                     default=None, metavar="MODEL",
                     help="with --own-tags: the trained model whose body learns the tags, "
                          "or musicnn-package, the musicnn package's four, their heads' "
                          "scores averaged (default: musicnn-package)")
    own.add_argument("--per-tag", type=positive_int, default=None, metavar="N",
                     help="with --own-tags: labelled files per tag, at most half of a "
                          "folder's (default: 10)")
    return p.parse_args(argv)


def main(argv=None):
    return cli.main(run, parse_args(argv))


def run(args):
    from tagger.errors import flags_do_not_apply

    own_only = [flag.replace("--from-model", "--from")  # its destination's name
                for flag in given_flags(args, OWN_TAGS_ONLY_FLAGS)]
    if own_only and not args.own_tags:
        raise flags_do_not_apply(own_only, "with --own-tags", instead="add --own-tags")
    distil_only = given_flags(args, DISTIL_ONLY_FLAGS)
    if distil_only and not args.distil:
        raise flags_do_not_apply(distil_only, "with --distil", instead="add --distil")
    if "music" in args.given and not (args.distil or args.own_tags):
        raise flags_do_not_apply(["--music"], "with --distil and --own-tags",
                                 instead="add one of them")
    if args.own_tags:
        from tagger.demos.own_tags import run_own_tags_demo

        lines = run_own_tags_demo(own_tags_config(args))
    elif args.distil:
        from tagger.demos.distil import run_distil_demo

        lines = run_distil_demo(distil_config(args))
    elif args.semi_supervised:
        from tagger.demos.semi_supervised import run_semi_supervised_demo

        lines = run_semi_supervised_demo(semi_supervised_config(args))
    else:
        from tagger.demos.pipeline import run_demo

        lines = run_demo(config_from_args(args))
    for line in lines:
        print(line, flush=True)


def distil_config(args):
    """The DistilDemoConfig; flags of the other demos are errors."""
    from tagger.demos.distil import DistilDemoConfig
    from tagger.errors import flags_do_not_apply

    wrong = _model_and_given(args, ("clips", "seconds", "window_segments")
                             + SEMI_SUPERVISED_FLAGS, ["--semi-supervised"] * args.semi_supervised)
    if wrong:
        raise flags_do_not_apply(wrong, "without --distil", "it trains the ReSE+multi "
                                 "sample-level CNN on real music")
    settings = _given_values(args, DISTIL_FLAGS)
    return DistilDemoConfig(work_dir=os.path.join(args.work_dir, "distil"),
                            workers=args.workers, seed=args.seed,
                            progress=not args.no_progress, **settings)


def own_tags_config(args):
    """The OwnTagsDemoConfig; flags of the other demos are errors."""
    from tagger.demos.own_tags import OwnTagsDemoConfig
    from tagger.errors import flags_do_not_apply

    switches = ["--distil"] * args.distil + ["--semi-supervised"] * args.semi_supervised
    wrong = _model_and_given(args, ("clips", "seconds", "window_segments", "width")
                             + SEMI_SUPERVISED_FLAGS, switches)
    if wrong:
        raise flags_do_not_apply(wrong, "without --own-tags", "it learns folder tags on a "
                                 "trained model's body and its architecture from scratch")
    settings = _given_values(args, OWN_TAGS_FLAGS)
    return OwnTagsDemoConfig(work_dir=os.path.join(args.work_dir, "own_tags"),
                             workers=args.workers, seed=args.seed,
                             progress=not args.no_progress, **settings)


def semi_supervised_config(args):
    """The SemiSupervisedDemoConfig; flags of the single-model demo are errors."""
    from tagger.demos.semi_supervised import SemiSupervisedDemoConfig
    from tagger.errors import flags_do_not_apply

    wrong = _model_and_given(args, ("epochs", "width", "window_segments", "batch_size", "lr"))
    if wrong:
        raise flags_do_not_apply(wrong, "without --semi-supervised", "its teacher and "
                                 "students are fixed sample-level CNNs",
                                 "use --teacher-epochs, --student-epochs"
                                 if "--epochs" in wrong else "")
    settings = _given_values(args, SEMI_SUPERVISED_FLAGS + ("clips", "seconds"))
    return SemiSupervisedDemoConfig(work_dir=args.work_dir, workers=args.workers, seed=args.seed,
                                    progress=not args.no_progress, **settings)


def config_from_args(args):
    """The DemoConfig: the family's demo settings, overridden by the flags given."""
    from tagger.demos.pipeline import segment_seconds
    from tagger.errors import UserError, flags_do_not_apply
    from tagger.models import FAMILIES, family

    # Each family's demo setting (FamilySpec.demo): a small model and Adam, so
    # a CPU learns the synthetic tags in minutes; the paper settings stay
    # train.py's defaults.
    model = args.model or DemoConfig.model
    spec = family(model)
    settings = {"batch_size": spec.demo.batch_size, "lr": spec.demo.lr,
                "epochs": spec.demo.epochs}
    model_args = dict(spec.demo.model_args)
    if args.width is not None:
        if "width" not in spec.flag_dests:
            owners = [name for name, other in FAMILIES.items() if "width" in other.flag_dests]
            raise flags_do_not_apply(["--width"], f"to --model {' and '.join(owners)}",
                                     f"this demo trains --model {model}")
        model_args["width"] = args.width
    semi = given_flags(args, SEMI_SUPERVISED_FLAGS)
    if semi:
        raise flags_do_not_apply(semi, "with --semi-supervised",
                                 instead="add --semi-supervised")
    settings.update(_given_values(args, ("epochs", "batch_size", "lr")))
    seconds = 29.1 if args.seconds is None else args.seconds
    segment = segment_seconds(model)
    if seconds < segment + SEGMENT_MARGIN:
        raise UserError(f"--seconds {seconds:g} holds no whole {segment:g} s segment of "
                        f"--model {model} (its records' unit); give --seconds "
                        f"{segment + SEGMENT_MARGIN:g} or more")
    return DemoConfig(work_dir=args.work_dir, model=model, model_args=model_args,
                      clips=400 if args.clips is None else args.clips, seconds=seconds,
                      workers=args.workers, window_segments=args.window_segments,
                      seed=args.seed, progress=not args.no_progress, **settings)


def _model_and_given(args, names, switches=()) -> list:
    """--model (when given), then `switches`, then the flags among
    `names` that were given: what another demo's command line set."""
    return given_flags(args, ["model"]) + list(switches) + given_flags(args, names)


def _given_values(args, names) -> dict:
    """{flag destination: value} of the flags among `names` that were given."""
    return {name: getattr(args, name) for name in names if name in args.given}


if __name__ == "__main__":
    raise SystemExit(main())
