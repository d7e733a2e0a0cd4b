"""Noisy-student training (Won, Choi, Serra 2021; Xie et al. 2020).

Every step takes half a batch of labelled windows and half of unlabelled
windows. The frozen teacher (inference mode: no dropout, batch-norm running
statistics) scores the CLEAN unlabelled windows; its sigmoid outputs are the
pseudo-labels, soft, with no threshold. The student sees an augmented copy
of the same audio (tagger.augment's chain, in the graph) and its own
dropout, labelled and unlabelled halves in one forward pass. The loss is

    BCE(student(x_l), y_l) + w * BCE(student(augment(x_u)), teacher(x_u))

each term averaged over its half of the GLOBAL batch, w = pseudo_label_weight
(1 in the paper). The released code calls a labelled-side `skeptical_loss`
that it never defines; here the labelled term is plain BCE.

The unlabelled records' tags are never parsed (`with_tags=False`). Teacher
and student may differ in window length and input kind: the unlabelled
windows are read long enough for both (whole segments), the shorter model
sees the centred crop of the same audio, and a teacher trained on log-mel
records gets its own log-mel front end computed from the raw audio in the
graph. The step is the backend's (`training.backend`): under TensorFlow
`make_noisy_student_function`, run by any tf.distribute strategy
(`strategy.run`; the teacher's forward pass is part of the distributed
step), optionally XLA-compiled; under JAX `backend_jax`'s jitted step,
the teacher's frozen variables given to it as state. Either computes the
loss above from the same draws (`tagger.augment.step_seed`).
"""

from __future__ import annotations

import dataclasses
import math

import keras
from keras import ops

from tagger.augment import Augmentation
from tagger.config import TrainConfig
from tagger.errors import UserError
from tagger.records.info import DatasetInfo, is_labelled, load_info, require_raw


def centre_crop(x, samples: int):
    """(batch, n) -> (batch, samples), the centred part (n >= samples)."""
    n = x.shape[1]
    if n == samples:
        return x
    offset = (n - samples) // 2
    return x[:, offset:offset + samples]


@dataclasses.dataclass
class PseudoLabeller:
    """The noisy student's teacher inside the training step: a frozen tagger
    fed raw audio windows of `samples` samples, giving soft pseudo-labels.
    (A teacher as a model file whose scores are stored beside the records,
    for distillation, is `teacher_targets.Teacher`.)"""

    model: keras.Model
    samples: int
    to_input: object  # raw windows (batch, samples) -> the model's input

    def __call__(self, windows):
        """Soft pseudo-labels (batch, tags) float32 of the centre of `windows`."""
        x = self.to_input(centre_crop(windows, self.samples))
        return ops.stop_gradient(ops.cast(self.model(x, training=False), "float32"))


def load_teacher(path: str, dataset_info: DatasetInfo, backend) -> PseudoLabeller:
    """Loads a model saved by train.py (in the training `backend`'s scope,
    so its forward pass can run on every replica or device), frozen;
    checks it fits the dataset."""
    from tagger import fileio
    from tagger.models.saved import load_tagger, raw_audio_input

    if not fileio.exists(path):
        raise UserError(f"teacher model {path!r} not found; --teacher takes a model.keras "
                        "or model.hdf5 written by train.py")
    with backend.scope():
        model, info = load_tagger(path)
    model.trainable = False
    num_tags = model.outputs[0].shape[-1]
    if num_tags != dataset_info.num_tags or (
            info and list(info.tag_names) != list(dataset_info.tag_names)):
        raise UserError(f"the teacher {path!r} predicts other tags ({num_tags}) than the "
                        f"dataset ({dataset_info.num_tags}); use a teacher trained on "
                        "this dataset's tags")
    sample_rate, samples, to_input = raw_audio_input(model, info)
    if sample_rate != dataset_info.sample_rate:
        raise UserError(f"the teacher takes audio at {sample_rate} Hz but the dataset "
                        f"holds {dataset_info.sample_rate} Hz")
    return PseudoLabeller(model, samples, to_input)


