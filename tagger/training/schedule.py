"""Learning-rate schedules as lists of stages (see `tagger.config.Stage`).

staged (Kim 2018, resemul): stage k uses SGD (Nesterov, momentum 0.9) with
lr * lr_decay^k; a stage ends when validation loss has not improved for
`patience` epochs; the next stage reloads the best checkpoint so far and
starts a fresh optimizer.

adam_then_sgd (Won et al. 2019, 2020): Adam 1e-4 until the first switch
epoch, then SGD (Nesterov, momentum 0.9, weight decay 1e-4) at 1e-3, 1e-4
and 1e-5, the best checkpoint reloaded at each switch; stages have fixed
lengths.
"""

from __future__ import annotations

from tagger.config import Stage, TrainConfig

ADAM_THEN_SGD_RATES = (("adam", 1e-4, 0.0), ("sgd", 1e-3, 1e-4), ("sgd", 1e-4, 1e-4),
                       ("sgd", 1e-5, 1e-4))


def staged_schedule(lr: float, lr_decay: float, num_stages: int, patience: int,
                    max_epochs: int, optimizer: str = "sgd") -> list:
    return [Stage(k, optimizer, lr * lr_decay ** k, max_epochs, patience)
            for k in range(num_stages)]


def adam_then_sgd_schedule(switch_epochs, total_epochs: int) -> list:
    bounds = [0, *switch_epochs, total_epochs]
    if sorted(bounds) != bounds or len(set(bounds)) != len(bounds):
        raise ValueError(f"switch epochs {tuple(switch_epochs)} must increase and "
                         f"lie inside (0, total epochs {total_epochs})")
    if len(switch_epochs) != len(ADAM_THEN_SGD_RATES) - 1:
        raise ValueError(f"the adam_then_sgd schedule takes {len(ADAM_THEN_SGD_RATES) - 1} "
                         f"switch epochs, got {len(switch_epochs)}")
    return [Stage(i, name, lr, bounds[i + 1] - bounds[i], None, decay)
            for i, (name, lr, decay) in enumerate(ADAM_THEN_SGD_RATES)]


def scaled_switch_epochs(total_epochs: int, switch_epochs=(80, 100, 120),
                         of_total: int = 200) -> tuple:
    """`switch_epochs` (planned for `of_total` epochs: the paper's 80, 100,
    120 of 200) scaled to `total_epochs`, rounded and then moved apart just
    enough that every one of the adam_then_sgd schedule's stages keeps at least one
    epoch: (80, 100, 120) -> 10 epochs: (4, 5, 6); 4 epochs: (1, 2, 3).
    ValueError (one line) below one epoch per stage."""
    stages = len(ADAM_THEN_SGD_RATES)
    if total_epochs < stages:
        raise ValueError(
            f"--total-epochs {total_epochs} is too few for the adam_then_sgd schedule's {stages} "
            "stages (Adam 1e-4, then SGD 1e-3, 1e-4, 1e-5; one epoch each at least): give "
            f"--total-epochs {stages} or more, or --schedule staged for fewer epochs")
    scaled = [round(e * total_epochs / of_total) for e in switch_epochs]
    for i in range(len(scaled)):  # at least one epoch in every stage before
        scaled[i] = max(scaled[i], (scaled[i - 1] if i else 0) + 1)
    for i in reversed(range(len(scaled))):  # and in every stage after
        scaled[i] = min(scaled[i], (scaled[i + 1] if i + 1 < len(scaled)
                                    else total_epochs) - 1)
    return tuple(scaled)


def schedule_for(config: TrainConfig) -> list:
    """The stages `config` asks for, from its initial stage on."""
    if config.schedule == "adam_then_sgd":
        stages = adam_then_sgd_schedule(config.switch_epochs, config.total_epochs)
    else:
        stages = staged_schedule(config.lr, config.lr_decay, config.num_stages,
                                 config.patience, config.max_epochs_per_stage,
                                 config.optimizer)
    if config.initial_stage >= len(stages):
        raise ValueError(f"initial stage {config.initial_stage} is past the last stage "
                         f"({len(stages) - 1})")
    return stages[config.initial_stage:]


def make_optimizer(stage: Stage, momentum: float = 0.9, mixed_precision: str = "off"):
    """A fresh Keras optimizer for `stage` (loss-scaled under float16)."""
    import keras

    decay = stage.weight_decay or None
    if stage.optimizer == "adam":
        optimizer = keras.optimizers.Adam(stage.learning_rate, weight_decay=decay)
    else:
        optimizer = keras.optimizers.SGD(stage.learning_rate, momentum=momentum,
                                         nesterov=True, weight_decay=decay)
    if mixed_precision == "float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
