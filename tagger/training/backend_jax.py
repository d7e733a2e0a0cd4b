"""A training run's devices, steps and input under Keras's JAX backend.

Devices: `keras.distribution.DataParallel` over every device JAX sees (all
local GPUs, a TPU's cores; the devices of every host once
`jax.distributed` is initialised from JAX_COORDINATOR_ADDRESS,
JAX_NUM_PROCESSES and JAX_PROCESS_ID, set on each host); the
variables are replicated and each global batch is split over the devices
along its first axis, as tf.distribute's mirrored strategies split it.
`--strategy default` keeps to one device.

The training step is Keras's stateless pattern for JAX: the model's
`stateless_call`, `jax.value_and_grad` of the mean BCE over the global
batch (plus the model's regularisation losses), the optimizer's
`stateless_apply`; jitted (XLA compiles every step under JAX), its state
donated and kept on the devices through an epoch, laid out from its first
step as the step's outputs are (so it compiles once), the steps dispatched
without waiting for them, the state written back to the Keras variables
when the epoch's steps end (`TrainFunction`). The input is NumPy batches
(`records.batches`: tf.data where TensorFlow is installed, else the
TensorFlow-free reader), put on the devices two batches ahead by a thread.

TensorFlow's one-channel-convolution training form and fused batch norm
(`models.training_graph`) are kernels picked for TensorFlow's CPU and GPU
ops; under JAX the model runs as it is built and XLA fuses it.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
import weakref

import numpy as np

from tagger.errors import UserError

# The variables that describe a cluster of hosts to `jax.distributed`.
CLUSTER_VARIABLES = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")
STRATEGIES = ("auto", "default")  # --strategy values that mean something under JAX


def initialize_hosts() -> None:
    """Starts `jax.distributed` where the environment describes several
    hosts (CLUSTER_VARIABLES, all three), before JAX's first computation."""
    given = [name for name in CLUSTER_VARIABLES if os.environ.get(name)]
    if not given:
        return
    if len(given) < len(CLUSTER_VARIABLES):
        missing = ", ".join(n for n in CLUSTER_VARIABLES if n not in given)
        raise UserError(f"several hosts under JAX need {', '.join(CLUSTER_VARIABLES)}; "
                        f"{missing} is not set")
    import jax

    jax.distributed.initialize(os.environ["JAX_COORDINATOR_ADDRESS"],
                               int(os.environ["JAX_NUM_PROCESSES"]),
                               int(os.environ["JAX_PROCESS_ID"]))


