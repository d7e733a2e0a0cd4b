"""train.py's augmentation and noisy-student flags, and the loop over rounds
in which each student becomes the next teacher (kept free of TensorFlow
imports so that `train.py --help` stays fast)."""

from __future__ import annotations

import dataclasses

from tagger.cli import non_negative_float, positive_int
from tagger.errors import UserError

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
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            raise UserError(f"{flags} only apply with --teacher MODEL (noisy-student "
                            "training); drop them or name a teacher")
        return NoisyStudentConfig()
    values = {name: getattr(args, name) if getattr(args, name) is not None else default
              for name, default in DEFAULTS.items() if name != "rounds"}
    return NoisyStudentConfig(teacher=args.teacher, **values)


def rounds(args) -> int:
    return args.rounds or 1


def train_rounds(config, rounds: int = 1) -> dict:
    """Trains `rounds` noisy-student rounds: round 1 with the configured
    teacher in the run folder `run_name`, round r > 1 in `run_name-round<r>`
    with round r - 1's model.keras as its teacher. With `resume`, each round
    resumes as any run does (a finished one says so and is not trained
    again). Returns the last round's metrics."""
    from tagger.config import join_path
    from tagger.training.run import default_run_name, train

    if rounds > 1 and not config.noisy_student.teacher:
        raise UserError("--rounds applies to noisy-student training; name a --teacher")
    name = config.run_name or default_run_name(config)
    metrics = None
    for r in range(1, rounds + 1):
        current = dataclasses.replace(config, run_name=name if r == 1 else f"{name}-round{r}")
        if r > 1:
            teacher = join_path(metrics["run_dir"], "model.keras")
            current = dataclasses.replace(current, noisy_student=dataclasses.replace(
                config.noisy_student, teacher=teacher))
        if rounds > 1:
            print(f"round {r} of {rounds}: teacher {current.noisy_student.teacher}",
                  flush=True)
        metrics = train(current)  # with resume, a finished round returns its metrics
    return metrics
