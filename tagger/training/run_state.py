"""A training run's state.json: where the run stands (`RunState`), the
commit point of every epoch (`training.run`).

Strict JSON: non-finite numbers are written as null and read back as they
were (a best score not yet set as Infinity, an undefined metric as NaN);
older files that hold a bare Infinity or NaN read as well. A field that an
earlier version did not write takes its default.
"""

from __future__ import annotations

import dataclasses
import json
import math

from tagger import fileio, strict_json
from tagger.errors import UserError


@dataclasses.dataclass
class RunState:
    """Everything needed to continue a run; saved as state.json."""

    stage: int = 0  # index into the schedule's stages
    stage_epoch: int = 0  # epochs finished in this stage
    epoch: int = 0  # epochs finished in total
    wait: int = 0  # epochs without improvement in this stage
    best_score: float = math.inf  # the monitored value, lower is better
    best_epoch: int = 0
    best_checkpoint: str | None = None
    last_checkpoint: str | None = None
    stage_started: bool = False  # the stage's optimizer exists in last_checkpoint
    history: list = dataclasses.field(default_factory=list)
    stages: list = dataclasses.field(default_factory=list)  # per-stage summaries
    done: bool = False
    base_model_sha256: str | None = None  # a run on a trained model's body: its file's
    teacher_sha256: str | None = None  # a student's: its teachers' files' (`started_models`)


def read_state(path: str) -> RunState:
    """state.json as a RunState; a damaged file is one UserError naming it."""
    try:
        saved = json.loads(fileio.read_text(path))
        if "best_score" in saved:
            saved["best_score"] = strict_json.number(saved["best_score"], math.inf)
        saved["history"] = [_history_row(row) for row in saved.get("history", [])]
        return RunState(**saved)
    except (ValueError, TypeError, AttributeError, UnicodeDecodeError) as error:
        raise UserError(f"{path!r} is damaged ({str(error).splitlines()[0]}); the run "
                        "cannot continue without it: start a new run with --run-name "
                        "or --train-dir") from None


def state_text(state: RunState) -> str:
    """state.json's text: strict JSON, non-finite numbers as null (see `read_state`)."""
    return strict_json.dumps(dataclasses.asdict(state), indent=1)


def _history_row(row: dict) -> dict:
    """A history row as read from state.json: a number written as null
    (NaN, e.g. an undefined validation ROC-AUC) is NaN again."""
    return {key: (math.nan if value is None and key != "optimizer" else value)
            for key, value in row.items()}
