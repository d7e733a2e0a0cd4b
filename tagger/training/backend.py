"""The one seam between a training run and its Keras backend.

`training.run.Run` is the run loop for every backend (schedule, checkpoints,
resume, validation, logs, early stopping); what differs is behind a
`Backend`, made by `for_run`:

  name, replicas, chief, task_id, is_tpu, compiles_every_step
  scope()                      where the model's and optimizer's variables are made
  describe() -> str            the devices, for messages (JAX's also has
                               cpu_settings_note(), for its training line)
  precision_line(precision)    the line a mixed-precision run prints, or None
  barrier(), chief_first(work) several workers or hosts in step
  train_data(..., targets, split, with_tags) -> iterator
                               an epoch's training batches, as its steps take them
                               (a split's windows alone without tags; a
                               distillation's soft targets in place of the tags)
  distribute(batches)          batches of a run's own (a head's embeddings)
  train_function(model, optimizer, global_batch, jit, augmentation, loss)
                               -> train(iterator, steps) -> summed loss; JAX's also
                               has end_epoch() (its state written back) and
                               stop_input() (its input thread stopped, before the
                               run closes the iterators: `epoch_steps`)
  noisy_student_function(student, teacher, optimizer, half_batch, augmentation,
                         pseudo_label_weight, augment_labelled, jit)
                               -> train((labelled, unlabelled) iterators, steps)
  predictor(model, jit)        -> a ClipPredictor
  read_tensorflow_checkpoint(prefix, model, optimizer)
                               a run's checkpoint in TensorFlow's earlier format

`backend_tf.TensorFlowBackend` (tf.distribute) and `backend_jax.JaxBackend`
(keras.distribution over JAX's devices) are the two.
"""

from __future__ import annotations

from tagger import backends
from tagger.errors import UserError


def for_run(strategy: str = "auto", tpu: str | None = None):
    """The Backend of the Keras backend this process runs on, over the
    devices `strategy` (and `tpu`) name: made once a process for each, and
    the same one given again (to train.py --suggest after its run, to each
    round of noisy-student training), since making another would join the
    hosts again (`jax.distributed.initialize`, which JAX refuses a second
    time) or start a second tf.distribute cluster."""
    key = (backends.current(), strategy, tpu)
    if key not in _MADE:
        if key[0] == "jax":
            from tagger.training.backend_jax import JaxBackend

            _MADE[key] = JaxBackend(strategy, tpu)
        else:
            from tagger.training.backend_tf import TensorFlowBackend

            _MADE[key] = TensorFlowBackend(strategy, tpu)
    return _MADE[key]


_MADE = {}  # (Keras backend, strategy, tpu) -> the process's Backend of them


def check_batch(backend, batch_size: int) -> None:
    """A batch that the replicas do not divide is a UserError."""
    if batch_size % backend.replicas:
        raise UserError(f"--batch-size {batch_size} is not divisible by the "
                        f"{backend.replicas} replicas ({backend.describe()}); use a "
                        f"multiple of {backend.replicas}")


def check_settings(config) -> None:
    """The settings of `config` that only TensorFlow trains with are a
    UserError under another backend (--xla off: JAX compiles every step)."""
    if backends.current() == "tensorflow":
        return
    if config.jit_compile is False:
        raise UserError(f"--xla off does not apply under {backends.current()}: it compiles "
                        "every step with XLA; leave --xla out")
