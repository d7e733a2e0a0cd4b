"""The train command's augmentation, noisy-student and distillation flags,
read back as a NoisyStudentConfig, a DistillationConfig and a number of
rounds (tagger.training.rounds trains them). `--teacher` distils on
records without labels (no tag names, or an unlabelled train split) and
trains a noisy student on labelled records. Free of TensorFlow imports so
that `--help` stays fast."""

from __future__ import annotations

from tagger.cli import given_flags, non_negative_float, positive_float, positive_int
from tagger.errors import UserError, flags_do_not_apply

DEFAULTS = {"unlabelled_split": "student", "unlabelled_data_dir": None,
            "pseudo_label_weight": 1.0, "rounds": 1}


def add_flags(parser) -> None:
    group = parser.add_argument_group(
        "augmentation and noisy-student training (Won, Choi, Serra 2021)")
    group.add_argument("--augment", action="store_true",
                       help="noise the training windows with the in-graph augmentation "
                            "chain (with --teacher: the labelled half too)")
    group.add_argument("--teacher", action="append", default=None, metavar="MODEL",
                       help="a model.keras/.hdf5 from train.py: train a student on half "
                            "labelled, half unlabelled windows with its soft labels; on "
                            "records without labels, a pretrained name or model file to "
                            "distil, repeated for several (docs/distillation.md) "
                            "(default: none, supervised training)")
    group.add_argument("--temperature", type=positive_float, default=None, metavar="T",
                       help="distillation: the temperature of the soft targets and scores "
                            "(default: 1, plain BCE on the soft targets)")
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


def distils(args) -> bool:
    """Whether --teacher asks for distillation: the --data-dir records name no
    tags (build_folder.py without --labels) or their train split holds no
    labels (unreadable records: no, and training says why)."""
    from tagger.records.info import is_labelled, load_info

    if not getattr(args, "teacher", None):
        return False
    try:
        info = load_info(args.data_dir)
    except UserError:
        return False
    return not info.tag_names or ("train" in info.splits
                                     and not is_labelled(info, "train"))


def settings(args):
    """The NoisyStudentConfig the flags ask for; a flag that needs --teacher
    without it is a UserError."""
    from tagger.config import NoisyStudentConfig

    given = given_flags(args, DEFAULTS)
    if args.teacher is None:
        if given:
            raise flags_do_not_apply(given, "with --teacher MODEL (noisy-student training)",
                                     instead="name a teacher")
        return NoisyStudentConfig()
    if distils(args):
        noisy = [flag for flag in given if flag != "--rounds"]
        if noisy:
            raise flags_do_not_apply(noisy, "to noisy-student training on labelled records",
                                     "the records in --data-dir hold no labels: --teacher "
                                     "distils")
        return NoisyStudentConfig()
    if len(args.teacher) > 1:
        raise UserError("noisy-student training takes one --teacher; several teachers are "
                        "distilled, averaged, on records without labels")
    values = {name: getattr(args, name) if getattr(args, name) is not None else default
              for name, default in DEFAULTS.items() if name != "rounds"}
    return NoisyStudentConfig(teacher=args.teacher[0], **values)


def distillation(args):
    """The DistillationConfig the flags ask for; --temperature without
    distillation is a UserError."""
    from tagger.config import DistillationConfig

    if distils(args):
        return DistillationConfig(teachers=tuple(args.teacher),
                                  temperature=args.temperature or 1.0)
    if getattr(args, "temperature", None) is not None:
        raise flags_do_not_apply(["--temperature"], "to distillation (--teacher on records "
                                 "without labels)")
    return DistillationConfig()


def rounds(args) -> int:
    """The number of teacher -> student rounds the flags ask for."""
    return args.rounds or 1
