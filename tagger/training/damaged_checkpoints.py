"""The checkpoints a continued run's state.json names, checked before it
trains: its last epoch's (the model and optimizer it goes on from) and its
best epoch's (the model it saves at its end). One that is missing or
damaged (`checkpoints.damage`: cut short, its bytes changed) is one line
naming it before anything is trained, so that a run never trains on only
to fail at its end, again at every resume.

With `drop_damaged_checkpoints` (train.py --drop-damaged-checkpoints) the
run goes on from the latest good one instead:

- the last epoch's good, the best's damaged: from the last epoch, with its
  optimizer; its checkpoint is copied as the best's (the best epoch's
  model, where it was an earlier one, is lost: the last epoch is the best
  from then on);
- the best's good, the last epoch's damaged: from the best model with a
  fresh optimizer, as a stage starts; the epochs after the best stay in
  the history and count towards their stage's epochs and patience;
- none good: from the start, a new run in the same folder.

The state.json that no longer names them is written before the damaged
files are deleted. Checkpoints in TensorFlow's format (written by earlier
versions) are read as they are, unchecked.
"""

from __future__ import annotations

import dataclasses
import math

from tagger import destination, fileio
from tagger.config import join_path
from tagger.errors import UserError
from tagger.training import checkpoints
from tagger.training.run_state import RunState, state_text

FLAG = "--drop-damaged-checkpoints"


def problems(state: RunState, folder: str) -> dict:
    """{name: what is wrong} of each checkpoint `state` names that does not
    read back whole from `folder`."""
    found = {}
    for name in dict.fromkeys((state.last_checkpoint, state.best_checkpoint)):
        prefix = join_path(folder, name or "")
        if name and not checkpoints.is_tensorflow_format(prefix):
            problem = checkpoints.damage(prefix)
            if problem:
                found[name] = problem
    return found


def checked(state: RunState, run_dir: str, drop: bool, score, chief: bool = True,
            log=print) -> RunState:
    """`state` when every checkpoint it names is whole; else a UserError
    naming the damaged ones and the way on, or with `drop`, the state that
    goes on from the latest good one (module docstring), written to
    `run_dir`'s state.json (by the `chief`), the damaged files deleted.
    `score(history row)`: the run's monitored value of an epoch."""
    folder = join_path(run_dir, "checkpoints")
    damaged = problems(state, folder)
    if not damaged:
        return state
    said = "; ".join(damaged.values())
    last, best = state.last_checkpoint, state.best_checkpoint
    copied = None
    if last and last not in damaged:
        copied = f"best-{state.epoch:05d}"
        rows = [row for row in state.history if row.get("epoch") == state.epoch]
        repaired = dataclasses.replace(state, best_checkpoint=copied, best_epoch=state.epoch,
                                       best_score=score(rows[0]) if rows else math.inf, wait=0)
        where = f"epoch {state.epoch}'s checkpoint, " + (
            "which holds its best model too" if state.best_epoch == state.epoch else
            f"its best from then on (epoch {state.best_epoch}'s model is lost)")
    elif best and best not in damaged:
        repaired = dataclasses.replace(state, last_checkpoint=None, stage_started=False)
        where = f"its best checkpoint (epoch {state.best_epoch}) with a fresh optimizer"
    else:
        repaired = RunState(base_model_sha256=state.base_model_sha256,
                            teacher_sha256=state.teacher_sha256)
        where = "the start, as no checkpoint of it is good"
    if not drop:
        raise UserError(f"{said}; the run cannot go on with it: restore the file, start a "
                        f"new run with --run-name, or pass {FLAG} to go on from {where}")
    log(f"{FLAG}: {said}; going on from {where}")
    if chief:
        state_path = join_path(run_dir, "state.json")
        with destination.reported("run file", state_path):
            if copied:
                checkpoints.copy(folder, last, copied)
            fileio.write_atomic(state_path, state_text(repaired))
        checkpoints.remove(folder, [name for name in damaged
                                    if name not in (repaired.last_checkpoint, copied)])
    return repaired
