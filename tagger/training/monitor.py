"""What a run's best epoch and early stopping follow (`TrainConfig.monitor`,
train.py --monitor), and an epoch's score by it.

Left unset, a run follows the figure it is judged on: a distillation run
its val ROC-AUC against each clip's five best teacher tags (what eval.py
--against and demo.py --distil report; the BCE on the teachers' soft
targets does not track it: epochs of lower loss rank the teachers' tags
worse, docs/distillation.md); any other run its val loss (the staged
schedule of Kim et al. 2018 on the labels its ROC-AUC is taken on; a
tagger on a trained model's body: the BCE of its clip scores, defined for
every tag of a few val files, where their ROC-AUC is not).
"""

from __future__ import annotations

import math

NAMES = {"val_loss": "val loss", "val_roc_auc": "val ROC-AUC"}


def monitored(config) -> str:
    """The value `config`'s run follows: its `monitor`, else the run's own
    (module docstring)."""
    if config.monitor is not None:
        return config.monitor
    return "val_roc_auc" if config.distillation.teachers else "val_loss"


def monitored_score(row: dict, monitor: str) -> float:
    """The epoch's value of `monitor`, as a score where lower is better:
    its val loss, or minus its val ROC-AUC. An undefined ROC-AUC (NaN: no
    tag is both among some val clips' tags and not among others', as on a
    val split of one clip) scores by the val loss, which is above every
    defined one's score (a BCE is positive, minus an AUC at most 0); a NaN
    loss never counts as an improvement."""
    if monitor == "val_roc_auc" and not math.isnan(row["val_roc_auc"]):
        return -row["val_roc_auc"]
    value = row["val_loss"]
    return math.inf if math.isnan(value) else value


def monitor_line(config) -> str:
    """The run's line saying what it follows, and why."""
    monitor = monitored(config)
    distils = bool(config.distillation.teachers)
    against = (" against the teachers' five best tags of each clip"
               if distils and monitor == "val_roc_auc" else "")
    why = (f"--monitor {monitor}" if config.monitor is not None else
           "a distillation's default; --monitor val_loss follows the loss on the soft "
           "targets" if distils else "the default; --monitor val_roc_auc follows the AUC")
    undefined = (", the val loss in an epoch where it is undefined"
                 if monitor == "val_roc_auc" else "")
    return (f"the best epoch and early stopping follow the {NAMES[monitor]}{against}"
            f"{undefined} ({why})")


def undefined_auc_line(clips: int, split_clips: int, distils: bool) -> str:
    """The line saying why the val ROC-AUC and PR-AUC of `clips` of a val
    split of `split_clips` are undefined (NaN); `distils`: its labels are
    the teachers' five best tags of each clip."""
    more = ("a larger --validation-steps reads more" if clips < split_clips
            else "the val split has no more")
    tags = " (the teachers' five best of each)" if distils else ""
    return (f"validation: ROC-AUC and PR-AUC are undefined (nan) on {clips} clip(s): no tag is "
            f"among some clips' tags{tags} and not among others' ({more})")
