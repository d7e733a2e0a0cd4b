"""Whether a run's training steps are compiled by XLA: `--xla auto` (the
default) times the run's own step both ways and keeps the faster.

XLA's speed depends on the model, the batch, the precision and the
machine: on a CPU it is often slower than TensorFlow's oneDNN kernels, on
a GPU often faster. So a run whose training is long enough to repay XLA's
compile (a stage of at least `TIMED_FROM_STEPS` steps that would take at
least `TIMED_FROM_SECONDS` without XLA) times `TIMED_STEPS` steps each way,
`ROUNDS` times in turn, on its own data and a copy of its optimizer, and
then puts its weights back: the run trains as it would have without the
timing. XLA is chosen when its step takes at most `MARGIN` of the other's.

The timing is kept in the cache (`tagger.timing_cache`, folder `xla`),
keyed by the trained model's architecture, what its step computes (input,
batch, precision, strategy, loss, augmentation) and the machine, so a
later run on the same work decides at once. Under a multi-worker
strategy the chief's choice (cached or timed by all workers together)
is every worker's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import statistics
import time

import tensorflow as tf

from tagger import timing_cache

CACHE_VERSION = 1
FOLDER = "xla"
TIMED_FROM_STEPS = 2000
TIMED_FROM_SECONDS = 1800.0
TIMED_STEPS = 3
ROUNDS = 2
MARGIN = 0.95


@dataclasses.dataclass(frozen=True)
class XlaChoice:
    """Whether the steps are compiled by XLA, and the line that says why."""

    compile: bool
    line: str


def choice_fields(model, step: dict) -> dict:
    """The key of a timing of `model`'s training step: its architecture
    (the SHA-256 of its JSON), `step` (what else the step computes: input,
    batch, precision, ...) and the machine."""
    architecture = hashlib.sha256(model.to_json().encode()).hexdigest()
    return {"cache_version": CACHE_VERSION, "architecture_sha256": architecture, **step,
            **timing_cache.machine_fields()}


def choose(setting, fields: dict, planned_steps: int, timer, strategy,
           chief: bool) -> XlaChoice:
    """The choice for `setting` (True, False or "auto", `TrainConfig.jit_compile`)
    of a step keyed by `fields`, in a stage of `planned_steps` steps;
    `timer`: a `StepTimer` of the step."""
    if setting is not True and setting is not False and setting != "auto":
        raise ValueError(f"jit_compile must be True, False or 'auto', got {setting!r}")
    if setting is True:
        return XlaChoice(True, "XLA: on (--xla on)")
    if setting is False:
        return XlaChoice(False, "XLA: off (--xla off)")
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return XlaChoice(False, "XLA: the TPU compiles every step with it")
    found = timing_cache.read_timing(FOLDER, fields, ("plain", "xla")) if chief else None
    known = from_chief(strategy, -1.0 if found is None
                       else float(faster(found[0]["plain"], found[0]["xla"])))
    if known >= 0:
        if found is None:  # another worker: the chief says why
            return XlaChoice(bool(known), "")
        values, when = found
        return XlaChoice(bool(known), timed_line(values["plain"], values["xla"],
                                                 f"timed {when}, read from the cache"))
    if planned_steps < TIMED_FROM_STEPS:
        return XlaChoice(False, f"XLA: off (a stage of {planned_steps} steps is too short to "
                                "repay timing and compiling it; --xla on compiles anyway)")
    plain, = timer(False)
    if from_chief(strategy, plain * planned_steps) < TIMED_FROM_SECONDS:
        return XlaChoice(False, f"XLA: off (a stage of {planned_steps} steps takes about "
                                f"{plain * planned_steps / 60:.0f} minutes without it, too "
                                "short to repay compiling it; --xla on compiles anyway)")
    try:
        plain, xla = timer(False, True)
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as error:
        reason = str(getattr(error, "message", error)).strip().splitlines()[0][:200]
        return XlaChoice(False, f"XLA: off (the step does not compile with XLA: {reason})")
    compile = bool(from_chief(strategy, float(faster(plain, xla))))
    line = timed_line(plain, xla, "timed now")
    if chief:
        warning = timing_cache.keep_timing(FOLDER, fields, {"plain": plain, "xla": xla},
                                           "the XLA timing")
        line += f"\n{warning}" if warning else ""
    return XlaChoice(compile, line)


def faster(plain: float, xla: float) -> bool:
    """XLA is chosen when its step takes at most `MARGIN` of the other's."""
    return xla <= MARGIN * plain


def timed_line(plain: float, xla: float, source: str) -> str:
    return (f"XLA: {'on' if faster(plain, xla) else 'off'} (a training step takes "
            f"{plain * 1e3:.0f} ms without XLA and {xla * 1e3:.0f} ms with it on this "
            f"machine, {source}; --xla on or off decides instead)")


class StepTimer:
    """Times a run's training step without and with XLA: `timer(*modes)
    -> [median seconds per step for each mode]` (a mode: compiled by XLA
    or not), on the run's batches and a copy of its optimizer; the
    trained variables are put back as they were after each timing.

    `make_train(jit, optimizer) -> train(iterator, steps)`,
    `make_optimizer()` (built), `batches() -> iterator`."""

    def __init__(self, make_train, make_optimizer, batches, variables,
                 steps: int = TIMED_STEPS, rounds: int = ROUNDS):
        self.make_train, self.make_optimizer, self.batches = make_train, make_optimizer, batches
        self.variables, self.steps, self.rounds = variables, steps, rounds
        self._functions, self._optimizer, self._iterator = {}, None, None

    def __call__(self, *modes) -> list:
        saved = [v.numpy() for v in self.variables]
        try:
            if self._optimizer is None:
                self._optimizer, self._iterator = self.make_optimizer(), self.batches()
            for jit in modes:
                if jit not in self._functions:
                    self._functions[jit] = self.make_train(jit, self._optimizer)
            return time_steps([self._functions[jit] for jit in modes], self._iterator,
                              self.steps, self.rounds)
        finally:
            for variable, value in zip(self.variables, saved):
                variable.assign(value)


def time_steps(functions: list, batches, steps: int, rounds: int) -> list:
    """Median seconds per step of each `train(iterator, steps)` in
    `functions` on `batches` (an iterator): each run once first (tracing,
    compiling; the run of a function timed before is its warm-up), then
    `rounds` runs of `steps` steps in turn."""
    for train in functions:
        float(train(batches, steps))
    times = [[] for _ in functions]
    for _ in range(rounds):
        for train, seconds in zip(functions, times):
            start = time.perf_counter()
            float(train(batches, steps))
            seconds.append((time.perf_counter() - start) / steps)
    return [statistics.median(t) for t in times]


def from_chief(strategy, value: float) -> float:
    """`value` as the chief has it, on every worker of a multi-worker
    strategy (one all-reduce in which only the first replica counts);
    `value` itself under any other strategy."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return value

    def replica():
        first = tf.equal(tf.distribute.get_replica_context().replica_id_in_sync_group, 0)
        return tf.where(first, tf.constant(value, tf.float32), 0.0)

    return float(strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(replica), axis=None))
