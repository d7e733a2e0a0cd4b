"""A training run's devices, steps and input under TensorFlow: a
tf.distribute strategy (`strategy.make_strategy`), the one custom step of
`trainer` in its `training_model` form, tf.data input distributed by the
strategy, and clip predictions by `evaluation.predict.ClipPredictor`."""

from __future__ import annotations

import tensorflow as tf

from tagger.training import strategy as strategies
from tagger.training.trainer import distributed_train_data, make_train_function


class TensorFlowBackend:
    """See `backend.Backend` for the interface."""

    name = "tensorflow"
    compiles_every_step = False  # XLA is chosen per run (`xla_choice`)

    def __init__(self, strategy: str = "auto", tpu: str | None = None):
        self.strategy = strategies.make_strategy(strategy, tpu)
        self.replicas = self.strategy.num_replicas_in_sync
        self.chief = strategies.is_chief(self.strategy)
        self.is_tpu = strategies.is_tpu(self.strategy)

    @property
    def task_id(self) -> int:
        return self.strategy.cluster_resolver.task_id

    def scope(self):
        return self.strategy.scope()

    def describe(self) -> str:
        return type(self.strategy).__name__

    def precision_line(self, precision: str) -> str | None:
        """The line a run in mixed bfloat16 prints (`cpu_features.bfloat16_line`:
        why, or a warning where bfloat16 is slower than float32 on this
        machine's CPU or GPU); None for the other precisions."""
        from tagger import cpu_features

        if precision != "bfloat16":
            return None
        if self.is_tpu:
            return "mixed bfloat16: a TPU's matrix units compute in bfloat16"
        return cpu_features.bfloat16_line(cpu_features.gpu_capability())

    def barrier(self) -> None:
        strategies.barrier(self.strategy)

    def chief_first(self, work) -> None:
        strategies.chief_first(self.strategy, work)

    def train_data(self, data_dir, info, global_batch: int, window: int, shuffle_segments: int,
                   seed: int, num_read_threads, targets=None, split: str = "train",
                   with_tags: bool = True):
        return iter(distributed_train_data(
            self.strategy, data_dir, info, global_batch, window, shuffle_segments, seed,
            num_read_threads, split=split, with_tags=with_tags, targets=targets))

    def distribute(self, dataset):
        """An iterator of a tf.data dataset's batches, distributed."""
        return iter(self.strategy.experimental_distribute_dataset(dataset))

    def train_function(self, model, optimizer, global_batch: int, jit_compile: bool = False,
                       augmentation=None, loss=None):
        return make_train_function(model, optimizer, self.strategy, global_batch, jit_compile,
                                   augmentation, loss)

    def noisy_student_function(self, student, teacher, optimizer, half_batch: int,
                               augmentation, pseudo_label_weight: float,
                               augment_labelled: bool, jit_compile: bool = False):
        from tagger.training.semi_supervised import make_noisy_student_function

        return make_noisy_student_function(
            student, teacher, optimizer, self.strategy, half_batch, half_batch, augmentation,
            pseudo_label_weight, augment_labelled=augment_labelled, jit_compile=jit_compile)

    def predictor(self, model, jit_compile: bool = False):
        from tagger.evaluation.predict import ClipPredictor

        return ClipPredictor(model, self.strategy, jit_compile)

    def read_tensorflow_checkpoint(self, prefix: str, model, optimizer=None) -> None:
        """Reads a checkpoint written in TensorFlow's format by an earlier
        version into `model` (and `optimizer`): with the random state of
        its dropout layers, which tf.train.Checkpoint did not reach through
        the model. A damaged file or one that does not fit is a UserError."""
        from tagger.training import checkpoints

        objects = {"model": model,
                   "rng": [v.value for v in model.non_trainable_variables
                           if v.path.endswith("seed_generator_state")]}
        if optimizer is not None:
            objects["optimizer"] = optimizer
        checkpoint = tf.train.Checkpoint()
        try:
            # An epoch checkpoint also holds an optimizer that a model-only
            # restore leaves unread, on purpose; and one that does not fit is
            # refused below: no warning about either when it is collected.
            status = checkpoint.read(prefix).expect_partial()
            for name, value in objects.items():  # restored as they are attached
                setattr(checkpoint, name, value)
            status.assert_existing_objects_matched()
        except Exception as error:  # TensorFlow raises many types for a bad file
            problem = tensorflow_checkpoint_damage(prefix)
            if problem:
                raise checkpoints.damaged(problem) from None
            if not isinstance(error, (AssertionError, ValueError, tf.errors.OpError)):
                raise
            raise checkpoints.does_not_fit(prefix, error) from None


def tensorflow_checkpoint_damage(prefix: str) -> str | None:
    """None when every tensor of the TensorFlow checkpoint `prefix` reads
    back; else which of its files is missing or damaged."""
    from tagger import fileio

    index = f"{prefix}.index"
    if not fileio.exists(index):
        return f"checkpoint file {index!r} is missing"
    try:
        reader = tf.train.load_checkpoint(prefix)
    except Exception as error:  # noqa: BLE001  any failure means damage here
        return f"checkpoint file {index!r} is damaged ({str(error).splitlines()[0]})"
    for name in reader.get_variable_to_shape_map():
        try:
            reader.get_tensor(name)
        except Exception as error:  # noqa: BLE001
            folder, base = prefix.rsplit("/", 1)
            data = [f for f in fileio.listdir(folder) if f.startswith(base + ".data")]
            where = f"{folder}/{data[0]}" if data else f"{prefix}.data-*"
            return (f"checkpoint file {where!r} is damaged "
                    f"({str(error).splitlines()[0] or type(error).__name__})")
    return None
