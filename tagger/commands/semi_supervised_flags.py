"""The train command's augmentation, noisy-student and distillation flags,
read back as a NoisyStudentConfig, a DistillationConfig and a number of
rounds (tagger.training.rounds trains them). The user names the mode:
`--teacher MODEL` trains a noisy student on labelled records, `--distil
MODEL` (repeated for several) teaches a student the teachers' scores on
records without labels. Free of TensorFlow imports so that `--help` stays
fast."""

from __future__ import annotations

from tagger.cli import given_flags, model_name_or_path
from tagger.commands.train_ranges import ranged
from tagger.errors import UserError, flags_do_not_apply

DEFAULTS = {"unlabelled_split": "student", "unlabelled_data_dir": None,
            "pseudo_label_weight": 1.0, "rounds": 1}


def add_flags(parser) -> None:
    group = parser.add_argument_group(
        "augmentation and noisy-student training (Won, Choi, Serra 2021)")
    group.add_argument("--augment", action="store_true",
                       help="noise the training windows with the in-graph augmentation "
                            "chain (with --teacher: the labelled half too)")
    group.add_argument("--teacher", action="append", type=model_name_or_path, default=None,
                       metavar="MODEL",
                       help="noisy-student training: a model.keras/.hdf5 from train.py; "
                            "a student trains on half labelled, half unlabelled windows "
                            "with its soft labels (docs/semi_supervised.md) (default: "
                            "none, supervised training)")
    group.add_argument("--distil", action="append", type=model_name_or_path, default=None,
                       metavar="MODEL",
                       help="distillation: a pretrained name or model file whose scores a "
                            "student learns on records without labels, repeated for "
                            "several, averaged (docs/distillation.md) (default: none)")
    group.add_argument("--temperature", type=ranged("temperature"), default=None, metavar="T",
                       help="with --distil: the temperature of the soft targets and "
                            "scores (default: 1, plain BCE on the soft targets)")
    group.add_argument("--unlabelled-split", default=None, metavar="SPLIT",
                       help="with --teacher: the unlabelled split (default: student)")
    group.add_argument("--unlabelled-data-dir", default=None, metavar="PATH",
                       help="with --teacher: records holding the unlabelled split "
                            "(default: --data-dir)")
    group.add_argument("--pseudo-label-weight", type=ranged("pseudo_label_weight"), default=None,
                       metavar="W", help="with --teacher: weight of the pseudo-label BCE "
                                         "(default: 1.0)")
    group.add_argument("--rounds", type=ranged("rounds"), default=None, metavar="N",
                       help="with --teacher or --distil: teacher->student rounds, each "
                            "student the next round's teacher (default: 1)")


def _labelled(data_dir: str) -> bool | None:
    """Whether the records in `data_dir` hold labels to train on (tag names
    and a labelled train split); None where they cannot be read (training
    says why)."""
    from tagger.records.info import is_labelled, load_info

    try:
        info = load_info(data_dir)
    except UserError:
        return None
    return bool(info.tag_names) and ("train" not in info.splits or is_labelled(info, "train"))


def settings(args):
    """The NoisyStudentConfig the flags ask for; a flag that needs --teacher
    without it, or --teacher on records without labels, is a UserError."""
    from tagger.config import NoisyStudentConfig

    given = given_flags(args, DEFAULTS)
    noisy = [flag for flag in given if flag != "--rounds"]
    if args.teacher is None:
        if noisy:
            raise flags_do_not_apply(noisy, "with --teacher MODEL (noisy-student training)",
                                     "this run distils: --distil" if args.distil else "",
                                     instead="" if args.distil else "name a teacher")
        if given and not args.distil:
            raise flags_do_not_apply(given, "with --teacher MODEL or --distil MODEL",
                                     instead="name a teacher")
        return NoisyStudentConfig()
    if args.distil:
        raise UserError("--teacher (noisy-student training, on labelled records) and "
                        "--distil (a student taught on records without labels) do not "
                        "combine; choose one")
    if len(args.teacher) > 1:
        raise UserError("noisy-student training takes one --teacher; several teachers "
                        "are distilled with --distil, repeated, on records without labels")
    teacher = args.teacher[0]
    if _labelled(args.data_dir) is False:
        raise UserError(f"--teacher trains a noisy student on labelled records, but "
                        f"{args.data_dir!r} holds no labels to train on; to teach a "
                        f"student {teacher}'s scores on them, use --distil {teacher}")
    values = {name: getattr(args, name) if getattr(args, name) is not None else default
              for name, default in DEFAULTS.items() if name != "rounds"}
    return NoisyStudentConfig(teacher=teacher, **values)


def distillation(args):
    """The DistillationConfig the flags ask for; --temperature without
    --distil, or --distil on labelled records, is a UserError."""
    from tagger.config import DistillationConfig

    if not args.distil:
        if getattr(args, "temperature", None) is not None:
            raise flags_do_not_apply(["--temperature"], "with --distil MODEL (distillation)",
                                     instead="name a model to distil")
        return DistillationConfig()
    if _labelled(args.data_dir):
        raise UserError(f"--distil teaches a student its teachers' scores on records "
                        f"without labels, but {args.data_dir!r} holds labels; train on "
                        f"them (no --distil), or --teacher MODEL for noisy-student "
                        f"training on them and unlabelled audio")
    return DistillationConfig(teachers=tuple(args.distil),
                              temperature=args.temperature or 1.0)


def rounds(args) -> int:
    """The number of teacher -> student rounds the flags ask for."""
    return args.rounds or 1
