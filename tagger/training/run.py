"""A training run: stages, validation, checkpoints, resume, final model and test metrics.

Run folder `<train_dir>/<run_name>/`:
  config.json          the TrainConfig
  state.json           where training stands; the commit point of every epoch
  history.csv          one row per epoch
  checkpoints/         epoch-NNNNN (model + optimizer) and best-NNNNN (model)
  logs/                TensorBoard scalars
  model.keras, model.hdf5, metrics.json   written when training ends
  train_targets.tsv    (distillation) the training targets' lookup table, while it trains
  .lock.json           the running process (pid, host, start time), while it runs

A new run writes state.json before its first checkpoint. Each epoch writes
a new checkpoint and then rewrites state.json atomically; older checkpoints
are deleted only after that, so a run killed at any moment (SIGKILL
included) resumes with `resume=True` from its last epoch, same stage,
learning rate and optimizer state. Epoch e reads the training data in an
order fixed by (seed, e) alone (`records.order`, whichever reader serves
it), so a resumed run sees the batches an uninterrupted one would. A
folder whose checkpoints have no readable state.json beside them is
refused, never overwritten; a continued run checks the checkpoints that
state.json names before it trains (`damaged_checkpoints`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import re
import time

import keras

from tagger import destination, fileio, strict_json
from tagger.config import TrainConfig, from_dict, join_path, saved_train_config, to_dict
from tagger.csv_cells import csv_text
from tagger.errors import UserError
from tagger.evaluation.agreement import teacher_tags
from tagger.evaluation.metrics import tag_metrics
from tagger.folder_lock import folder_lock
from tagger.models.saved import MODEL_SUFFIXES, save_tagger
from tagger.records import batches as record_batches
from tagger.records.info import DatasetInfo, load_info
from tagger.records.windows import train_windows_per_pass
from tagger.training import backend as backends
from tagger.training import checkpoints, damaged_checkpoints, model_setup, started_models
from tagger.training.monitor import (
    monitor_line,
    monitored,
    monitored_score,
    undefined_auc_line,
)
from tagger.training.run_state import RunState, read_state, state_text
from tagger.training.scalars_log import ScalarsLog
from tagger.training.schedule import make_optimizer, schedule_for

# The settings a continued run shares with the run it continues; the others
# (strategy, precision, XLA, progress, test evaluation) may change on resume.
RUN_FIELDS = ("data_dir", "model", "model_args", "window_segments", "batch_size",
              "schedule", "optimizer", "momentum", "lr", "lr_decay", "num_stages",
              "initial_stage", "patience", "monitor", "max_epochs_per_stage",
              "switch_epochs", "total_epochs", "steps_per_epoch", "validation_steps",
              "shuffle_segments", "num_read_threads", "seed", "augment",
              "noisy_student", "distillation", "pretrained")
# compared key by key (one flag each)
NESTED_FIELDS = ("model_args", "noisy_student", "distillation", "pretrained")
# Files whose presence shows that a run folder holds work worth keeping.
LOCK_FILE = ".lock.json"  # held while a run writes (tagger.folder_lock)
RUN_OUTPUTS = ("history.csv", "metrics.json", "model.keras", "model.hdf5")

HISTORY_FIELDS = ("epoch", "stage", "stage_epoch", "optimizer", "lr", "train_loss",
                  "val_loss", "val_roc_auc", "val_pr_auc", "seconds")


def train(config: TrainConfig) -> dict:
    """Trains as `config` says; returns the run's final metrics dict.

    With `resume`, the run folder's saved config must agree with `config` in
    every `RUN_FIELDS` setting (a difference is a UserError naming it); the
    other settings come from `config`. A finished run is not trained or
    evaluated again: its saved metrics are returned. A run on a trained
    model's body (`config.pretrained`) is `head_run.train`'s.
    """
    if config.pretrained.from_model:
        raise ValueError("a run with pretrained.from_model trains through "
                         "tagger.training.head_run.train")
    config, info, backend, precision = prepare(config)
    from tagger.training import distillation, semi_supervised

    started_models.check_teachers(config, run_dir_of(config))  # before they score anything
    distil = distillation.setup(config, info, backend)
    run = Run(config, distil.info if distil else info, backend, precision)
    run.noisy_student = semi_supervised.setup(config, info, backend, run.window)
    run.distillation = distil
    return run.execute()


def prepare(config: TrainConfig) -> tuple:
    """(config, dataset info, backend, precision) of a run: `config` with
    a resumed run's settings (`resume_settings`), its records' info (train
    and val must hold clips), the Keras backend's devices (`backend`) and
    the compute type; a batch that the replicas do not divide is a
    UserError, and so is a setting the backend cannot train with."""
    config = resume_settings(config)
    check_initial_stage(config)  # before the records are read
    info = load_info(config.data_dir)
    for split, role in (("train", "training"), ("val", "validation (early stopping and "
                                               "the best checkpoint)")):
        if info.splits[split]["clips"] == 0:
            raise UserError(f"the {split} split of {config.data_dir!r} holds no clips; "
                            f"{role} needs some: build a larger dataset or other split")
    backends.check_settings(config)
    backend = backends.for_run(config.strategy, config.tpu)
    precision = config.mixed_precision
    if precision == "off" and backend.is_tpu:
        precision = "bfloat16"
    backends.check_batch(backend, config.batch_size)
    return config, info, backend, precision


class Run:
    """The state machine of one training run (see the module docstring)."""

    def __init__(self, config: TrainConfig, info: DatasetInfo, backend, precision: str):
        self.config = config
        self.info = info
        self.backend = backend
        self.precision = precision
        self.chief = backend.chief
        self.run_dir = run_dir_of(config)
        self.window = model_setup.window_segments(config, info)
        try:
            self.stages = schedule_for(config)
        except ValueError as error:
            raise UserError(str(error)) from None
        self.state = RunState()
        self.global_batch = config.batch_size
        self.noisy_student = None  # a semi_supervised.NoisyStudent, or None
        self.distillation = None  # a distillation.Distillation, or None
        self._said_validation_part = False
        self._said_undefined_auc = False
        self._work_files = []
        self._xla_choices = {}  # id(trained model) -> its steps are compiled by XLA
        self._split_labels = {}  # split -> its (clip ids, tags), once read

    # -- set-up -------------------------------------------------------------
    def execute(self) -> dict:
        """Trains, holding the run folder's lock (`tagger.folder_lock`,
        `<run>/.lock.json`) so that a second run with the same --run-name
        refuses, naming the owner, instead of writing into the same folder."""
        if not self.chief:
            return self._execute()
        destination.prepare_output_dir(self.run_dir, "the run folder (--train-dir)")
        with folder_lock(join_path(self.run_dir, LOCK_FILE), self.run_dir, "training run",
                         "give this one another --run-name", label="run folder"):
            return self._execute()

    def _execute(self) -> dict:
        self._open_run_dir()
        if self.config.resume and self.state.done:
            return self._finished()
        self.state = damaged_checkpoints.checked(  # before anything is built or trained
            self.state, self.run_dir, self.config.drop_damaged_checkpoints, self._score,
            self.chief, self._log)
        keras.utils.set_random_seed(self.config.seed)
        keras.mixed_precision.set_global_policy(
            {"off": "float32", "float16": "mixed_float16",
             "bfloat16": "mixed_bfloat16"}[self.precision])
        if self.backend.name != "tensorflow":  # JAX's
            self._log(f"training on {self.backend.describe()}{self.backend.cpu_settings_note()}")
        line = self.backend.precision_line(self.precision)
        if line:
            self._log(line)
        try:
            with self.backend.scope():
                self.model = self._build_model()
            self._write_config()
            if not self.state.last_checkpoint and not self.state.best_checkpoint:
                self._commit()  # a new run: state.json exists before any checkpoint
            self.predictor = self.backend.predictor(self.model,
                                                    self.config.jit_compile is True)
            if self.config.resume and self.state.last_checkpoint and not self.state.done:
                self._log(f"resuming {self.run_dir} after epoch {self.state.epoch}")
            elif self.config.resume and not self.state.history:
                self._log(f"no run to resume in {self.run_dir}: starting it")
            self._scalars = ScalarsLog(join_path(self.run_dir, "logs")) if self.chief else None
            self._train_stages()
            return self._finish()
        finally:
            keras.mixed_precision.set_global_policy("float32")
            if getattr(self, "_scalars", None) is not None:
                self._scalars.close()

    def _open_run_dir(self):
        state_path = join_path(self.run_dir, "state.json")
        if not fileio.exists(state_path):
            self._refuse_stateless_run()
        elif not (self.config.resume or self.config.initial_stage > 0):
            raise UserError(f"run folder {self.run_dir!r} already holds a run; pass "
                            "--resume to continue it or --run-name for a new one")
        else:
            self.state = read_state(state_path)
            if self.config.initial_stage > 0 and not self.config.resume:
                # A fresh start of a later stage from the best model so far.
                old = self.state
                self.state = RunState(best_checkpoint=old.best_checkpoint,
                                      best_score=old.best_score, best_epoch=old.best_epoch,
                                      history=old.history, stages=old.stages,
                                      epoch=len(old.history),
                                      base_model_sha256=old.base_model_sha256,
                                      teacher_sha256=old.teacher_sha256)
        self.state.teacher_sha256 = started_models.teachers_sha256(self.config, self.state,
                                                                   self.run_dir, self._log)
        if self.chief:
            fileio.makedirs(join_path(self.run_dir, "checkpoints"))

    def _refuse_stateless_run(self):
        """A folder with checkpoints or results but no state.json cannot be
        continued (where training stood is unknown) and must not be wiped."""
        found = [name for name in RUN_OUTPUTS
                 if fileio.exists(join_path(self.run_dir, name))]
        checkpoints = join_path(self.run_dir, "checkpoints")
        if fileio.isdir(checkpoints):
            names = sorted({f.split(".")[0] for f in fileio.listdir(checkpoints)})
            if names:
                found.insert(0, f"checkpoints ({', '.join(names)})")
        if found:
            raise UserError(
                f"run folder {self.run_dir!r} holds {', '.join(found)} but no state.json, "
                "so where its training stood is unknown; it is left as it is: to start "
                "anew, choose another --run-name or --train-dir (or remove the folder)")

    def _finished(self) -> dict:
        """The saved metrics of a finished run, which is not trained again."""
        path = join_path(self.run_dir, "metrics.json")
        try:
            metrics = json.loads(fileio.read_text(path))
        except (OSError, ValueError) as error:
            raise UserError(f"run {self.run_dir!r} is finished but its {path!r} cannot be "
                            f"read ({fileio.describe_os_error(error)}); start a new run "
                            "with --run-name") from None
        best = metrics.get("best") or {}
        self._log(f"run {self.run_dir} is already finished: {self.state.epoch} epochs, "
                  f"best epoch {self.state.best_epoch}"
                  + (f" (val ROC-AUC {best['val_roc_auc']:.4f})"
                     if best.get("val_roc_auc") is not None else "")
                  + f"; its model is {join_path(self.run_dir, 'model.keras')}")
        return {**metrics, "run_dir": self.run_dir}

    def _write_config(self):
        """Records the run's config; a continued run first proves that its
        checkpoint fits the model, so a refused one leaves the folder as it was."""
        saved = self.state.last_checkpoint or self.state.best_checkpoint
        if saved:
            self._restore(saved)
        if self.chief:
            fileio.write_atomic(join_path(self.run_dir, "config.json"),
                                strict_json.dumps(to_dict(self.config), indent=2,
                                                  sort_keys=True))

    def _build_model(self):
        """The model the run trains, built for the records."""
        return model_setup.build(self.config, self.info, self.window)

    # -- training -----------------------------------------------------------
    def _stage(self):
        return self.stages[self.state.stage]

    def _trained_model(self, stage):
        """The model whose trainable weights `stage` trains: the run's."""
        return self.model

    def _train_stages(self):
        said = None
        if self.state.stage < len(self.stages) and not self.state.done:
            self._log(self._monitor_line())
        while self.state.stage < len(self.stages) and not self.state.done:
            stage = self._stage()
            steps, size = self._epoch_size(stage)
            if size != said:
                self._log(size)
                said = size
            trained = self._trained_model(stage)
            with self.backend.scope():
                optimizer = make_optimizer(stage, self.config.momentum, self.precision)
                optimizer.build(trained.trainable_variables)
            if self.state.stage_started:
                self._restore(self.state.last_checkpoint, optimizer)
            elif self.state.best_checkpoint:
                self._restore(self.state.best_checkpoint)
            self._log(f"stage {stage.index}: {stage.optimizer} lr={stage.learning_rate:g}"
                      f" (up to {stage.max_epochs} epochs"
                      + (f", patience {stage.patience})" if stage.patience is not None
                         else ")"))
            train_fn = self._train_function(trained, optimizer, stage,
                                            self._xla(trained, stage, steps))
            while not self._stage_over(stage):
                row = self._train_epoch(train_fn, self._epoch_data(stage), steps, stage)
                self._end_epoch(row, optimizer)
            self._end_stage(stage)

    def _train_function(self, trained, optimizer, stage, jit: bool):
        """`train(iterator, steps)`: `stage`'s steps of `trained` with
        `optimizer` (compiled by XLA with `jit`)."""
        if self.noisy_student:
            return self.noisy_student.train_function(self.model, optimizer, stage.index, jit)
        from tagger.training import distillation, semi_supervised

        return self.backend.train_function(
            trained, optimizer, self.global_batch, jit,
            semi_supervised.augmentation(self.config, self.info, stage.index),
            distillation.loss_of(self.config))

    def _xla(self, trained, stage, steps: int) -> bool:
        """Whether the steps of `trained` are compiled by XLA (`xla_choice`):
        decided at its first stage, for `steps` steps an epoch, and said."""
        if self.backend.compiles_every_step:
            return True
        if id(trained) not in self._xla_choices:
            from tagger.training import xla_choice

            step = {"trains": ("noisy student" if self.noisy_student else
                               "distillation" if self.distillation else "tags"),
                    "window_segments": self.window, "features": self.info.features,
                    "segment_shape": list(self.info.segment_shape),
                    "batch": self.global_batch, "precision": self.precision,
                    "strategy": self.backend.describe(),
                    "replicas": self.backend.replicas,
                    "augment": self.config.augment}

            def timing_optimizer():
                with self.backend.scope():
                    optimizer = make_optimizer(stage, self.config.momentum, self.precision)
                    optimizer.build(trained.trainable_variables)
                return optimizer

            timer = xla_choice.StepTimer(
                lambda jit, optimizer: self._train_function(trained, optimizer, stage, jit),
                timing_optimizer, lambda: self._epoch_data(stage), trained.variables)
            with record_batches.shard_errors(self.config.data_dir, "train", self.info), \
                    self._target_errors():
                choice = xla_choice.choose(self.config.jit_compile,
                                           xla_choice.choice_fields(trained, step),
                                           steps * stage.max_epochs, timer,
                                           self.backend.strategy, self.chief)
            if choice.line:
                self._log(choice.line)
            self._xla_choices[id(trained)] = choice.compile
        return self._xla_choices[id(trained)]

    def _epoch_data(self, stage=None):
        """An iterator over the batches of the coming epoch (of `stage`),
        shuffled with a seed made from the run's seed and the epoch alone (so
        a resumed run reads what an uninterrupted one would); noisy-student
        runs get (labelled, unlabelled) iterators."""
        if self.noisy_student:
            return self.noisy_student.iterators(epoch_seed(self.config.seed, self.state.epoch))
        targets = None
        if self.distillation:
            from tagger.training.distillation import TABLE_FILE

            targets = self.distillation.train_targets(self._work_file(TABLE_FILE))
        return self.backend.train_data(
            self.config.data_dir, self.info, self.global_batch, self.window,
            self.config.shuffle_segments, epoch_seed(self.config.seed, self.state.epoch),
            self.config.num_read_threads, targets=targets)

    def _stage_over(self, stage) -> bool:
        if self.state.stage_epoch >= stage.max_epochs:
            return True
        return stage.patience is not None and self.state.wait >= stage.patience \
            and self.state.stage_epoch > 0

    def _epoch_size(self, stage=None) -> tuple:
        """(steps per epoch, the expected size of the run, said at its start):
        training windows of one pass, from dataset_info, over the batch (at
        most --steps-per-epoch), epochs and total steps (the same in every
        `stage`)."""
        windows = train_windows_per_pass(self.info, "train", self.window)
        labelled = self.global_batch // 2 if self.noisy_student else self.global_batch
        full = max(1, windows // labelled)
        steps = min(full, self.config.steps_per_epoch or full)
        epochs = sum(stage.max_epochs for stage in self.stages)
        line = (f"run size: {windows} training windows of {self.window} segment(s) per "
                f"pass / batch {labelled} = {steps} steps per epoch"
                + (" (--steps-per-epoch)" if steps < full else ""))
        if self.config.schedule == "adam_then_sgd":
            return steps, (line + f"; {epochs} epochs in {len(self.stages)} stage(s) = "
                           f"{epochs * steps} steps")
        stage = self.stages[0]
        return steps, (line + f"; up to {stage.max_epochs} epochs per stage x "
                       f"{len(self.stages)} stage(s) (a stage ends after {stage.patience} "
                       f"epochs without improvement) = up to {epochs * steps} steps")

    def _train_epoch(self, train_fn, iterator, steps, stage) -> dict:
        """The epoch's steps on `iterator`, then validation: its history row.
        The iterator is closed (a reader's workers stopped) before validation;
        a non-finite loss stops the run before the epoch counts (`epoch_steps`)."""
        start = time.time()
        from tqdm import tqdm

        from tagger.training import epoch_steps

        with tqdm(total=steps, desc=f"epoch {self.state.epoch + 1}", unit="step",
                  disable=not (self.config.progress and self.chief), leave=False) as bar, \
                epoch_steps.closed_input(iterator, train_fn):
            with record_batches.shard_errors(self.config.data_dir, "train", self.info), \
                    self._target_errors():
                total = epoch_steps.train_steps(train_fn, iterator, steps,
                                                self.config.steps_per_execution, bar,
                                                self._non_finite)
                end_epoch = getattr(train_fn, "end_epoch", None)  # JAX's: its state written back
                if end_epoch is not None:
                    end_epoch()
        val = self._validate()
        return {"epoch": self.state.epoch + 1, "stage": stage.index,
                "stage_epoch": self.state.stage_epoch + 1, "optimizer": stage.optimizer,
                "lr": stage.learning_rate, "train_loss": total / steps,
                "val_loss": val["loss"], "val_roc_auc": val["roc_auc"],
                "val_pr_auc": val["pr_auc"], "seconds": round(time.time() - start, 2)}

    def _validate(self) -> dict:
        from tagger.training.epoch_steps import check_validation

        predictions = self._predictions("val", self.config.validation_steps)
        loss = self._loss(predictions)
        check_validation(loss, self._non_finite)  # NaN weights: stopped before the AUCs
        metrics = self._tag_metrics(predictions)
        self._say_validation_part(len(predictions.clip_ids))
        self._say_undefined_auc(metrics.roc_auc, len(predictions.clip_ids))
        return {"loss": loss, "roc_auc": metrics.roc_auc, "pr_auc": metrics.pr_auc}

    def _non_finite(self, where: str, loss: float):
        """The UserError that stops the run at a non-finite loss of the coming epoch."""
        from tagger.training.epoch_steps import non_finite

        return non_finite(self.config, self.state.epoch, where, loss)

    def _say_validation_part(self, clips: int):
        """One line, once a run, when validation reads part of the split."""
        total = self.info.splits["val"]["clips"]
        if clips < total and not self._said_validation_part:
            self._log(f"validation: the first {clips} of the {total} clips of the val split, "
                      f"each read whole (--validation-steps {self.config.validation_steps}); "
                      "test reads the whole split")
            self._said_validation_part = True

    def _say_undefined_auc(self, roc_auc: float, clips: int):
        """One line, once a run, when the val AUCs are undefined (NaN)."""
        if math.isnan(roc_auc) and not self._said_undefined_auc:
            self._log(undefined_auc_line(clips, self.info.splits["val"]["clips"],
                                         bool(self.config.distillation.teachers)))
            self._said_undefined_auc = True

    def _loss(self, predictions) -> float:
        """The loss of ClipPredictions that the run reports (and val_loss
        monitors): the mean BCE of the windows against their clips' tags."""
        return predictions.window_loss

    def _predictions(self, split: str, max_batches: int | None = None):
        """The model's ClipPredictions of `split` (at most `max_batches` batches)."""
        with self._target_errors():
            return self.predictor(self.config.data_dir, split, self.window,
                                  batch_size=self.global_batch, info=self.info,
                                  max_batches=max_batches,
                                  labels=self._teacher_targets(split) or self._labels(split))

    def _labels(self, split: str) -> tuple:
        """(clip ids, tags) of `split`, read once a run (every validation
        scores against them; reading them reads the split's records whole)."""
        if split not in self._split_labels:
            with record_batches.shard_errors(self.config.data_dir, split, self.info):
                self._split_labels[split] = record_batches.clip_labels(
                    self.config.data_dir, split, self.info)
        return self._split_labels[split]

    def _teacher_targets(self, split: str):
        """The teachers' clip targets of `split` in a distillation run, else None."""
        return self.distillation.clip_targets(split) if self.distillation else None

    def _target_errors(self):
        """`evaluation.against.target_errors` in a distillation run: a clip
        whose targets are missing or misplaced is one line."""
        from tagger.evaluation.against import target_errors

        if not self.distillation:
            return contextlib.nullcontext()
        return target_errors(self.config.data_dir)

    def _tag_metrics(self, predictions):
        """The AUCs of clip predictions against their labels, or in a
        distillation run against the teachers' tags of each clip."""
        labels = teacher_tags(predictions.labels) if self.distillation else predictions.labels
        return tag_metrics(labels, predictions.scores, self.info.tag_names)

    def _score(self, row: dict) -> float:
        """The epoch's score, lower is better: its monitored value."""
        return monitored_score(row, monitored(self.config))

    def _monitor_line(self) -> str:
        """The line saying what picks the best epoch."""
        return monitor_line(self.config)

    def _end_epoch(self, row: dict, optimizer):
        state = self.state
        state.epoch += 1
        state.stage_epoch += 1
        state.stage_started = True
        score = self._score(row)
        improved = score < state.best_score
        old = [state.last_checkpoint]
        state.last_checkpoint = self._save(f"epoch-{state.epoch:05d}", optimizer)
        if improved:
            old.append(state.best_checkpoint)
            state.best_score = score
            state.best_epoch = state.epoch
            state.best_checkpoint = self._save(f"best-{state.epoch:05d}")
            state.wait = 0
        else:
            state.wait += 1
        state.history.append(row)
        self._commit()
        self._delete_checkpoints(c for c in old if c)
        self._log(f"epoch {row['epoch']}: train loss {row['train_loss']:.4f}  val loss "
                  f"{row['val_loss']:.4f}  val ROC-AUC {row['val_roc_auc']:.4f}  "
                  f"PR-AUC {row['val_pr_auc']:.4f}  ({row['seconds']:.0f} s)"
                  + ("  best" if improved else ""))
        if self._scalars is not None:
            self._scalars.write(state.epoch, {key: row[key] for key in (
                "train_loss", "val_loss", "val_roc_auc", "val_pr_auc", "lr")})

    def _end_stage(self, stage):
        rows = [r for r in self.state.history if r["stage"] == stage.index]
        best = min(rows, key=self._score) if rows else None
        summary = {"stage": stage.index, "optimizer": stage.optimizer,
                   "lr": stage.learning_rate, "epochs": len(rows),
                   "best_val_loss": best["val_loss"] if best else None,
                   "best_val_roc_auc": best["val_roc_auc"] if best else None}
        self.state.stages = [s for s in self.state.stages if s["stage"] != stage.index]
        self.state.stages.append(summary)
        self.state = dataclasses.replace(self.state, stage=self.state.stage + 1, stage_epoch=0,
                                         wait=0, stage_started=False)
        self._commit()
        if best:
            self._log(f"stage {stage.index} done: lr={stage.learning_rate:g}, "
                      f"{len(rows)} epochs, best val loss {best['val_loss']:.4f}, "
                      f"val ROC-AUC {best['val_roc_auc']:.4f}")

    # -- checkpoints --------------------------------------------------------
    def _checkpoint_dir(self) -> str:
        if self.chief:
            return join_path(self.run_dir, "checkpoints")
        return join_path(self.run_dir, f".worker-{self.backend.task_id}")

    def _save(self, name: str, optimizer=None) -> str:
        """Writes checkpoint `name` of the model (and `optimizer`)."""
        path = join_path(self._checkpoint_dir(), name)
        try:
            checkpoints.write(path, self.model, optimizer)
        except Exception as error:
            if not fileio.is_write_error(error) and not isinstance(error, UserError):
                raise
            self._delete_checkpoints([name])  # no partial checkpoint stays behind
            if isinstance(error, UserError):
                raise
            raise destination.output_error("checkpoint", checkpoints.path_of(path),
                                           error) from None
        return name

    def _restore(self, name: str, optimizer=None):
        """Reads checkpoint `name` into the model (and `optimizer`); one
        written in TensorFlow's format by an earlier version through the
        backend."""
        path = join_path(self.run_dir, "checkpoints", name)
        self.backend.barrier()  # the chief has finished writing it
        if checkpoints.is_tensorflow_format(path):
            return self.backend.read_tensorflow_checkpoint(path, self.model, optimizer)
        try:
            checkpoints.read(path, self.model, optimizer)
        except checkpoints.READ_ERRORS as error:
            raise checkpoints.unreadable(path, error) from None

    def _delete_checkpoints(self, names):
        checkpoints.remove(self._checkpoint_dir(), names)

    def _work_file(self, name: str) -> str:
        """The path of a file of this process's own that its input pipeline
        reads (a lookup table): the chief's in the run folder, another
        worker's in its scratch folder; removed when the run ends."""
        folder = self.run_dir if self.chief else self._checkpoint_dir()
        fileio.makedirs(folder)
        self._work_files.append(join_path(folder, name))
        return self._work_files[-1]

    def _commit(self):
        if not self.chief:
            return
        self._write(join_path(self.run_dir, "history.csv"), _history_csv(self.state.history))
        self._write(join_path(self.run_dir, "state.json"), state_text(self.state))

    @staticmethod
    def _write(path: str, text: str):
        """write_atomic with a failure (full disk, ...) as one UserError line."""
        with destination.reported("run file", path):
            fileio.write_atomic(path, text)

    # -- the end ------------------------------------------------------------
    def _finish(self) -> dict:
        if self.state.best_checkpoint:
            self._restore(self.state.best_checkpoint)
        model_info = self._model_info()
        best_row = next((r for r in self.state.history
                         if r["epoch"] == self.state.best_epoch), None)
        said = getattr(self.backend, "input_line", lambda: None)()
        if said:
            self._log(said)
        metrics = {"run_dir": self.run_dir, "monitor": monitored(self.config),
                   "best_epoch": self.state.best_epoch, "best": best_row,
                   "epochs": self.state.epoch, "stages": self.state.stages}
        if self.config.evaluate_test and self.info.splits.get("test", {}).get("clips"):
            test = self._predictions("test")
            result = self._tag_metrics(test)
            metrics["test"] = {"loss": self._loss(test), **result.as_dict()}
            self._log(f"test ROC-AUC {result.roc_auc:.4f}  PR-AUC {result.pr_auc:.4f}")
        if self.chief:
            for name in ("model.keras", "model.hdf5"):
                path = join_path(self.run_dir, name)
                with destination.reported("model", path):
                    save_tagger(self.model, model_info, path)
            self._write(join_path(self.run_dir, "metrics.json"),
                        strict_json.dumps(metrics, indent=2, default=float))
        self.state.done = True
        self._commit()
        for path in self._work_files:
            fileio.remove_quietly(path)
        if not self.chief:  # scratch checkpoints of the other workers
            scratch = self._checkpoint_dir()
            self._delete_checkpoints(checkpoints.names_in(scratch))
            fileio.rmdir(scratch)
        return metrics

    def _model_info(self):
        """The TaggerMetadata saved with the model."""
        return model_setup.model_info(self.config, self.info, self.window)

    def _log(self, message: str):
        if self.chief:
            print(message, flush=True)


def epoch_seed(seed: int, epoch: int) -> int:
    """The input pipeline's seed for the epoch after `epoch` finished ones."""
    return (int(seed) * 1_000_003 + int(epoch)) % (2**31 - 1)


def check_initial_stage(config: TrainConfig) -> None:
    """A UserError where `initial_stage` has nothing to start from: a later
    stage starts from the run's best model so far, so its folder must hold
    a run (state.json) and, unless it is resumed or may go on without
    one (`drop_damaged_checkpoints`: from the start when none is good), a
    best model."""
    if config.initial_stage == 0:
        return
    run_dir = run_dir_of(config)
    path = join_path(run_dir, "state.json")
    if not fileio.exists(path):
        held = "no run"
    elif (config.resume or config.drop_damaged_checkpoints
          or read_state(path).best_checkpoint):
        return
    else:
        held = "no best model yet"
    raise UserError(f"--initial-stage {config.initial_stage} starts from the best model of "
                    f"an earlier run, and {run_dir!r} holds {held}; leave it out to start a "
                    "new run, or name that run with --run-name and --train-dir")


def saved_config(config: TrainConfig) -> TrainConfig | None:
    """The config.json of the run that `config` names, or None."""
    path = join_path(run_dir_of(config), "config.json")
    if not fileio.exists(path):
        return None
    try:
        return saved_train_config(json.loads(fileio.read_text(path)))
    except (ValueError, TypeError, UnicodeDecodeError) as error:
        raise UserError(f"{path!r} is damaged ({str(error).splitlines()[0]}); start a new "
                        "run with --run-name or --train-dir") from None


# Fields whose train.py flag has another name.
FIELD_FLAGS = {"teachers": "--distil", "from_model": "--from", "also_from": "--from",
               "join_val": "--hold-out-val"}
# Nested fields that a train.py switch turns off (--hold-out-val: join_val False).
SWITCHED_OFF = ("join_val",)


def flag_name(field: str) -> str:
    """The train.py flag of a TrainConfig field (distillation's teachers:
    --distil; pretrained's from_model: --from)."""
    return FIELD_FLAGS.get(field, "--" + field.replace("_", "-"))


def _model_flag(model: str, argument: str):
    """The train.py flag of family `model` that sets factory `argument`, or None."""
    return next((f for f in model_setup.family_spec(model).flags if f.keyword == argument),
                None)


def resume_settings(config: TrainConfig, given=None) -> TrainConfig:
    """The config of a continued run: the saved run's `RUN_FIELDS` settings
    with `config`'s other settings (hardware, reporting).

    `given`: the fields (and model arguments) the user set explicitly; the
    others are taken from the saved run. None (a library call): every field
    of `config` counts. A given setting that differs from the saved run is a
    UserError naming each flag and both values. Without `resume`, or with no
    saved run, `config` is returned as it is.
    """
    if not config.resume:
        return config
    saved = saved_config(config)
    if saved is None:
        return config
    asked = json.loads(json.dumps(to_dict(config)))  # tuples as lists, as saved
    before = json.loads(json.dumps(to_dict(saved)))
    differences, merged = [], dict(before)
    for field in RUN_FIELDS:
        if field in NESTED_FIELDS:
            continue
        if given is None or field in given:
            mine, theirs = asked[field], before[field]
            if field == "monitor":  # no monitor given: the run's own (`monitor.monitored`)
                mine, theirs = monitored(config), monitored(saved)
            if _comparable(field, mine) != _comparable(field, theirs):
                differences.append((flag_name(field), mine, theirs))
    for field in NESTED_FIELDS:
        mine_all, theirs_all = asked[field] or {}, before.get(field) or {}
        merged[field] = dict(theirs_all)
        for key in sorted(set(mine_all) | set(theirs_all)):
            if given is not None and key not in given:
                continue
            merged[field][key] = mine_all.get(key)
            mine, theirs = mine_all.get(key), theirs_all.get(key)
            if field == "noisy_student":  # the teacher and unlabelled folders are paths
                mine, theirs = _comparable("data_dir", mine), _comparable("data_dir", theirs)
            model_flag = _model_flag(config.model, key) if field == "model_args" else None
            switch = model_flag is not None and model_flag.type == "switch"
            if switch or key in SWITCHED_OFF:  # shown as its switch, set or not
                mine, theirs = ("set" if v is False else "not set" for v in (mine, theirs))
            if mine != theirs:
                differences.append((flag_name(model_flag.dest if model_flag else key),
                                    mine, theirs))
    if differences:
        listed = ", ".join(f"{flag} {_shown(mine)} (the run has {_shown(theirs)})"
                           for flag, mine, theirs in differences)
        raise UserError(f"--resume: {listed} differ from the run in {run_dir_of(config)!r}; "
                        "leave them out to continue it as it was, or start a new run with "
                        "--run-name")
    merged.update({f.name: asked[f.name] for f in dataclasses.fields(TrainConfig)
                   if f.name not in RUN_FIELDS},
                  run_name=config.run_name or saved.run_name, train_dir=config.train_dir,
                  resume=True)
    return from_dict(TrainConfig, merged)


def _comparable(field: str, value):
    """Local paths compare by their normal form (./a and a are the same)."""
    if field == "data_dir" and isinstance(value, str) and fileio.is_local(value):
        import os

        return os.path.normpath(value)
    return value


def _shown(value) -> str:
    if value is None:
        return "the default"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def default_run_name(config: TrainConfig) -> str:
    """The family's run name (`FamilySpec.run_name`: samplecnn-se-multi),
    stable so a rerun with --resume finds it; `-student` for a student;
    for a run on a trained model's body, `from-` and that model's name
    (`from-MTT_musicnn`, `-fine-tune` when fine-tuned; on several bodies,
    their names joined by `+`, or the name of the set they are:
    `from-musicnn-package`)."""
    pretrained = config.pretrained
    if pretrained.from_model:
        from tagger.models.saved import model_file_name
        from tagger.pretrained.registry import BODY_SETS

        bodies = (pretrained.from_model, *pretrained.also_from)
        names = [name for name, members in BODY_SETS.items() if members == bodies][:1]
        for name in () if names else bodies:
            if name.endswith(MODEL_SUFFIXES):
                name = model_file_name(name)
            names.append(re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "model")
        return f"from-{'+'.join(names)}" + ("-fine-tune" if pretrained.fine_tune else "")
    parts = [model_setup.family_spec(config.model).run_name(config.model_args)]
    if config.noisy_student.teacher or config.distillation.teachers:
        parts.append("student")
    return "-".join(parts)


def run_dir_of(config: TrainConfig) -> str:
    """The run folder: --run-name (else `default_run_name`) in --train-dir."""
    return join_path(config.train_dir, config.run_name or default_run_name(config))


def _history_csv(rows) -> str:
    return csv_text([HISTORY_FIELDS, *([row.get(k) for k in HISTORY_FIELDS] for row in rows)])

