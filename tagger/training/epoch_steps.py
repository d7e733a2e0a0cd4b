"""An epoch's training steps as `training.run.Run` takes them: calls of
--steps-per-execution steps on the epoch's input, each call's loss checked,
and the input closed when the steps end, however they end.

A run stops at its first non-finite loss, a training step's or an epoch's
validation loss, before that epoch is committed: its checkpoints and
state.json stay those of the last epoch whose losses were finite, and no
model file of non-finite weights is written (`non_finite`: one line naming
where, and the settings to change). A call's loss is read once the next
call is under way, so the check keeps a call in flight (JAX dispatches its
steps without waiting for them).

The input's iterators are closed (a reader's workers stopped) only once
the train function's own input thread has stopped (`stop_input`, JAX's,
which calls the iterators' `next()` to put batches on the devices ahead of
the steps): a generator closed while that thread runs it raises
`ValueError: generator already executing`, which would take the place of
Ctrl-C's KeyboardInterrupt or of the error that ended the steps.
"""

from __future__ import annotations

import contextlib
import math

from tagger.errors import UserError


@contextlib.contextmanager
def closed_input(iterator, train_fn=None):
    """A context that closes `iterator` (each of a tuple of them: a noisy
    student's labelled and unlabelled batches) at its end where it can be
    closed (the TensorFlow-free reader's: its worker processes stopped
    then, not when it is collected, so that two epochs' workers never
    overlap), after `train_fn.stop_input()` where `train_fn` has it. An
    iterator that thread may still hold (a second Ctrl-C while it stops)
    is left to be collected."""
    closing = contextlib.ExitStack()
    for each in iterator if isinstance(iterator, tuple) else (iterator,):
        if hasattr(each, "close"):
            closing.enter_context(contextlib.closing(each))
    try:
        yield
    finally:
        stop = getattr(train_fn, "stop_input", None)
        if stop is not None:
            stop()
        closing.close()


def train_steps(train_fn, iterator, steps: int, chunk: int, bar, stopped) -> float:
    """The summed loss of `steps` steps of `train_fn` on `iterator`, `chunk`
    steps a call, `bar` (a tqdm) moved on by each call. A call whose loss is
    not finite raises `stopped(where, loss)` (`non_finite`'s UserError;
    where: 'step 5', or 'steps 5-8' for a call of several)."""
    total, done, pending = 0.0, 0, None
    while done < steps:
        n = min(chunk, steps - done)
        loss = train_fn(iterator, n)
        if pending is not None:
            _check(*pending, stopped)
        pending = (loss, done + 1, done + n)
        total = total + loss
        done += n
        bar.update(n)
    if pending is not None:
        _check(*pending, stopped)
    return float(total)


def _check(loss, first: int, last: int, stopped) -> None:
    value = float(loss)
    if not math.isfinite(value):
        raise stopped(f"step {first}" if first == last else f"steps {first}-{last}", value)


def check_validation(loss: float, stopped) -> None:
    """`stopped('validation', loss)` raised where the epoch's validation
    loss is not finite (its last step's update overflowed the weights)."""
    if not math.isfinite(loss):
        raise stopped("validation", loss)


def non_finite(config, finished: int, where: str, loss: float) -> UserError:
    """The one line of a run stopped by a non-finite loss at `where` of
    epoch `finished` + 1: what its folder keeps, and the settings of
    `config` that scale the steps, to change."""
    kept = (f"its folder keeping the checkpoints of epoch {finished}" if finished
            else "no epoch of it finished, so it saved none")
    changes = _changes(config)
    changed = ", ".join(changes[:-1]) + " or " + changes[-1] if len(changes) > 1 \
        else changes[0]
    return UserError(f"epoch {finished + 1}, {where}: the "
                     f"{'val' if where == 'validation' else 'training'} loss is {loss}, "
                     f"not a finite number; the run stops here, {kept} (no model is "
                     f"written): train anew under another --run-name with {changed}")


def _changes(config) -> list:
    """The settings to change after a non-finite loss, as flags and values."""
    changes = []  # first the loss's own factors, where set
    if config.noisy_student.teacher and config.noisy_student.pseudo_label_weight != 1:
        changes.append(f"a lower --pseudo-label-weight "
                       f"({config.noisy_student.pseudo_label_weight:g})")
    if config.distillation.teachers and config.distillation.temperature != 1:
        changes.append(f"a --temperature nearer 1 ({config.distillation.temperature:g})")
    changes.append(f"a lower --lr (this run's {config.lr:g})" if config.schedule == "staged"
                   else "--schedule staged at a lower --lr than adam_then_sgd's")
    if config.pretrained.fine_tune:
        changes.append(f"a lower --fine-tune-lr ({config.pretrained.fine_tune_lr:g})")
    if config.model_args.get("weight_decay"):
        changes.append(f"a lower --weight-decay ({config.model_args['weight_decay']:g})")
    if config.mixed_precision == "float16":
        changes.append("--mixed-precision off")
    return changes
