"""The model files a run learns from, kept in its state.json by their
SHA-256 (`inference.common.model_fingerprint`): a trained model's body
(--from, `RunState.base_model_sha256`) and a student's teachers (--teacher
or each --distil, `RunState.teacher_sha256`), joined by `+` in their order.

A continued run must find the files it started on at the paths its
config.json names: another file there (a model saved again, or replaced
by another of the same tags and rate) is refused in one line, as the run
would go on learning from another model; a student's teachers are checked
before they score anything. A run started by an earlier version, which
kept no SHA-256 of its teachers, is taken to have started on the files it
finds now: it says so in one line and keeps their SHA-256 from then on.
"""

from __future__ import annotations

from tagger import fileio
from tagger.config import TrainConfig, join_path
from tagger.errors import UserError
from tagger.training.run_state import RunState, read_state


def trained(state: RunState) -> bool:
    """Whether the run of `state` has trained (a run to continue, not a new one)."""
    return bool(state.history or state.last_checkpoint or state.best_checkpoint)


def continuing_flag(config: TrainConfig) -> str:
    """The flag that continues the run of `config`: --resume, or
    --initial-stage's restart of a later stage."""
    return "--resume" if config.resume else f"--initial-stage {config.initial_stage}"


def kept(started: str | None, files: list, run_dir: str, has_trained: bool,
         log, flag: str) -> str:
    """The SHA-256 of `files` ((flag and name, SHA-256) of each, in order)
    joined, for state.json; a UserError, naming the continuing `flag`, when
    the run in `run_dir` started on other files (`started`: what its
    state.json keeps). None kept: a run that `has_trained` says it takes
    these files as its own."""
    now = "+".join(sha256 for _, sha256 in files)
    names = " ".join(name for name, _ in files)
    if started is None and has_trained:
        log(f"the run in {run_dir} keeps no SHA-256 of {names} (it was started by an "
            f"earlier version): taken to be the file(s) it started on, SHA-256 {now}, "
            "kept from now on")
    elif started is not None and started != now:
        raise UserError(
            f"{flag}: {names} is now the file of SHA-256 {now}, but "
            f"the run in {run_dir!r} was started on the file of SHA-256 {started}; "
            "put that file back to continue the run, or start a new one with --run-name")
    return now


def teacher_files(config: TrainConfig) -> list:
    """(flag and name, path) of the run's teachers: --teacher's, or each --distil's."""
    from tagger.pretrained import resolve_model

    if config.noisy_student.teacher:
        name = config.noisy_student.teacher
        return [(f"--teacher {name!r}", name)]
    return [(f"--distil {name!r}", resolve_model(name, progress=config.progress))
            for name in config.distillation.teachers]


def teachers_sha256(config: TrainConfig, state: RunState, run_dir: str,
                    log=print) -> str | None:
    """What state.json keeps of the run's teachers (`kept`; None without
    teachers); a teacher that is not a readable file is left to the
    teacher's own check, which names what is wrong."""
    from tagger.inference.common import model_fingerprint

    files = teacher_files(config)
    if not files or any(not fileio.exists(path) or fileio.not_a_file(path)
                        for _, path in files):
        return state.teacher_sha256
    return kept(state.teacher_sha256, [(name, model_fingerprint(path)) for name, path in files],
                run_dir, trained(state), log, continuing_flag(config))


def check_teachers(config: TrainConfig, run_dir: str) -> None:
    """With --resume, `teachers_sha256`'s refusal of a run's changed
    teachers, from its state.json, before they score anything."""
    path = join_path(run_dir, "state.json")
    if config.resume and teacher_files(config) and fileio.exists(path):
        teachers_sha256(config, read_state(path), run_dir, log=lambda line: None)
