"""train.py --from MODEL: a tagger of the records' own tags on a trained
model's body, as a run like any other (`run.Run`: run folder, stages,
checkpoints, resume, test figures at the end).

The body's embeddings of every window of the labelled splits are computed
once and stored beside the records (`pretrained_body`; by the chief of a
multi-worker run, the others reading them once stored); on several bodies
of one rate and window (`pretrained.also_from`), each body's are stored
and read side by side, by a head on each body whose scores the tagger
averages (each trained on its own loss) or by one head
(`pretrained.combine_bodies`). The head
(`tag_head`) trains on them, the body frozen: the run's staged schedule
(Adam at 1e-3 by default, `config.head_settings`), on the train and val
splits' windows for a fixed number of epochs, the last kept
(`pretrained.joins_val`), or on the train split's with early stopping on
val; each epoch one pass over the
training windows in an order fixed by the seed and the epoch, every window
labelled with its clip's tags (`window_batches`, NumPy, the same under
every backend; tf.data takes them from it, so its graph stays small); val and
test scores are the mean of the head's window scores per clip, as
tag.py scores a file, and the loss reported and monitored is the BCE of
those clip scores. With
`pretrained.fine_tune`, one more stage trains every layer (batch
normalisation kept as it is) from the head's best, Adam at
`fine_tune_lr`, on the records' audio windows, which must be at the body's
rate and window; its val and test scores come from the whole tagger over
each clip's windows at its own grid, as the embeddings were taken. The
saved tagger is the body and the head in one model (`tag_head`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tagger.config import Stage, TrainConfig, head_settings
from tagger.errors import UserError
from tagger.evaluation.metrics import binary_crossentropy
from tagger.evaluation.predict import ClipPredictions
from tagger.records.info import DatasetInfo, require_raw
from tagger.training import run as runs
from tagger.training import started_models, tag_head
from tagger.training.pretrained_body import Body, check_same_audio, joined_embeddings

PREDICT_BATCH = 1024  # embeddings scored by the head at once
SHUFFLE_WINDOWS = 10_000  # training windows shuffled together, after the clips' order


def head_config(config: TrainConfig, given=frozenset()) -> TrainConfig:
    """`config` with the head's settings (`config.head_settings`) in place of
    the fields not in `given`."""
    settings = head_settings(config.pretrained.joins_val)
    return dataclasses.replace(config, **{k: v for k, v in settings.items()
                                          if k not in given})


def train(config: TrainConfig) -> dict:
    """Trains the tagger `config.pretrained` asks for (as `run.train` trains
    any run; a finished run returns its saved metrics)."""
    if config.distillation.teachers or config.noisy_student.teacher:
        raise UserError("a tagger on a trained model's body (--from) learns the records' "
                        "labels; it takes no --teacher or --distil")
    if config.schedule != "staged":
        raise UserError(f"a tagger on a trained model's body (--from) trains with the staged "
                        f"schedule, got {config.schedule}")
    config, info, backend, precision = runs.prepare(config)
    return HeadRun(config, info, backend, precision).execute()


def fine_tune_window(body: Body, info: DatasetInfo, data_dir: str) -> int:
    """The record segments in one of the body's windows; a UserError naming
    the build flags that make records it can fine-tune on."""
    ours = body.info
    if ours.input_kind != "raw":
        raise UserError(f"--fine-tune trains {body.name} on the records' audio, but it reads "
                        f"{ours.input_kind} features, not audio; train its head alone (leave "
                        "out --fine-tune)")
    flags = [f"--{name.replace('_', '-')} {getattr(ours, name)}"
             for name in ("sample_rate", "segment_length")
             if getattr(ours, name) != getattr(info, name)]
    if flags:
        raise UserError(f"--fine-tune trains {body.name} on the records' audio at its own "
                        f"rate and window ({ours.sample_rate} Hz, {ours.window_segments} "
                        f"segment(s) of {ours.segment_length} samples), but {data_dir!r} holds "
                        f"{info.sample_rate} Hz segments of {info.segment_length} samples; "
                        f"build the records with {' '.join(flags)}")
    return ours.window_segments


def window_batches(rows, labels: np.ndarray, batch_size: int, seed: int):
    """The training batches of the head, NumPy, endless, in an order of
    `seed` alone, under every backend: each pass the clips in an order of
    `seed` (and the pass), their windows shuffled SHUFFLE_WINDOWS at a
    time, every window labelled with its clip's tags; (embeddings (batch,
    dim), tags (batch, tags)) float32, whole batches (`rows`: ClipRows)."""
    clip_of_row = rows.row_clips()
    offsets = rows.offsets
    rng = np.random.default_rng(seed)
    spare_rows = np.zeros(0, np.int64)
    while True:
        clips = rng.permutation(len(rows.clip_ids))
        lengths = rows.num_rows[clips]
        # each clip's rows in turn: a row's place in the pass, less where
        # its clip starts there, plus where its clip starts in `values`
        order = np.arange(lengths.sum(), dtype=np.int64) + np.repeat(
            offsets[clips] - (np.cumsum(lengths) - lengths), lengths)
        for start in range(0, len(order), SHUFFLE_WINDOWS):
            chunk = np.concatenate([spare_rows, rng.permutation(
                order[start:start + SHUFFLE_WINDOWS])])
            whole = len(chunk) // batch_size * batch_size
            for first in range(0, whole, batch_size):
                picked = chunk[first:first + batch_size]
                yield rows.values[picked], labels[clip_of_row[picked]]
            spare_rows = chunk[whole:]


class HeadRun(runs.Run):
    """The run of a tagger on a trained model's body (module docstring)."""

    def __init__(self, config: TrainConfig, info: DatasetInfo, backend, precision: str):
        if not info.tag_names:
            raise UserError(f"{config.data_dir!r} names no tags, so there is nothing to learn "
                            "on a trained model's body; build the records with --labels "
                            "CSV (build_folder.py)")
        require_raw(info, config.data_dir, "--from")
        super().__init__(config, info, backend, precision)
        settings = config.pretrained
        self.bodies = [Body(name, config.progress, self._log)
                       for name in (settings.from_model, *settings.also_from)]
        self.body = self.bodies[0]
        check_same_audio(self.bodies)
        averaged = settings.combine_bodies == "average"
        self.head_count = len(self.bodies) if averaged else 1  # heads side by side
        if settings.fine_tune and len(self.bodies) > 1:
            raise UserError("--fine-tune trains one body; give one --from with it, or leave "
                            "it out to train a head on several bodies' embeddings")
        self.head_stages = config.num_stages  # stage indexes below it train the head
        if settings.fine_tune:
            self.window = fine_tune_window(self.body, info, config.data_dir)
            self.stages.append(Stage(self.head_stages, "adam", settings.fine_tune_lr,
                                     settings.fine_tune_epochs, config.patience))
        from tagger.records.batches import clip_labels

        labels = np.concatenate([clip_labels(config.data_dir, split, info)[1]
                                 for split in self._training_splits()
                                 if info.splits.get(split, {}).get("clips")])
        tag_head.check_tag_counts(labels, info.tag_names, self._log)  # the head's training files
        self._splits = {}  # split -> (embeddings, clip labels)
        self._train_size = None  # (clips, windows, dim) of the training embeddings
        self._live = None

    def _open_run_dir(self):
        """A continued run must find the body it started on: the file at
        --from's path is compared by its SHA-256, which state.json keeps
        (`started_models`)."""
        super()._open_run_dir()
        self.state.base_model_sha256 = started_models.kept(
            self.state.base_model_sha256,
            [(f"--from {body.name!r}", body.fingerprint) for body in self.bodies],
            self.run_dir, started_models.trained(self.state), self._log,
            started_models.continuing_flag(self.config))

    # -- the model -------------------------------------------------------------
    def _build_model(self):
        from tagger.models.saved import load_tagger

        bodies = [(load_tagger(body.path)[0], body.info, body.embedding_layer)
                  for body in self.bodies]  # copies of their own to train
        settings = self.config.pretrained
        tagger = tag_head.attach_head(bodies, self.info.num_tags, settings.head_units,
                                      settings.combine_bodies)
        if settings.fine_tune:
            tag_head.freeze_normalisation(tagger)
        self.head = tag_head.head_of(tagger, self.body.info)  # the tagger's scores
        self.heads = tag_head.heads_of(tagger, self.body.info)  # each head's, to train
        return tagger

    def _model_info(self):
        settings = self.config.pretrained
        return tag_head.tagger_metadata(self.body, self.info, settings.head_units,
                                        settings.fine_tune, self.bodies[1:],
                                        settings.combine_bodies)

    def _fine_tunes(self, stage) -> bool:
        return stage.index >= self.head_stages

    def _trained_model(self, stage):
        return self.model if self._fine_tunes(stage) else self.heads

    # -- the data --------------------------------------------------------------
    def _embeddings(self, split: str) -> tuple:
        """(the body's embeddings of `split`, its clips' labels), read or
        computed once."""
        if split not in self._splits:
            from tagger.records.batches import clip_labels

            ids, labels = clip_labels(self.config.data_dir, split, self.info)
            rows = joined_embeddings(self.bodies, self.config.data_dir, self.info, split,
                                     clip_ids=ids, progress=self.config.progress and self.chief,
                                     log=print)  # every worker: what it computed or read
            self._splits[split] = (rows, labels)
        return self._splits[split]

    def _train_stages(self):
        test = self.config.evaluate_test and self.info.splits.get("test", {}).get("clips")

        def embed():
            for split in ("train", "val", "test") if test else ("train", "val"):
                self._embeddings(split)

        self.backend.chief_first(embed)  # the others read the chief's store
        super()._train_stages()

    def _epoch_size(self, stage=None) -> tuple:
        stage = stage or self._stage()
        fine_tunes = self._fine_tunes(stage)
        if fine_tunes:
            from tagger.records.windows import train_windows_per_pass

            windows = train_windows_per_pass(self.info, "train", self.window)
            what = f"{windows} training windows of {self.window} record segment(s)"
        else:
            _, windows, dim = self._train_split_size()
            names = " and ".join(f"{body.name}'s" for body in self.bodies)
            what = f"{windows} training windows of {names} embeddings ({dim} values)"
        full = max(1, windows // self.global_batch)
        steps = min(full, self.config.steps_per_epoch or full)
        stages = [s for s in self.stages if self._fine_tunes(s) == fine_tunes]
        epochs = sum(s.max_epochs for s in stages)
        return steps, (f"run size ({'fine-tuning every layer' if fine_tunes else 'the head'}):"
                       f" {what} per pass / batch {self.global_batch} = {steps} steps per "
                       "epoch" + (" (--steps-per-epoch)" if steps < full else "")
                       + f"; up to {stage.max_epochs} epochs per stage x {len(stages)} "
                       f"stage(s) (a stage ends after {stage.patience} epochs without "
                       f"improvement) = up to {epochs * steps} steps")

    def _training_splits(self) -> tuple:
        """The splits the head trains on: train, and val with `join_val`."""
        return ("train", "val") if self.config.pretrained.joins_val else ("train",)

    def _training_clips(self) -> tuple:
        """(embeddings, clip labels) the head trains on: the train split's,
        then with `join_val` the val split's."""
        parts = [self._embeddings(split) for split in self._training_splits()]
        if len(parts) == 1:
            return parts[0]
        from tagger.training.model_outputs import concatenate

        rows = concatenate([rows for rows, _ in parts], parts[0][0].values.shape[1])
        return rows, np.concatenate([labels for _, labels in parts])

    def _score(self, row: dict) -> float:
        """With `join_val` the val files are training files, no guide to stop
        on: each epoch scores better than the last, so the last is kept."""
        if self.config.pretrained.joins_val:
            return -float(row["epoch"])
        return super()._score(row)

    def _monitor_line(self) -> str:
        if self.config.pretrained.joins_val:
            return ("the last epoch is kept: the val files train the head, so none are "
                    "held out to choose one by (--hold-out-val keeps them out)")
        return super()._monitor_line()

    def _epoch_data(self, stage=None):
        if self._fine_tunes(stage):
            return super()._epoch_data(stage)
        seed = runs.epoch_seed(self.config.seed, self.state.epoch)
        rows, labels = self._training_clips()
        labels = np.tile(labels.astype(np.float32), (1, self.head_count))  # each head's
        batches = window_batches(rows, labels, self.global_batch, seed)
        if self.backend.name != "tensorflow":
            return batches
        import tensorflow as tf

        batch = (self.global_batch, rows.values.shape[1]), (self.global_batch, labels.shape[1])
        data = tf.data.Dataset.from_generator(lambda: batches, output_signature=tuple(
            tf.TensorSpec(shape, tf.float32) for shape in batch))
        return self.backend.distribute(data)

    def _train_split_size(self) -> tuple:
        """(clips, windows, embedding values) of the training embeddings."""
        if self._train_size is None:  # summed over the splits, not concatenated
            parts = [self._embeddings(split)[0] for split in self._training_splits()]
            self._train_size = (sum(len(rows.clip_ids) for rows in parts),
                                sum(len(rows.values) for rows in parts),
                                parts[0].values.shape[1])
        return self._train_size

    # -- the scores ------------------------------------------------------------
    def _predictions(self, split: str, max_batches: int | None = None) -> ClipPredictions:
        """Clip scores of `split`: the head's over the stored embeddings,
        or once the body is fine-tuned, the tagger's over the clips' audio."""
        if self.config.pretrained.fine_tune and self.state.stage >= self.head_stages:
            return self._audio_predictions(split)
        rows, labels = self._embeddings(split)
        scores = np.concatenate(
            [np.asarray(self.head(rows.values[i:i + PREDICT_BATCH], training=False))
             for i in range(0, len(rows.values), PREDICT_BATCH)]
            or [np.zeros((0, self.info.num_tags), np.float32)])
        return ClipPredictions(
            rows.clip_ids, labels, rows.clip_means(scores),
            binary_crossentropy(labels[rows.row_clips()], scores), len(scores))

    def _loss(self, predictions) -> float:
        """The BCE of the clip scores against the clips' tags: what tag.py
        reports of a file, and a steadier guide for early stopping on a val
        split of a few files than the windows' BCE (which grows as the head
        grows sure of windows that sound like another tag's, while the
        clips' ranking still improves; docs/own_tags.md)."""
        return binary_crossentropy(predictions.labels, predictions.scores)

    def _audio_predictions(self, split: str) -> ClipPredictions:
        """The tagger over every window of each clip of `split`, as the
        embeddings were taken (`clip_batches.outputs_of_clips`)."""
        from tagger.training.model_outputs import records_predictions

        if self._live is None:
            from tagger.inference.engine.registry import make_predictor

            self._live = make_predictor("keras", self.model, self._model_info())
        return records_predictions(self._live, self.config.data_dir, split, self.info)