class JaxBackend:
    """See the module docstring; the interface is `backend.Backend`'s."""

    name = "jax"
    compiles_every_step = True

    def __init__(self, strategy: str = "auto", tpu: str | None = None):
        if strategy not in STRATEGIES:
            raise UserError(f"--strategy {strategy} is tf.distribute's; under JAX the run "
                            "takes every device JAX sees (--strategy auto) or one "
                            "(--strategy default), and several hosts from "
                            f"{', '.join(CLUSTER_VARIABLES)}")
        if tpu is not None:
            raise UserError("--tpu names a TPU for TensorFlow; under JAX the run takes the "
                            "TPU cores JAX sees (leave --tpu out)")
        from tagger.backends import tensorflow_for_input

        tensorflow_for_input()  # Keras seeds TensorFlow too where it is installed
        initialize_hosts()
        import jax
        import keras

        self.devices = jax.devices() if strategy == "auto" else jax.local_devices()[:1]
        self.replicas = len(self.devices)
        self.hosts = jax.process_count() if strategy == "auto" else 1
        self.task_id = jax.process_index()
        self.chief = self.task_id == 0
        self.platform = self.devices[0].platform
        self.is_tpu = self.platform == "tpu"
        self.distribution = None
        if self.replicas > 1:
            names = [f"{d.platform}:{d.id}" for d in self.devices]
            self.distribution = keras.distribution.DataParallel(devices=names)
        mesh = jax.sharding.Mesh(np.array(self.devices), ("batch",))
        self._split = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch"))
        self._whole = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
        # model -> {what its step computes (`step_key`): the jitted step}, for as
        # long as the model lives
        self._steps = weakref.WeakKeyDictionary()
        self.input_seconds = 0.0  # waited for the training batches, in all
        self.step_seconds = 0.0  # the training steps took, input included

    # -- where the model lives ------------------------------------------------
    def scope(self):
        """Variables made inside are replicated over the devices."""
        return self.distribution.scope() if self.distribution else contextlib.nullcontext()

    def describe(self) -> str:
        hosts = f" on {self.hosts} hosts" if self.hosts > 1 else ""
        plural = "s" if self.replicas > 1 else ""
        return f"JAX's {self.replicas} {self.devices[0].device_kind} device{plural}{hosts}"

    def input_line(self) -> str | None:
        """How much of the training steps' time went to waiting for input,
        since the last line (a run's, said at its end)."""
        from tagger.records.batches import reader_name

        if not self.step_seconds:
            return None
        line = (f"input: the training steps waited {self.input_seconds:.1f} s of their "
                f"{self.step_seconds:.1f} s for batches "
                f"({self.input_seconds / self.step_seconds:.1%}), read by {reader_name()}")
        self.input_seconds = self.step_seconds = 0.0  # the next run counts its own
        return line

    def precision_line(self, precision: str) -> str | None:
        from tagger import cpu_features

        if precision != "bfloat16":
            return None
        if self.is_tpu:
            return "mixed bfloat16: a TPU's matrix units compute in bfloat16"
        if self.platform == "gpu":
            capability = getattr(self.devices[0], "compute_capability", None)
            numbers = tuple(int(p) for p in str(capability).split(".")) if capability else ()
            return cpu_features.bfloat16_line(numbers or None)
        return cpu_features.bfloat16_line(None)

    # -- several hosts ----------------------------------------------------------
    def barrier(self) -> None:
        if self.hosts > 1:
            from jax.experimental import multihost_utils

            multihost_utils.sync_global_devices("tagger")

    def chief_first(self, work) -> None:
        if self.chief:
            work()
        self.barrier()
        if not self.chief:
            work()

    # -- the data ------------------------------------------------------------------
    def to_devices(self, batch, split: bool = True):
        """NumPy arrays of a global batch (this host's share of it) as JAX
        arrays split over the devices along their first axis (`split`) or
        whole on each."""
        import jax

        sharding = self._split if split else self._whole
        return tuple(jax.make_array_from_process_local_data(sharding, np.asarray(part))
                     for part in batch)

    def whole_on_devices(self, state):
        """The JAX arrays of `state` (a tree of them) whole on each device,
        laid out as a step's outputs are: a step whose input state is laid
        out otherwise (a variable made outside a distribution's scope sits
        on one device) would be compiled again for its second step."""
        import jax

        return jax.device_put(state, self._whole)

    def train_data(self, data_dir, info, global_batch: int, window: int, shuffle_segments: int,
                   seed: int, num_read_threads, targets=None):
        """This host's share of the training batches of an epoch, NumPy."""
        from tagger.records import batches

        if targets is not None:
            raise UserError("distillation runs under TensorFlow (--backend tensorflow)")
        shard = (self.hosts, self.task_id) if self.hosts > 1 else None
        return batches.train_batches(data_dir, global_batch // self.hosts, info=info,
                                     window_segments=window, shuffle_segments=shuffle_segments,
                                     seed=seed, shard=shard, num_read_threads=num_read_threads,
                                     global_batch=global_batch)

    def distribute(self, batches):
        """An iterator of batches (NumPy) as given, for the training step."""
        return batches

    # -- the steps -------------------------------------------------------------------
    def train_function(self, model, optimizer, global_batch: int, jit_compile=True,
                       augmentation=None, loss=None):
        """`train(iterator, steps) -> the summed loss of the steps`, each a
        step of `model` with `optimizer` on the iterator's next NumPy batch
        (windows in their storage dtype, tags)."""
        if augmentation is not None:
            raise UserError("--augment and noisy-student training run under TensorFlow "
                            "(--backend tensorflow): their training steps are TensorFlow graphs")
        if loss is not None:
            raise UserError("distillation runs under TensorFlow (--backend tensorflow)")
        with self.scope():
            if not optimizer.built:
                optimizer.build(model.trainable_variables)
        # A stage's new optimizer of the same kind and settings steps with the
        # step compiled for the last one: its learning rate, step count and
        # slots are its variables, which the step is given as its state.
        steps = self._steps.setdefault(model, {})
        key = step_key(optimizer)
        if key not in steps:
            steps[key] = jax_step(model, self._optimizer_like(optimizer, model))
        return TrainFunction(model, optimizer, self, steps[key])

    def _optimizer_like(self, optimizer, model):
        """A new optimizer of `optimizer`'s kind and settings, built on
        `model`'s trainable variables: what a step computes with (its
        variables stand for the values the step is given), so that the step
        holds no run's optimizer."""
        import keras

        like = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
        with self.scope():
            like.build(model.trainable_variables)
        return like

    def predictor(self, model, jit_compile: bool = True):
        from tagger.evaluation.predict import ClipPredictor, jitted_scores

        def put(x):
            split = self.hosts == 1 and len(x) % self.replicas == 0
            return self.to_devices((x,), split=split)[0]

        return ClipPredictor(model, scores=jitted_scores(model, put))

    # -- checkpoints ------------------------------------------------------------------
    def read_tensorflow_checkpoint(self, prefix: str, model, optimizer=None) -> None:
        raise UserError(f"checkpoint {prefix!r} is in TensorFlow's format (an earlier "
                        "version of tagger wrote it); continue this run under TensorFlow "
                        "(--backend tensorflow)")


