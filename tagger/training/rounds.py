"""Noisy-student training over several rounds, each student the next
round's teacher (Xie et al. 2020; Won, Choi, Serra 2021)."""

from __future__ import annotations

import dataclasses

from tagger.errors import UserError


def train_rounds(config, rounds: int = 1, log=None) -> dict:
    """Trains `rounds` noisy-student rounds: round 1 with the configured
    teacher in the run folder `run_name`, round r > 1 in `run_name-round<r>`
    with round r - 1's model.keras as its teacher (distillation runs too:
    their only teacher). With `resume`, each round
    resumes as any run does (a finished one says so and is not trained
    again). `log(line)` hears which round starts with which teacher (when
    there is more than one). Returns the last round's metrics."""
    from tagger.config import join_path
    from tagger.training.run import check_initial_stage, default_run_name, run_dir_of, train

    if config.pretrained.from_model:  # one run: its head, and fine-tuning if asked
        from tagger.training import head_run

        if rounds > 1:
            raise UserError("--rounds applies to noisy-student training and distillation, "
                            "not to a tagger on a trained model's body (--from)")
        return head_run.train(config)
    distilled = bool(config.distillation.teachers)
    if rounds > 1 and not (config.noisy_student.teacher or distilled):
        raise UserError("--rounds applies to noisy-student training and distillation; "
                        "name a --teacher or --distil")
    name = config.run_name or default_run_name(config)
    names = [name if r == 1 else f"{name}-round{r}" for r in range(1, rounds + 1)]
    if rounds > 1 and config.initial_stage > 0:
        first = run_dir_of(dataclasses.replace(config, run_name=name))
        raise UserError(
            f"--initial-stage restarts one run, and --rounds {rounds} trains {rounds}, each "
            "round's teacher the model of the round before, which a restart of that round "
            "replaces; restart one round: the first with --rounds 1, a later one as a run of "
            f"its own (round 2: --run-name {names[1]} --teacher "
            f"{join_path(first, 'model.keras')})")
    check_initial_stage(dataclasses.replace(config, run_name=name))
    metrics = None
    for r in range(1, rounds + 1):
        current = dataclasses.replace(config, run_name=names[r - 1])
        if r > 1:
            teacher = join_path(metrics["run_dir"], "model.keras")
            current = dataclasses.replace(current, **(
                {"distillation": dataclasses.replace(config.distillation, teachers=(teacher,))}
                if distilled else
                {"noisy_student": dataclasses.replace(config.noisy_student, teacher=teacher)}))
        if rounds > 1 and log is not None:
            teachers = current.distillation.teachers or (current.noisy_student.teacher,)
            log(f"round {r} of {rounds}: teacher {', '.join(teachers)}")
        metrics = train(current)  # with resume, a finished round returns its metrics
    return metrics