def make_noisy_student_function(student: keras.Model, teacher: PseudoLabeller, optimizer, strategy,
                                labelled_batch: int, unlabelled_batch: int,
                                augmentation: Augmentation,
                                pseudo_label_weight: float = 1.0,
                                augment_labelled: bool = False,
                                jit_compile: bool = False, parts: bool = False):
    """Returns `train((labelled_iterator, unlabelled_iterator), steps)`: the
    loss summed over `steps` steps (with `parts`, the vector (loss, labelled
    term, weighted unlabelled term) summed). The labelled iterator yields
    per-replica (windows, tags) batches of `labelled_batch` in all, the
    unlabelled one windows alone, `unlabelled_batch` in all, at least as
    long as both models' windows. `augmentation` noises the student's view
    of the unlabelled windows (and of the labelled ones with
    `augment_labelled`)."""
    import tensorflow as tf

    from tagger.records.schema import to_float
    from tagger.training.trainer import descend, distributed_train_function, replica_index

    student_samples = student.inputs[0].shape[1]
    weight = float(pseudo_label_weight)

    def replica_step(x_l, y_l, x_u):
        x_l, x_u = to_float(x_l), to_float(x_u)  # int16 as read (distributed_train_data)
        step = optimizer.iterations
        targets = teacher(x_u)  # (batch_u, tags), clean audio, inference mode
        replica = replica_index()
        noisy_u = augmentation(centre_crop(x_u, student_samples), step * 2 + 1, replica)
        if augment_labelled:
            x_l = augmentation(x_l, step * 2, replica)
        n_l = tf.shape(x_l)[0]

        def objective():
            scores = tf.cast(student(tf.concat([x_l, noisy_u], 0), training=True),
                             tf.float32)
            labelled = tf.nn.compute_average_loss(
                keras.losses.binary_crossentropy(y_l, scores[:n_l]),
                global_batch_size=labelled_batch)
            unlabelled = weight * tf.nn.compute_average_loss(
                keras.losses.binary_crossentropy(targets, scores[n_l:]),
                global_batch_size=unlabelled_batch)
            return labelled + unlabelled, (labelled, unlabelled)

        loss, (labelled, unlabelled) = descend(student, optimizer, objective)
        return tf.stack([loss, labelled, unlabelled]) if parts else loss

    def next_batch(iterators):  # (labelled windows, their tags, unlabelled windows)
        labelled_it, unlabelled_it = iterators
        return (*next(labelled_it), next(unlabelled_it))

    return distributed_train_function(student, optimizer, strategy, replica_step, next_batch,
                                      jit_compile)


def check_batch(config: TrainConfig, replicas: int) -> None:
    """The global batch splits into equal labelled and unlabelled halves,
    each divisible across the replicas."""
    if config.batch_size % (2 * replicas):
        raise UserError(
            f"--batch-size {config.batch_size} must split into a labelled and an "
            f"unlabelled half, each divisible by the {replicas} replica(s); use a "
            f"multiple of {2 * replicas}")


class NoisyStudent:
    """The noisy-student parts of a training run (see tagger.training.run)."""

    def __init__(self, config: TrainConfig, info: DatasetInfo, backend, window: int):
        settings = config.noisy_student
        self.config = config
        self.backend = backend
        self.info = info
        self.unlabelled_dir = settings.unlabelled_data_dir or config.data_dir
        self.unlabelled_info = self._unlabelled_info(settings)
        self.teacher = load_teacher(settings.teacher, info, backend)
        self.long_window = max(window, math.ceil(self.teacher.samples / info.segment_length))
        self.window = window
        self.half = config.batch_size // 2

    def _unlabelled_info(self, settings) -> dict:
        info = self.info if self.unlabelled_dir == self.config.data_dir \
            else load_info(self.unlabelled_dir)
        split = settings.unlabelled_split
        if split not in info.splits:
            unlabelled = [s for s in info.splits if not is_labelled(info, s)]
            raise UserError(f"split {split!r} is not in {self.unlabelled_dir!r}; unlabelled "
                            f"splits there: {', '.join(unlabelled) or 'none'} (build_mtt.py "
                            "--unlabelled-fraction F writes a 'student' split)")
        if is_labelled(info, split):
            raise UserError(f"split {split!r} of {self.unlabelled_dir!r} is labelled; "
                            "--unlabelled-split takes a split marked unlabelled in "
                            "dataset_info.json")
        if info.splits[split]["clips"] == 0:
            raise UserError(f"the unlabelled split {split!r} holds no clips")
        for key in ("sample_rate", "segment_length"):
            if getattr(info, key) != getattr(self.info, key):
                raise UserError(f"the unlabelled records have {key} {getattr(info, key)} but "
                                f"the labelled ones {getattr(self.info, key)}; build both alike")
        require_raw(info, self.unlabelled_dir, "noisy-student training")
        return info

    def iterators(self, seed: int):
        """(labelled, unlabelled) iterators over the backend's batches,
        shuffled with `seed` (the unlabelled ones with seed + 1)."""
        c = self.config
        labelled = self.backend.train_data(
            c.data_dir, self.info, self.half, self.window, c.shuffle_segments, seed,
            c.num_read_threads)
        unlabelled = self.backend.train_data(
            self.unlabelled_dir, self.unlabelled_info, self.half, self.long_window,
            c.shuffle_segments, seed + 1, c.num_read_threads,
            split=c.noisy_student.unlabelled_split, with_tags=False)
        return labelled, unlabelled

    def train_function(self, model, optimizer, stage: int, jit_compile: bool = False):
        c = self.config
        noise = Augmentation(self.info.sample_rate, c.seed, stage)
        return self.backend.noisy_student_function(
            model, self.teacher, optimizer, self.half, noise,
            c.noisy_student.pseudo_label_weight, c.augment, jit_compile)


def setup(config: TrainConfig, info: DatasetInfo, backend, window: int):
    """Checks the run's augmentation and noisy-student settings against the
    data and the backend's replicas; returns a NoisyStudent, or None
    without a teacher."""
    if config.augment:
        require_raw(info, config.data_dir, "--augment")
    if not config.noisy_student.teacher:
        return None
    require_raw(info, config.data_dir, "noisy-student training")
    check_batch(config, backend.replicas)
    return NoisyStudent(config, info, backend, window)


def augmentation(config: TrainConfig, info: DatasetInfo, stage: int):
    """The Augmentation of a supervised run's stage `stage` with `augment`, else None."""
    return Augmentation(info.sample_rate, config.seed, stage) if config.augment else None