class TrainFunction:
    """`train(iterator, steps) -> the steps' summed loss` of
    `JaxBackend.train_function`. The state (the model's and optimizer's
    values) stays on the devices from call to call on one iterator, the
    steps dispatched without waiting for them, and the iterator's batches
    are put on the devices ahead of the steps by a thread, across calls;
    `end_epoch()` (the run calls it after an epoch's steps) waits for the
    steps, writes the state back into the Keras variables and stops the
    thread. The seconds spent waiting for input, and the epochs' seconds,
    go to the backend's counts."""

    def __init__(self, model, optimizer, backend: JaxBackend, step):
        self.model, self.optimizer, self.backend = model, optimizer, backend
        self._step = step
        self._state = None  # (trainable, non-trainable, optimizer values) while an epoch runs
        self._ahead = None  # the epoch's _AheadOnDevices
        self._started = 0.0

    def __call__(self, iterator, steps: int):
        if self._ahead is not None and self._ahead.iterator is not iterator:
            self.end_epoch()
        if self._ahead is None:
            self._started = time.perf_counter()
            self._ahead = _AheadOnDevices(iterator, self.backend)
            self._state = self.backend.whole_on_devices(
                ([v.value for v in self.model.trainable_variables],
                 [v.value for v in self.model.non_trainable_variables],
                 [v.value for v in self.optimizer.variables]))
        total = 0.0
        for _ in range(steps):
            waited = time.perf_counter()
            x, y = self._ahead.next()
            self.backend.input_seconds += time.perf_counter() - waited
            self._state, loss = self._step(self._state, x, y)
            total = total + loss
        return total

    def end_epoch(self) -> None:
        """The steps waited for and their state written back; the input
        thread stopped."""
        import jax

        if self._ahead is None:
            return
        self._ahead.close()
        self._ahead = None
        jax.block_until_ready(self._state)
        for group, values in zip((self.model.trainable_variables,
                                  self.model.non_trainable_variables, self.optimizer.variables),
                                 self._state):
            for variable, value in zip(group, values):
                variable.assign(value)
        self._state = None
        self.backend.step_seconds += time.perf_counter() - self._started


def step_key(optimizer) -> str:
    """What a step of `optimizer` computes: its kind and settings (its
    nested optimizer's too), without the names Keras numbers per process
    (`sgd_3`) and without a learning rate that is a number (a variable
    of the optimizer, part of the step's state)."""
    import json

    import keras

    def settings(value):
        if isinstance(value, dict):
            return {key: settings(item) for key, item in value.items() if key != "name"
                    and not (key == "learning_rate" and isinstance(item, (int, float)))}
        if isinstance(value, (list, tuple)):
            return [settings(item) for item in value]
        return value

    return json.dumps(settings(keras.optimizers.serialize(optimizer)), sort_keys=True,
                      default=repr)


def jax_step(model, optimizer):
    """The jitted stateless step: ((trainable, non-trainable, optimizer
    values), x, y) -> (new state, the batch's loss), its state donated.
    `optimizer` says what the step computes; the values of the optimizer
    that steps (of the same kind and settings) are given in the state. The
    step holds `model` weakly (it is traced while the model lives), so
    that a cache of steps by model lets both go together."""
    import jax
    import keras

    from tagger.audio import INT16_SCALE

    traced = weakref.ref(model)
    del model

    def objective(trainable, non_trainable, optimizer_values, x, y):
        if x.dtype == "int16":
            x = keras.ops.cast(x, "float32") / INT16_SCALE
        scores, non_trainable, losses = traced().stateless_call(
            trainable, non_trainable, x, training=True, return_losses=True)
        per_window = keras.losses.binary_crossentropy(y, keras.ops.cast(scores, "float32"))
        loss = keras.ops.mean(per_window)
        for extra in losses:  # the model's regularisation losses
            loss = loss + keras.ops.cast(extra, "float32")
        scaled = loss
        if hasattr(optimizer, "scale_loss"):  # a LossScaleOptimizer (float16)
            with keras.StatelessScope(state_mapping=list(zip(optimizer.variables,
                                                             optimizer_values))):
                scaled = optimizer.scale_loss(loss)
        return scaled, (loss, non_trainable)

    gradient = jax.value_and_grad(objective, has_aux=True)

    def step(state, x, y):
        trainable, non_trainable, optimizer_values = state
        (_, (loss, non_trainable)), grads = gradient(trainable, non_trainable,
                                                     optimizer_values, x, y)
        trainable, optimizer_values = optimizer.stateless_apply(optimizer_values, grads,
                                                                trainable)
        return (trainable, non_trainable, optimizer_values), loss

    return jax.jit(step, donate_argnums=0)


class _AheadOnDevices:
    """The batches of a NumPy iterator, each put on the devices by a thread
    of its own while the steps before it run (two batches ahead); an error
    there is raised by `next()`. `close()` stops the thread."""

    def __init__(self, iterator, backend: JaxBackend):
        self.iterator = iterator
        self._queue = queue.Queue(maxsize=2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fill, args=(backend,), daemon=True,
                                        name="batches to the devices")
        self._thread.start()

    def _fill(self, backend):
        try:
            while not self._stop.is_set():
                self._put(("batch", backend.to_devices(next(self.iterator))))
        except BaseException as error:  # handed to the consumer, raised there
            self._put(("error", error))

    def _put(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def next(self):
        kind, value = self._queue.get()
        if kind == "error":
            raise value
        return value

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
