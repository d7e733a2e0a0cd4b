"""A training run: stages, validation, checkpoints, resume, final model and test metrics.

Run folder `<train_dir>/<run_name>/`:
  config.json          the TrainConfig
  state.json           where training stands; the commit point of every epoch
  history.csv          one row per epoch
  checkpoints/         epoch-NNNNN (model + optimizer) and best-NNNNN (model)
  logs/                TensorBoard scalars
  model.keras, model.hdf5, metrics.json   written when training ends

Each epoch writes a new checkpoint and then rewrites state.json atomically;
older checkpoints are deleted only after that, so a run killed at any
moment (SIGKILL included) resumes with `resume=True` from its last epoch,
same stage, learning rate and optimizer state.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import time

import keras
import tensorflow as tf

from tagger import fileio
from tagger.config import TrainConfig, from_dict, join_path, to_dict
from tagger.errors import UserError
from tagger.evaluation.metrics import tag_metrics
from tagger.evaluation.predict import ClipPredictor
from tagger.models.saved import save_tagger
from tagger.records.info import load_info
from tagger.records.reader import train_windows_per_pass
from tagger.training import model_setup, semi_supervised, strategy as strategies
from tagger.training.schedule import make_optimizer, schedule_for
from tagger.training.trainer import distributed_train_data, make_train_function

HISTORY_FIELDS = ("epoch", "stage", "stage_epoch", "optimizer", "lr", "train_loss",
                  "val_loss", "val_roc_auc", "val_pr_auc", "seconds")


@dataclasses.dataclass
class RunState:
    """Everything needed to continue a run; saved as state.json."""

    stage: int = 0  # index into the schedule's stages
    stage_epoch: int = 0  # epochs finished in this stage
    epoch: int = 0  # epochs finished in total
    wait: int = 0  # epochs without improvement in this stage
    best_score: float = math.inf  # the monitored value, lower is better
    best_epoch: int = 0
    best_checkpoint: str | None = None
    last_checkpoint: str | None = None
    stage_started: bool = False  # the stage's optimizer exists in last_checkpoint
    history: list = dataclasses.field(default_factory=list)
    stages: list = dataclasses.field(default_factory=list)  # per-stage summaries
    done: bool = False


def train(config: TrainConfig) -> dict:
    """Trains as `config` says; returns the run's final metrics dict.

    With `resume`, the run folder's saved config is used (only the strategy,
    TPU and progress settings come from `config`), so a resumed run cannot
    silently change model or schedule.
    """
    config = _resumed_config(config)
    info = load_info(config.data_dir)
    for split, role in (("train", "training"), ("val", "validation (early stopping and "
                                               "the best checkpoint)")):
        if info["splits"][split]["clips"] == 0:
            raise UserError(f"the {split} split of {config.data_dir!r} holds no clips; "
                            f"{role} needs some: build a larger dataset or other split")
    strategy = strategies.make_strategy(config.strategy, config.tpu)
    precision = config.mixed_precision
    if precision == "off" and strategies.is_tpu(strategy):
        precision = "bfloat16"
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise UserError(f"--batch-size {config.batch_size} is not divisible by the "
                        f"{replicas} replicas of the {type(strategy).__name__}; use a "
                        f"multiple of {replicas}")
    run = Run(config, info, strategy, precision)
    run.noisy_student = semi_supervised.setup(config, info, strategy, run.window)
    return run.execute()


class Run:
    """The state machine of one training run (see the module docstring)."""

    def __init__(self, config: TrainConfig, info: dict, strategy, precision: str):
        self.config = config
        self.info = info
        self.strategy = strategy
        self.precision = precision
        self.chief = strategies.is_chief(strategy)
        self.run_dir = join_path(config.train_dir, config.run_name or default_run_name(config))
        self.window = model_setup.window_segments(config, info)
        try:
            self.stages = schedule_for(config)
        except ValueError as error:
            raise UserError(str(error)) from None
        self.state = RunState()
        self.global_batch = config.batch_size
        self.noisy_student = None  # a semi_supervised.NoisyStudent, or None

    # -- set-up -------------------------------------------------------------
    def execute(self) -> dict:
        self._open_run_dir()
        keras.utils.set_random_seed(self.config.seed)
        keras.mixed_precision.set_global_policy(
            {"off": "float32", "float16": "mixed_float16",
             "bfloat16": "mixed_bfloat16"}[self.precision])
        try:
            with self.strategy.scope():
                self.model = model_setup.build(self.config, self.info, self.window)
            self._write_config()
            self.predictor = ClipPredictor(self.model, self.strategy, self.config.jit_compile)
            if self.config.resume and self.state.last_checkpoint and not self.state.done:
                self._log(f"resuming {self.run_dir} after epoch {self.state.epoch}")
            self._summary_writer = (tf.summary.create_file_writer(
                join_path(self.run_dir, "logs")) if self.chief else None)
            self._train_stages()
            return self._finish()
        finally:
            keras.mixed_precision.set_global_policy("float32")

    def _open_run_dir(self):
        state_path = join_path(self.run_dir, "state.json")
        exists = fileio.exists(state_path)
        if exists and not (self.config.resume or self.config.initial_stage > 0):
            raise UserError(f"run folder {self.run_dir!r} already holds a run; pass "
                            "--resume to continue it or --run-name for a new one")
        if exists:
            saved = json.loads(fileio.read_text(state_path))
            self.state = RunState(**saved)
            if self.config.initial_stage > 0 and not self.config.resume:
                # A fresh start of a later stage from the best model so far.
                old = self.state
                self.state = RunState(best_checkpoint=old.best_checkpoint,
                                      best_score=old.best_score, best_epoch=old.best_epoch,
                                      history=old.history, stages=old.stages,
                                      epoch=len(old.history))
        if self.chief:
            fileio.makedirs(join_path(self.run_dir, "checkpoints"))

    def _write_config(self):
        """Records the run's config; a continued run first proves that its
        checkpoint fits the model, so a refused one leaves the folder as it was."""
        saved = self.state.last_checkpoint or self.state.best_checkpoint
        if saved:
            self._restore(saved)
        if self.chief:
            fileio.write_atomic(join_path(self.run_dir, "config.json"),
                                json.dumps(to_dict(self.config), indent=2, sort_keys=True))

    # -- training -----------------------------------------------------------
    def _stage(self):
        return self.stages[self.state.stage]

    def _train_stages(self):
        steps = self._steps_per_epoch()
        if self.noisy_student:
            iterator = self.noisy_student.iterators()
        else:
            iterator = iter(distributed_train_data(
                self.strategy, self.config.data_dir, self.info, self.global_batch,
                self.window, self.config.shuffle_segments, self.config.seed,
                self.config.num_read_threads))
        while self.state.stage < len(self.stages) and not self.state.done:
            stage = self._stage()
            with self.strategy.scope():
                optimizer = make_optimizer(stage, self.config.momentum, self.precision)
                optimizer.build(self.model.trainable_variables)
            if self.state.stage_started:
                self._restore(self.state.last_checkpoint, optimizer)
            elif self.state.best_checkpoint:
                self._restore(self.state.best_checkpoint)
            self._log(f"stage {stage.index}: {stage.optimizer} lr={stage.learning_rate:g}"
                      f" (up to {stage.max_epochs} epochs"
                      + (f", patience {stage.patience})" if stage.patience is not None
                         else ")"))
            if self.noisy_student:
                train_fn = self.noisy_student.train_function(self.model, optimizer,
                                                             stage.index)
            else:
                train_fn = make_train_function(
                    self.model, optimizer, self.strategy, self.global_batch,
                    self.config.jit_compile,
                    semi_supervised.augmentation(self.config, self.info, stage.index))
            while not self._stage_over(stage):
                row = self._train_epoch(train_fn, iterator, steps, stage)
                self._end_epoch(row, optimizer)
            self._end_stage(stage)

    def _stage_over(self, stage) -> bool:
        if self.state.stage_epoch >= stage.max_epochs:
            return True
        return stage.patience is not None and self.state.wait >= stage.patience \
            and self.state.stage_epoch > 0

    def _steps_per_epoch(self) -> int:
        windows = train_windows_per_pass(self.info, "train", self.window)
        labelled = self.global_batch // 2 if self.noisy_student else self.global_batch
        steps = max(1, windows // labelled)
        if self.config.steps_per_epoch:
            steps = min(steps, self.config.steps_per_epoch)
        return steps

    def _train_epoch(self, train_fn, iterator, steps, stage) -> dict:
        start = time.time()
        chunk = self.config.steps_per_execution
        total, done = 0.0, 0
        from tqdm import tqdm
        with tqdm(total=steps, desc=f"epoch {self.state.epoch + 1}", unit="step",
                  disable=not (self.config.progress and self.chief), leave=False) as bar:
            while done < steps:
                n = min(chunk, steps - done)
                total += float(train_fn(iterator, n))
                done += n
                bar.update(n)
        val = self._validate()
        return {"epoch": self.state.epoch + 1, "stage": stage.index,
                "stage_epoch": self.state.stage_epoch + 1, "optimizer": stage.optimizer,
                "lr": stage.learning_rate, "train_loss": total / steps,
                "val_loss": val["loss"], "val_roc_auc": val["roc_auc"],
                "val_pr_auc": val["pr_auc"], "seconds": round(time.time() - start, 2)}

    def _validate(self) -> dict:
        predictions = self.predictor(
            self.config.data_dir, "val", self.window, batch_size=self.global_batch,
            info=self.info, max_batches=self.config.validation_steps)
        metrics = tag_metrics(predictions.labels, predictions.scores, self.info["tag_names"])
        return {"loss": predictions.window_loss, "roc_auc": metrics.roc_auc,
                "pr_auc": metrics.pr_auc}

    def _end_epoch(self, row: dict, optimizer):
        state = self.state
        state.epoch += 1
        state.stage_epoch += 1
        state.stage_started = True
        score = monitored_score(row, self.config.monitor)
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
        if self._summary_writer is not None:
            with self._summary_writer.as_default(step=state.epoch):
                for key in ("train_loss", "val_loss", "val_roc_auc", "val_pr_auc", "lr"):
                    tf.summary.scalar(key, row[key])
            self._summary_writer.flush()

    def _end_stage(self, stage):
        rows = [r for r in self.state.history if r["stage"] == stage.index]
        best = min(rows, key=lambda r: monitored_score(r, self.config.monitor)) \
            if rows else None
        summary = {"stage": stage.index, "optimizer": stage.optimizer,
                   "lr": stage.learning_rate, "epochs": len(rows),
                   "best_val_loss": best["val_loss"] if best else None,
                   "best_val_roc_auc": best["val_roc_auc"] if best else None}
        self.state.stages = [s for s in self.state.stages if s["stage"] != stage.index]
        self.state.stages.append(summary)
        self.state.stage += 1
        self.state.stage_epoch = 0
        self.state.wait = 0
        self.state.stage_started = False
        self._commit()
        if best:
            self._log(f"stage {stage.index} done: lr={stage.learning_rate:g}, "
                      f"{len(rows)} epochs, best val loss {best['val_loss']:.4f}, "
                      f"val ROC-AUC {best['val_roc_auc']:.4f}")

    # -- checkpoints --------------------------------------------------------
    def _checkpoint_dir(self) -> str:
        if self.chief:
            return join_path(self.run_dir, "checkpoints")
        task = self.strategy.cluster_resolver.task_id
        return join_path(self.run_dir, f".worker-{task}")

    def _save(self, name: str, optimizer=None) -> str:
        objects = {"model": self.model}
        if optimizer is not None:
            objects["optimizer"] = optimizer
        path = join_path(self._checkpoint_dir(), name)
        tf.train.Checkpoint(**objects).write(path)
        return name

    def _restore(self, name: str, optimizer=None):
        objects = {"model": self.model}
        if optimizer is not None:
            objects["optimizer"] = optimizer
        path = join_path(self.run_dir, "checkpoints", name)
        strategies.barrier(self.strategy)  # the chief has finished writing it
        try:
            status = tf.train.Checkpoint(**objects).read(path)
            status.assert_existing_objects_matched()
        except (AssertionError, ValueError, tf.errors.OpError) as error:
            raise UserError(
                f"checkpoint {path!r} does not fit the model built for this dataset "
                f"({str(error).splitlines()[0][:200]}); the run was trained with other "
                "data or model settings: use a new --run-name") from None

    def _delete_checkpoints(self, names):
        directory = self._checkpoint_dir()
        for name in names:
            for file in fileio.listdir(directory):
                if file.startswith(name + "."):
                    fileio.remove(join_path(directory, file))

    def _commit(self):
        if not self.chief:
            return
        fileio.write_atomic(join_path(self.run_dir, "history.csv"), _history_csv(
            self.state.history))
        fileio.write_atomic(join_path(self.run_dir, "state.json"),
                            json.dumps(dataclasses.asdict(self.state), indent=1))

    # -- the end ------------------------------------------------------------
    def _finish(self) -> dict:
        if self.state.best_checkpoint:
            self._restore(self.state.best_checkpoint)
        model_info = model_setup.model_info(self.config, self.info, self.window)
        best_row = next((r for r in self.state.history
                         if r["epoch"] == self.state.best_epoch), None)
        metrics = {"run_dir": self.run_dir, "monitor": self.config.monitor,
                   "best_epoch": self.state.best_epoch, "best": best_row,
                   "epochs": self.state.epoch, "stages": self.state.stages}
        if self.config.evaluate_test and self.info["splits"]["test"]["clips"]:
            test = self.predictor(self.config.data_dir, "test", self.window,
                                  batch_size=self.global_batch, info=self.info)
            result = tag_metrics(test.labels, test.scores, self.info["tag_names"])
            metrics["test"] = {"loss": test.window_loss, **result.as_dict()}
            self._log(f"test ROC-AUC {result.roc_auc:.4f}  PR-AUC {result.pr_auc:.4f}")
        if self.chief:
            for name in ("model.keras", "model.hdf5"):
                save_tagger(self.model, model_info, join_path(self.run_dir, name))
            fileio.write_atomic(join_path(self.run_dir, "metrics.json"),
                                json.dumps(metrics, indent=2, default=float))
        self.state.done = True
        self._commit()
        if not self.chief:  # scratch checkpoints of the other workers
            scratch = self._checkpoint_dir()
            self._delete_checkpoints({f.split(".")[0] for f in fileio.listdir(scratch)})
            fileio.rmdir(scratch)
        return metrics

    def _log(self, message: str):
        if self.chief:
            print(message, flush=True)


def monitored_score(row: dict, monitor: str) -> float:
    """The epoch's value of `monitor`, as a score where lower is better
    (NaN, e.g. an undefined ROC-AUC, never counts as an improvement)."""
    value = row["val_loss"] if monitor == "val_loss" else -row["val_roc_auc"]
    return math.inf if math.isnan(value) else value


def _resumed_config(config: TrainConfig) -> TrainConfig:
    if not config.resume:
        return config
    path = join_path(config.train_dir, config.run_name or default_run_name(config),
                     "config.json")
    if not fileio.exists(path):
        return config
    saved = from_dict(TrainConfig, json.loads(fileio.read_text(path)))
    return dataclasses.replace(saved, resume=True, strategy=config.strategy,
                               tpu=config.tpu, progress=config.progress,
                               train_dir=config.train_dir, run_name=config.run_name
                               or saved.run_name)


def default_run_name(config: TrainConfig) -> str:
    """`<model>[-<block>][-multi]`, stable so a rerun with --resume finds it."""
    parts = [config.model]
    if config.model == "samplecnn":
        parts.append(config.model_args.get("block", "se"))
        if config.model_args.get("multi", True):
            parts.append("multi")
    if config.noisy_student.teacher:
        parts.append("student")
    return "-".join(parts)


def _history_csv(rows) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k) for k in HISTORY_FIELDS})
    return out.getvalue()

