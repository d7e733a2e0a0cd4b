"""The train command's augmentation and noisy-student flags, read back as a
NoisyStudentConfig and a number of rounds (tagger.training.rounds trains
them). Free of TensorFlow imports so that `--help` stays fast."""

from __future__ import annotations

from tagger.cli import non_negative_float, positive_int
from tagger.errors import flags_do_not_apply

DEFAULTS = {"unlabelled_split": "student", "unlabelled_data_dir": None,
            "pseudo_label_weight": 1.0, "rounds": 1}


def add_flags(parser) -> None:
    group = parser.add_argument_group(
        "augmentation and noisy-student training (Won, Choi, Serra 2021)")
    group.add_argument("--augment", action="store_true",
                       help="noise the training windows with the in-graph augmentation "
                            "chain (with --teacher: the labelled half too)")
    group.add_argument("--teacher", default=None, metavar="MODEL",
                       help="a model.keras/.hdf5 from train.py: train a student on half "
                            "labelled, half unlabelled windows with its soft labels "
                            "(default: none, supervised training)")
    group.add_argument("--unlabelled-split", default=None, metavar="SPLIT",
                       help="with --teacher: the unlabelled split (default: student)")
    group.add_argument("--unlabelled-data-dir", default=None, metavar="PATH",
                       help="with --teacher: records holding the unlabelled split "
                            "(default: --data-dir)")
    group.add_argument("--pseudo-label-weight", type=non_negative_float, default=None,
                       metavar="W", help="with --teacher: weight of the pseudo-label BCE "
                                         "(default: 1.0)")
    group.add_argument("--rounds", type=positive_int, default=None, metavar="N",
                       help="with --teacher: teacher->student rounds, each student the "
                            "next round's teacher (default: 1)")


def settings(args):
    """The NoisyStudentConfig the flags ask for; a flag that needs --teacher
    without it is a UserError."""
    from tagger.config import NoisyStudentConfig

    given = [name for name in DEFAULTS if getattr(args, name) is not None]
    if args.teacher is None:
        if given:
            raise flags_do_not_apply(["--" + name.replace("_", "-") for name in given],
                                     "with --teacher MODEL (noisy-student training)",
                                     instead="name a teacher")
        return NoisyStudentConfig()
    values = {name: getattr(args, name) if getattr(args, name) is not None else default
              for name, default in DEFAULTS.items() if name != "rounds"}
    return NoisyStudentConfig(teacher=args.teacher, **values)


def rounds(args) -> int:
    """The number of teacher -> student rounds the flags ask for."""
    return args.rounds or 1
