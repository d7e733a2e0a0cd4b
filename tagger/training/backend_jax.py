"""A training run's devices, steps and input under Keras's JAX backend.

Devices: `keras.distribution.DataParallel` over every device JAX sees (all
local GPUs, a TPU's cores; the devices of every host once
`jax.distributed` is initialised from JAX_COORDINATOR_ADDRESS,
JAX_NUM_PROCESSES and JAX_PROCESS_ID, set on each host); the
variables are replicated and each global batch is split over the devices
along its first axis, as tf.distribute's mirrored strategies split it.
`--strategy default` keeps to one device.

The training step is Keras's stateless pattern for JAX: the model's
`stateless_call`, `jax.value_and_grad` of the loss over the global batch
(plus the model's regularisation losses), the optimizer's
`stateless_apply`; jitted (XLA compiles every step under JAX), its state
donated and kept on the devices through an epoch, laid out from its first
step as the step's outputs are (so it compiles once), the steps dispatched
without waiting for them, the state written back to the Keras variables
when the epoch's steps end (`TrainFunction`). What the step computes is an
objective, the TensorFlow steps' in keras.ops (`Supervised`: BCE on the
tags, or a distillation's loss on the `tags` layer's logits, the windows
augmented with --augment; `NoisyStudent`: the frozen teacher's
pseudo-labels of the clean unlabelled half, the student on the labelled
half and the augmented unlabelled one); what a run gives it apart from
the model's and optimizer's values (the teacher's variables, the
augmentation's seed and stream) are the step's constants, not donated.
The input is NumPy batches (`records.batches`: tf.data where TensorFlow is
installed, else the TensorFlow-free reader), put on the devices two
batches ahead by a thread; a noisy student's labelled and unlabelled
halves are each split over the devices.

TensorFlow's training forms (`models.training_graph`: fused batch norms,
stacked taps) are kernels picked for TensorFlow's CPU and GPU ops; under
JAX on a CPU the step runs the model's `models.xla_training_graph` form
(convolutions as shifted patches times the kernel's rows, tiling max pools
as a max over an axis), whose gradients XLA's CPU compiler makes fast; on
an accelerator the model as it is built. XLA fuses either.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import threading
import time
import weakref

import numpy as np

from tagger.errors import UserError
from tagger.host_memory import HUGE_PAGES, huge_pages_in_effect, release_heap_after_compiles
from tagger.xla_cpu import SCHEDULER_SETTING, SETTING, in_effect

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
        release_heap_after_compiles()
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

    def cpu_settings_note(self) -> str:
        """What the run's training line adds on a CPU: where XLA's buffers
        are on huge pages, its matrix products its own and its operations
        in an order for memory (`xla_cpu.start_as_a_command`)."""
        if self.platform != "cpu":
            return ""
        notes = [f"its buffers on huge pages (GLIBC_TUNABLES={HUGE_PAGES})"
                 if huge_pages_in_effect() else None,
                 f"its matrix products XLA's own (XLA_FLAGS={SETTING})"
                 if in_effect(SETTING) else None,
                 f"its operations in an order for memory (XLA_FLAGS={SCHEDULER_SETTING})"
                 if in_effect(SCHEDULER_SETTING) else None]
        return "".join(f", {note}" for note in notes if note)

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
        return cpu_features.bfloat16_line(cpu_features.gpu_capability()
                                          if self.platform == "gpu" else None)

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
                   seed: int, num_read_threads, targets=None, split: str = "train",
                   with_tags: bool = True):
        """This host's share of the training batches of an epoch of `split`,
        NumPy (`records.batches.train_batches`: the windows alone without
        `with_tags`, soft `targets` in place of the tags)."""
        from tagger.records import batches

        shard = (self.hosts, self.task_id) if self.hosts > 1 else None
        return batches.train_batches(data_dir, global_batch // self.hosts, info=info,
                                     window_segments=window, shuffle_segments=shuffle_segments,
                                     seed=seed, shard=shard, num_read_threads=num_read_threads,
                                     global_batch=global_batch, split=split,
                                     with_tags=with_tags, targets=targets)

    def distribute(self, batches):
        """An iterator of batches (NumPy) as given, for the training step."""
        return batches

    # -- the steps -------------------------------------------------------------------
    def train_function(self, model, optimizer, global_batch: int, jit_compile=True,
                       augmentation=None, loss=None):
        """`train(iterator, steps) -> the summed loss of the steps`, each a
        step of `model` with `optimizer` on the iterator's next NumPy batch
        (windows in their storage dtype, tags or soft targets): the
        `Supervised` objective, its windows noised by `augmentation` (a
        `tagger.augment.Augmentation`), its per-window `loss` (default BCE)."""
        return self._train_function(model, optimizer, Supervised(augmentation, loss))

    def noisy_student_function(self, student, teacher, optimizer, half_batch: int,
                               augmentation, pseudo_label_weight: float,
                               augment_labelled: bool, jit_compile: bool = True):
        """`train((labelled, unlabelled) iterators, steps)`: the steps of the
        `NoisyStudent` objective (`semi_supervised`'s loss) on the
        iterators' next batches, each half split over the devices."""
        return self._train_function(student, optimizer, NoisyStudent(
            teacher, student.inputs[0].shape[1], augmentation, float(pseudo_label_weight),
            bool(augment_labelled)))

    def _train_function(self, model, optimizer, objective):
        with self.scope():
            if not optimizer.built:
                optimizer.build(model.trainable_variables)
        # A stage's new optimizer of the same kind and settings steps with the
        # step compiled for the last one: its learning rate, step count and
        # slots are its variables, which the step is given as its state; the
        # stage's augmentation stream is one of the step's constants.
        steps = self._steps.setdefault(model, {})
        key = (step_key(optimizer), objective.key)
        if key not in steps:
            steps[key] = jax_step(model, self._optimizer_like(optimizer, model), objective)
        return TrainFunction(model, optimizer, self, steps[key],
                             self.whole_on_devices(objective.constants()))

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
    `JaxBackend.train_function` (an iterator, or a tuple of them whose
    batches join: `next_batch`). The state (the model's and optimizer's
    values) stays on the devices from call to call on one iterator, the
    steps dispatched without waiting for them, each given the run's
    `constants` too, and the iterator's batches
    are put on the devices ahead of the steps by a thread, across calls;
    `end_epoch()` (the run calls it after an epoch's steps) waits for the
    steps, writes the state back into the Keras variables and stops the
    thread; `stop_input()` stops the thread alone (an epoch cut short: an
    error, Ctrl-C), before the run closes the iterators that the thread
    reads. The seconds spent waiting for input, and the epochs' seconds,
    go to the backend's counts."""

    def __init__(self, model, optimizer, backend: JaxBackend, step, constants=()):
        self.model, self.optimizer, self.backend = model, optimizer, backend
        self._step = step
        self._constants = constants
        self._state = None  # (trainable, non-trainable, optimizer values) while an epoch runs
        self._ahead = None  # the epoch's _AheadOnDevices
        self._started = 0.0

    def __call__(self, iterator, steps: int):
        if self._ahead is not None and self._ahead.iterator is not iterator:
            self.end_epoch()
        if self._ahead is None:
            self._started = time.perf_counter()
            self._ahead = _AheadOnDevices(iterator, self.backend)
            self._ahead.start()  # once held: `stop_input` stops it however this call ends
            self._state = self.backend.whole_on_devices(
                ([v.value for v in self.model.trainable_variables],
                 [v.value for v in self.model.non_trainable_variables],
                 [v.value for v in self.optimizer.variables]))
        total = 0.0
        for _ in range(steps):
            waited = time.perf_counter()
            batch = self._ahead.next()
            self.backend.input_seconds += time.perf_counter() - waited
            self._state, loss = self._step(self._state, self._constants, batch)
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

    def stop_input(self) -> None:
        """The input thread stopped, once its batch in hand is made, and the
        epoch's state dropped (a run that goes on restores a checkpoint): the
        iterators may be closed then. Called again after a Ctrl-C cut it short,
        it stops the thread still."""
        if self._ahead is not None:
            self._ahead.close()
        self._ahead = self._state = None


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


def jax_step(model, optimizer, objective=None):
    """The jitted stateless step: ((trainable, non-trainable, optimizer
    values), constants, batch) -> (new state, the batch's loss), its state
    donated. `optimizer` says what the step computes; the values of the
    optimizer that steps (of the same kind and settings) are given in the
    state. `objective` (default: `Supervised()`, BCE on the tags) computes
    the loss from the model's training forward pass, the batch, the
    optimizer's step count and the constants. The step holds `model`
    weakly (it is traced while the model lives), so that a cache of steps
    by model lets both go together."""
    import jax
    import keras

    objective = objective or Supervised()
    forward = logits_forward(model) if objective.from_logits else scores_forward(model)
    del model
    count = next(i for i, v in enumerate(optimizer.variables) if v is optimizer.iterations)

    def loss_of(trainable, non_trainable, optimizer_values, constants, batch):
        held = {"non_trainable": non_trainable, "losses": []}

        def call(x):  # (batch, tags) float32: the model in training mode
            outputs, held["non_trainable"], losses = forward(trainable, held["non_trainable"],
                                                             x)
            held["losses"].extend(losses)
            return outputs

        loss = objective(call, batch, optimizer_values[count], constants)
        for extra in held["losses"]:  # the model's regularisation losses
            loss = loss + keras.ops.cast(extra, "float32")
        scaled = loss
        if hasattr(optimizer, "scale_loss"):  # a LossScaleOptimizer (float16)
            with keras.StatelessScope(state_mapping=list(zip(optimizer.variables,
                                                             optimizer_values))):
                scaled = optimizer.scale_loss(loss)
        return scaled, (loss, held["non_trainable"])

    gradient = jax.value_and_grad(loss_of, has_aux=True)

    def step(state, constants, batch):
        trainable, non_trainable, optimizer_values = state
        (_, (loss, non_trainable)), grads = gradient(trainable, non_trainable,
                                                     optimizer_values, constants, batch)
        trainable, optimizer_values = optimizer.stateless_apply(optimizer_values, grads,
                                                                trainable)
        return (trainable, non_trainable, optimizer_values), loss

    return jax.jit(step, donate_argnums=0)


def scores_forward(model):
    """`forward(trainable, non-trainable, x) -> (scores float32, non-trainable,
    regularisation losses)`: `model`'s stateless call in training mode,
    computed by its `xla_training_model` form, holding `model` weakly."""
    import keras

    forward = in_training_form(model, model)

    def scores(trainable, non_trainable, x):
        (outputs,), non_trainable, losses = forward(trainable, non_trainable, x)
        return keras.ops.cast(outputs, "float32"), non_trainable, losses

    return scores


def logits_forward(model):
    """`forward` as `scores_forward`'s, giving the logits of `model`'s `tags`
    layer (a sigmoid Dense; `distillation.tags_layer`): its kernel and bias
    applied to its input, computed by a stateless call of a model of
    `model`'s own layers, as the TensorFlow step's `trainer.tag_logits`."""
    import keras

    from tagger.training.distillation import tags_layer

    tags = tags_layer(model)
    forward = in_training_form(keras.Model(model.inputs, [model.outputs[0], tags.input]),
                               model)
    kernel, bias = _positions([tags.kernel, tags.bias], model.trainable_variables)

    def logits(values, non_trainable_values, x):
        (_, features), non_trainable_values, losses = forward(values, non_trainable_values, x)
        h = keras.ops.cast(features, "float32")  # (batch, features)
        return keras.ops.matmul(h, values[kernel]) + values[bias], non_trainable_values, losses

    return logits


def in_training_form(graph, model):
    """`forward(trainable, non-trainable, x) -> ([outputs], non-trainable,
    regularisation losses)`: the stateless call in training mode of
    `graph` (a functional model of `model`'s layers), in its
    `xla_training_model` form where JAX computes on the CPU, the variables'
    values in `model`'s order.
    Where the form is `model` itself, it is held weakly."""
    import jax

    from tagger.models.xla_training_graph import xla_training_model

    form = xla_training_model(graph) if jax.devices()[0].platform == "cpu" else graph
    if form is model:
        traced = weakref.ref(model)

        def forward(trainable, non_trainable, x):
            outputs, non_trainable, losses = traced().stateless_call(
                trainable, non_trainable, x, training=True, return_losses=True)
            return _listed(outputs), non_trainable, losses

        return forward
    trainable = _positions(form.trainable_variables, model.trainable_variables)
    non_trainable = _positions(form.non_trainable_variables, model.non_trainable_variables)

    def forward(values, non_trainable_values, x):
        outputs, updated, losses = form.stateless_call(
            [values[i] for i in trainable], [non_trainable_values[i] for i in non_trainable],
            x, training=True, return_losses=True)
        non_trainable_values = list(non_trainable_values)
        for i, value in zip(non_trainable, updated):
            non_trainable_values[i] = value
        return _listed(outputs), non_trainable_values, losses

    return forward


def _listed(outputs) -> list:
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def _positions(variables, within) -> list:
    """The index in `within` of each of `variables` (the same objects)."""
    at = {id(v): i for i, v in enumerate(within)}
    return [at[id(v)] for v in variables]


def to_float(x):
    """Windows in their storage dtype as float32, int16 scaled to [-1, 1]
    (as `records.schema.to_float` in the TensorFlow step)."""
    import keras

    from tagger.audio import INT16_SCALE

    if x.dtype == "int16":
        return keras.ops.cast(x, "float32") / INT16_SCALE
    return x


def seed_words(augmentation) -> tuple:
    """The run's seed and the stage's stream of `augmentation` as uint32
    scalars, the step's constants: one program for every stage."""
    if augmentation is None:
        return ()
    return (np.uint32(augmentation.seed % 2 ** 32), np.uint32(augmentation.stream % 2 ** 32))


def keyed(augmentation, words):
    """`augmentation` drawing from the seed and stream `words` (traced)."""
    seed, stream = words
    return dataclasses.replace(augmentation, seed=seed, stream=stream)


def chain_key(augmentation):
    """What an augmentation computes, without its seed and stream."""
    if augmentation is None:
        return None
    return dataclasses.replace(augmentation, seed=0, stream=0)


@dataclasses.dataclass(frozen=True)
class Supervised:
    """The loss of a step on (windows, tags) batches: the mean over the
    global batch of `loss(tags, scores)` (default BCE; a loss whose
    `from_logits` is true gets the `tags` layer's logits), the windows
    noised by `augmentation` first (keyed by the run's seed, the stage and
    the optimizer's step count, replica 0: the step sees the global batch),
    as `trainer.make_train_function` computes it."""

    augmentation: object = None
    loss: object = None

    @property
    def from_logits(self) -> bool:
        return bool(getattr(self.loss, "from_logits", False))

    @property
    def key(self):
        return ("supervised", chain_key(self.augmentation), self.loss)

    def constants(self):
        return seed_words(self.augmentation)

    def __call__(self, call, batch, iterations, constants):
        import keras

        x, y = batch
        x = to_float(x)
        if self.augmentation is not None:
            x = keyed(self.augmentation, constants)(x, iterations, 0)
        per_window = (self.loss or keras.losses.binary_crossentropy)(y, call(x))
        return keras.ops.mean(per_window)


@dataclasses.dataclass(frozen=True, eq=False)
class NoisyStudent:
    """The loss of a noisy-student step on (labelled windows, tags,
    unlabelled windows) batches, as `semi_supervised.make_noisy_student_function`
    computes it: BCE(student(x_l), y_l) + w * BCE(student(augment(x_u)),
    teacher(x_u)), each the mean over its half of the global batch; the
    teacher (a `semi_supervised.PseudoLabeller`) frozen, in inference mode,
    on the clean unlabelled windows, its variables the step's constants;
    the student on the centred crop of them, augmented with draws keyed
    by 2 x the step count + 1 (the labelled half with 2 x the step count,
    with `augment_labelled`)."""

    teacher: object
    student_samples: int
    augmentation: object
    weight: float = 1.0
    augment_labelled: bool = False
    from_logits = False

    @property
    def key(self):
        return ("noisy student", id(self.teacher.model), self.teacher.samples,
                self.student_samples, chain_key(self.augmentation), self.weight,
                self.augment_labelled)

    def constants(self):
        model = self.teacher.model
        return ([v.value for v in model.trainable_variables],
                [v.value for v in model.non_trainable_variables],
                seed_words(self.augmentation))

    def __call__(self, call, batch, iterations, constants):
        import keras
        from keras import ops

        from tagger.training.semi_supervised import centre_crop

        x_l, y_l, x_u = batch
        teacher_trainable, teacher_non_trainable, words = constants
        x_l, x_u = to_float(x_l), to_float(x_u)
        teacher_input = self.teacher.to_input(centre_crop(x_u, self.teacher.samples))
        scores, _ = self.teacher.model.stateless_call(
            teacher_trainable, teacher_non_trainable, teacher_input, training=False)
        targets = ops.stop_gradient(ops.cast(scores, "float32"))  # (batch_u, tags)
        noise = keyed(self.augmentation, words)
        noisy_u = noise(centre_crop(x_u, self.student_samples), iterations * 2 + 1, 0)
        if self.augment_labelled:
            x_l = noise(x_l, iterations * 2, 0)
        n_l = x_l.shape[0]
        scores = call(ops.concatenate([x_l, noisy_u], 0))
        labelled = ops.mean(keras.losses.binary_crossentropy(y_l, scores[:n_l]))
        unlabelled = ops.mean(keras.losses.binary_crossentropy(targets, scores[n_l:]))
        return labelled + self.weight * unlabelled


def next_batch(iterators) -> tuple:
    """The next batch of an iterator, or of each of a tuple of them joined
    (a noisy student's labelled (windows, tags) and unlabelled (windows,)),
    as one tuple of NumPy arrays."""
    if not isinstance(iterators, tuple):
        return tuple(next(iterators))
    return tuple(part for iterator in iterators for part in next(iterator))


class _AheadOnDevices:
    """The batches of a NumPy iterator, each put on the devices by a thread
    of its own while the steps before it run (two batches ahead), from
    `start()` on; an error there is raised by `next()`. `close()` stops
    the thread and waits for it (it leaves the iterator's `next()` first)."""

    def __init__(self, iterator, backend: JaxBackend):
        self.iterator = iterator
        self._queue = queue.Queue(maxsize=2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fill, args=(backend,), daemon=True,
                                        name="batches to the devices")

    def start(self) -> None:
        self._thread.start()

    def _fill(self, backend):
        try:
            while not self._stop.is_set():
                self._put(("batch", backend.to_devices(next_batch(self.iterator))))
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
        if self._thread.ident is not None:  # started
            self._thread.join()
