"""Frozen configuration dataclasses shared by the CLIs and the library.

CLIs translate their flags into these objects and hand them to one library
call; every run saves its configuration beside its outputs as JSON.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any

FEATURE_KINDS = ("raw", "logmel")
COMPRESSIONS = ("db", "logc")  # LogMel: db_multiplier * log10(max(x, amin)); log10(1 + log_c x)
RAW_DTYPES = ("int16", "float32")
INT16_SCALE = 32767.0  # an int16 sample is a float sample in [-1, 1] times this


def _flag(name: str) -> str:
    return f"{name} (--{name.replace('_', '-')})"


def _check_int(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{_flag(name)} must be an integer >= {low}, got {value!r}")


def _check_number(name: str, value, low: float, low_open: bool = False) -> None:
    ok = (isinstance(value, numbers.Real) and not isinstance(value, bool)
          and math.isfinite(value) and (value > low if low_open else value >= low))
    if not ok:
        raise ValueError(f"{_flag(name)} must be a finite number {'>' if low_open else '>='} "
                         f"{low:g}, got {value!r}")


def _check_model(name: str, flag: str, value) -> None:
    """`value` names a model (a pretrained name or a path): not an empty
    text, which a check for truth reads as none and a check against None
    as one."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} ({flag}) must name a model (a pretrained name or a model "
                         f"file), got {value!r}")


def _check_fraction(name: str, value, interval: str, low_open: bool = False,
                    high_open: bool = False) -> None:
    """`value` must be a finite number in `interval`, which is [0, 1] with
    the ends that `low_open`/`high_open` exclude."""
    ok = (isinstance(value, numbers.Real) and not isinstance(value, bool)
          and math.isfinite(value) and (value > 0 if low_open else value >= 0)
          and (value < 1 if high_open else value <= 1))
    if not ok:
        raise ValueError(f"{_flag(name)} must be a number in {interval}, got {value!r}")


SEGMENT_LENGTH = 59049  # 3^10 samples, about 2.68 s at 22050 Hz: the records' unit


@dataclasses.dataclass(frozen=True)
class AudioConfig:
    """How audio is decoded and cut: mono, `sample_rate` Hz, segments of
    `segment_length` samples (`SEGMENT_LENGTH`, about 2.68 s at 22050 Hz)."""

    sample_rate: int = 22050
    segment_length: int = SEGMENT_LENGTH

    def __post_init__(self):
        _check_int("sample_rate", self.sample_rate, 1)
        _check_int("segment_length", self.segment_length, 1)


@dataclasses.dataclass(frozen=True)
class LogMelConfig:
    """Log-mel front end parameters (see `tagger.layers.LogMel`).

    `top_db` is a per-example clamp below the example's maximum; None keeps
    the full dynamic range. `mel_scale`, `mel_norm`, `power`,
    `db_multiplier`, `amin`, `compression`, `log_c`, `mel_float16` and
    `center` reproduce other toolkits' features (see `LogMel`); the
    defaults are Keras's filter bank, 10*log10(power) and a centred STFT.
    """

    n_mels: int = 128
    n_fft: int = 1024
    hop_length: int = 512
    f_min: float = 0.0
    f_max: float | None = None
    top_db: float | None = None
    mel_scale: str = "keras"
    mel_norm: str | None = None
    power: float = 2.0
    db_multiplier: float = 10.0
    amin: float = 1e-10
    compression: str = "db"
    log_c: float = 10000.0
    mel_float16: bool = False
    center: bool = True

    def __post_init__(self):
        for name in ("n_mels", "n_fft", "hop_length"):
            _check_int(name, getattr(self, name), 1)
        if self.compression not in COMPRESSIONS:
            raise ValueError(f"compression must be one of {', '.join(COMPRESSIONS)}, got "
                             f"{self.compression!r}")
        _check_number("log_c", self.log_c, 0.0, low_open=True)
        for name in ("mel_float16", "center"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        _check_number("f_min", self.f_min, 0.0)
        if self.f_max is not None:
            _check_number("f_max", self.f_max, 0.0, low_open=True)
            if self.f_max <= self.f_min:
                raise ValueError(f"f_max (--f-max) must be above f_min ({self.f_min} Hz), "
                                 f"got {self.f_max}")
        if self.top_db is not None:
            _check_number("top_db", self.top_db, 0.0, low_open=True)

    def frames(self, num_samples: int) -> int:
        """Frames produced for `num_samples` samples: `1 + samples // hop`
        centred, `1 + (samples - n_fft) // hop` not (0 below one FFT)."""
        return stft_frames(num_samples, self.n_fft, self.hop_length, self.center)


def stft_frames(num_samples: int, n_fft: int, hop_length: int, center: bool = True) -> int:
    """Frames of an STFT over `num_samples` samples: centred (padded by
    n_fft // 2 on each side) `1 + samples // hop`, else `1 + (samples -
    n_fft) // hop`, none when the samples do not fill one FFT."""
    if center:
        return 1 + num_samples // hop_length
    return 0 if num_samples < n_fft else 1 + (num_samples - n_fft) // hop_length


@dataclasses.dataclass(frozen=True)
class FeatureConfig:
    """What a record's segments hold.

    kind "raw": PCM waveforms stored as `dtype` (int16 or float32).
    kind "logmel": float32 log-mel frames, `(frames, n_mels)` per segment,
    computed by the same `LogMel` layer the models use.
    """

    kind: str = "raw"
    dtype: str = "int16"
    logmel: LogMelConfig = LogMelConfig()

    def __post_init__(self):
        if self.kind not in FEATURE_KINDS:
            raise ValueError(
                f"feature kind must be one of {FEATURE_KINDS}, got {self.kind!r}")
        if self.dtype not in RAW_DTYPES:
            raise ValueError(
                f"raw dtype must be one of {RAW_DTYPES}, got {self.dtype!r}")


@dataclasses.dataclass(frozen=True)
class BuildConfig:
    """How any dataset source's records are written (build_mtt.py,
    build_msd.py): where, which audio and features, shards, workers, limits.
    What a source reads and how it splits lives in its own settings
    (tagger.datasets.source)."""

    data_dir: str = "dataset"
    out_dir: str | None = None  # default: <data_dir>/tfrecord
    audio: AudioConfig = AudioConfig()
    features: FeatureConfig = FeatureConfig()
    clips_per_shard: int = 100
    workers: int = 1
    overwrite: bool = False
    progress: bool = True
    max_file_mb: float = 64.0  # larger audio files are skipped with a reason
    max_seconds: float = 60.0  # longer clips are cut here (and listed as cut)
    verify: bool = False  # a rerun reads every byte of the shards it keeps

    def __post_init__(self):
        for name in ("clips_per_shard", "workers"):
            _check_int(name, getattr(self, name), 1)
        _check_number("max_file_mb", self.max_file_mb, 0.0, low_open=True)
        rate, length = self.audio.sample_rate, self.audio.segment_length
        one_segment = length / rate
        _check_number("max_seconds", self.max_seconds, one_segment)
        if self.features.kind == "logmel":
            mel, nyquist = self.features.logmel, rate / 2
            if mel.f_max is not None and mel.f_max > nyquist:
                raise ValueError(f"f_max (--f-max) must be at most the Nyquist frequency "
                                 f"{nyquist:g} Hz (sample rate {rate} / 2), got {mel.f_max:g}")
            if mel.f_min >= nyquist:
                raise ValueError(f"f_min (--f-min) must be below the Nyquist frequency "
                                 f"{nyquist:g} Hz, got {mel.f_min:g}")
            if mel.n_fft > length:
                raise ValueError(f"n_fft (--n-fft) must be at most the segment length "
                                 f"{length}, got {mel.n_fft}")
            if mel.hop_length > length:
                raise ValueError(f"hop_length (--hop-length) must be at most the segment "
                                 f"length {length}, got {mel.hop_length}")

    @property
    def max_bytes(self) -> int:
        return int(self.max_file_mb * 2**20)

    @property
    def output_dir(self) -> str:
        return self.out_dir or join_path(self.data_dir, "tfrecord")


def join_path(base: str, *parts: str) -> str:
    """Joins path parts with '/' so that gs:// and ram:// paths stay valid."""
    path = base.rstrip("/")
    for part in parts:
        path = f"{path}/{part.strip('/')}"
    return path


def to_dict(config: Any) -> dict:
    """A JSON-ready dict of a (nested) config dataclass."""
    return dataclasses.asdict(config)


def from_dict(cls, data: dict):
    """Rebuilds a (nested) config dataclass from `to_dict` output."""
    kwargs = {}
    for field in dataclasses.fields(cls):
        if field.name in data:
            value = data[field.name]
            if dataclasses.is_dataclass(field.default) and isinstance(value, dict):
                value = from_dict(type(field.default), value)  # a nested config
            kwargs[field.name] = value
    return cls(**kwargs)


SCHEDULES = ("staged", "adam_then_sgd")
OPTIMIZERS = ("sgd", "adam")
MIXED_PRECISION = ("off", "float16", "bfloat16")
MONITORS = ("val_loss", "val_roc_auc")


@dataclasses.dataclass(frozen=True)
class Stage:
    """One stage of training with a fresh optimizer.

    The stage ends after `max_epochs` epochs, or earlier when `patience` is
    set and validation loss has not improved for that many epochs.
    """

    index: int
    optimizer: str  # "sgd" | "adam"
    learning_rate: float
    max_epochs: int
    patience: int | None = None
    weight_decay: float = 0.0  # the optimizer's decoupled weight decay


@dataclasses.dataclass(frozen=True)
class NoisyStudentConfig:
    """Noisy-student training (Won, Choi, Serra 2021); off while `teacher` is None."""

    teacher: str | None = None  # a model saved by train.py (.keras or .hdf5)
    unlabelled_split: str = "student"  # a split marked unlabelled in dataset_info.json
    unlabelled_data_dir: str | None = None  # None: the labelled data_dir
    pseudo_label_weight: float = 1.0  # w in BCE(labelled) + w * BCE(student, teacher)

    def __post_init__(self):
        if self.teacher is not None:
            _check_model("teacher", "--teacher", self.teacher)
        if not (self.pseudo_label_weight >= 0 and math.isfinite(self.pseudo_label_weight)):
            raise ValueError(f"pseudo_label_weight must be a finite number >= 0, got "
                             f"{self.pseudo_label_weight}")


@dataclasses.dataclass(frozen=True)
class DistillationConfig:
    """Distillation from trained taggers on records without labels
    (tagger.training.distillation); off while `teachers` is empty."""

    teachers: tuple = ()  # registry names or saved models; several: their shared tags, averaged
    temperature: float = 1.0  # T in T^2 * BCE(sigmoid(z_teacher / T), sigmoid(z_student / T))

    def __post_init__(self):
        object.__setattr__(self, "teachers", tuple(self.teachers))  # a list, as JSON gives it
        for teacher in self.teachers:
            _check_model("teachers", "--distil", teacher)
        _check_number("temperature", self.temperature, 0.0, low_open=True)


COMBINE_BODIES = ("average", "join")  # how a tagger on several bodies scores


@dataclasses.dataclass(frozen=True)
class PretrainedConfig:
    """A tagger of the records' tags on a trained model's body
    (tagger.training.head_run, train.py --from); off while `from_model` is
    None. The head (a hidden layer of `head_units`, or linear for 0) trains
    on the body's stored embeddings with the run's staged schedule (on
    those of `from_model` and of each of `also_from` side by side, bodies
    of one rate and window: with `combine_bodies` "average" a head per body,
    their scores averaged, with "join" one head on their embeddings joined);
    with `fine_tune`, every layer then trains on
    the records' audio, at Adam `fine_tune_lr` for up to `fine_tune_epochs`
    epochs. With `join_val` the val files train the head too, for the staged
    schedule's fixed epochs, the last kept (no early stopping: a few val
    files are too few to stop on); else they are held out to stop on."""

    from_model: str | None = None  # a pretrained name or a saved tagger
    also_from: tuple = ()  # more bodies of from_model's rate and window (--from again)
    combine_bodies: str = "average"  # on several bodies: "average" (a head each) or "join"
    join_val: bool = True  # train.py --hold-out-val: False; fine-tuning holds them out
    head_units: int = 256
    fine_tune: bool = False
    fine_tune_lr: float = 1e-5
    fine_tune_epochs: int = 10

    @property
    def joins_val(self) -> bool:
        """Whether the head trains on the val files too (never when fine-tuned:
        its stage stops on them)."""
        return self.join_val and not self.fine_tune

    def __post_init__(self):
        object.__setattr__(self, "also_from", tuple(self.also_from))  # a list, as JSON gives it
        if self.from_model is not None:
            _check_model("from_model", "--from", self.from_model)
        for name in self.also_from:
            _check_model("also_from", "--from", name)
        if self.also_from and self.from_model is None:
            raise ValueError("also_from (--from given again) needs from_model, the first body")
        if self.combine_bodies not in COMBINE_BODIES:
            raise ValueError(f"combine_bodies (--combine-bodies) must be one of "
                             f"{', '.join(COMBINE_BODIES)}, got {self.combine_bodies!r}")
        _check_int("head_units", self.head_units, 0)
        _check_int("fine_tune_epochs", self.fine_tune_epochs, 1)
        _check_number("fine_tune_lr", self.fine_tune_lr, 0.0, low_open=True)


# The staged schedule's settings of a head on a body (`PretrainedConfig`)
# where train.py's flags leave them: Adam, one stage, a wider batch, and 20
# epochs on the train and val files (docs/own_tags.md, "Choosing the head");
# with the val files held out (`HELD_OUT_VAL_SETTINGS`), up to 100 epochs and
# patience for a small val split's noisy figures.
HEAD_SETTINGS = {"optimizer": "adam", "lr": 1e-3, "batch_size": 64, "num_stages": 1,
                 "patience": 10, "max_epochs_per_stage": 20}
HELD_OUT_VAL_SETTINGS = {"max_epochs_per_stage": 100}


def head_settings(join_val: bool = True) -> dict:
    """HEAD_SETTINGS, with HELD_OUT_VAL_SETTINGS over them unless `join_val`."""
    return {**HEAD_SETTINGS, **({} if join_val else HELD_OUT_VAL_SETTINGS)}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything `train.py` needs; saved as config.json in the run folder."""

    data_dir: str = "dataset/tfrecord"
    train_dir: str = "log"
    run_name: str | None = None
    model: str = "samplecnn"
    model_args: dict = dataclasses.field(default_factory=dict)
    window_segments: int | None = None  # None: the model family's default
    batch_size: int = 23
    schedule: str = "staged"
    optimizer: str = "sgd"
    momentum: float = 0.9
    lr: float = 0.01
    lr_decay: float = 0.2
    num_stages: int = 5
    initial_stage: int = 0
    patience: int = 2
    # what early stopping and the best checkpoint follow; None: the run's own
    # (training/monitor.py: val_roc_auc for a distillation, else val_loss)
    monitor: str | None = None
    max_epochs_per_stage: int = 100
    switch_epochs: tuple = (80, 100, 120)  # adam_then_sgd: Adam -> SGD 1e-3 -> 1e-4 -> 1e-5
    total_epochs: int = 200  # adam_then_sgd
    steps_per_epoch: int | None = None
    validation_steps: int | None = None
    shuffle_segments: int = 2000
    num_read_threads: int = 8  # shards read in parallel; part of the input order
    strategy: str = "auto"
    tpu: str | None = None
    mixed_precision: str = "off"
    jit_compile: bool | str = "auto"  # XLA: True, False, or "auto" (training.xla_choice)
    steps_per_execution: int = 1
    resume: bool = False
    # a continued run's damaged checkpoints dropped (training.damaged_checkpoints)
    drop_damaged_checkpoints: bool = False
    seed: int = 0
    evaluate_test: bool = True
    progress: bool = True
    augment: bool = False  # the in-graph augmentation chain on the training windows
    noisy_student: NoisyStudentConfig = NoisyStudentConfig()
    distillation: DistillationConfig = DistillationConfig()
    pretrained: PretrainedConfig = PretrainedConfig()

    def __post_init__(self):
        for name, value, valid in (("schedule", self.schedule, SCHEDULES),
                                   ("optimizer", self.optimizer, OPTIMIZERS),
                                   ("mixed_precision", self.mixed_precision,
                                    MIXED_PRECISION)):
            if value not in valid:
                raise ValueError(f"{name} must be one of {', '.join(valid)}, got {value!r}")
        if self.monitor is not None and self.monitor not in MONITORS:
            raise ValueError(f"monitor must be one of {', '.join(MONITORS)}, or None (the "
                             f"run's own), got {self.monitor!r}")
        if self.jit_compile is not True and self.jit_compile is not False \
                and self.jit_compile != "auto":
            raise ValueError(f"jit_compile must be True, False or 'auto', got "
                             f"{self.jit_compile!r}")
        for name in ("batch_size", "num_stages", "max_epochs_per_stage",
                     "total_epochs", "steps_per_execution", "shuffle_segments"):
            _check_int(name, getattr(self, name), 1)
        for name in ("window_segments", "steps_per_epoch", "validation_steps",
                     "num_read_threads"):
            if getattr(self, name) is not None:
                _check_int(name, getattr(self, name), 1)
        for name in ("patience", "initial_stage", "seed"):
            _check_int(name, getattr(self, name), 0)
        _check_number("lr", self.lr, 0.0, low_open=True)
        _check_fraction("lr_decay", self.lr_decay, "(0, 1]", low_open=True)
        _check_fraction("momentum", self.momentum, "[0, 1)", high_open=True)


# TrainConfig fields and values by the names an earlier version saved them under
_FORMER_FIELDS = {"num_lr_decays": "num_stages"}
_FORMER_SCHEDULES = {"won": "adam_then_sgd"}


def saved_train_config(saved: dict) -> TrainConfig:
    """The TrainConfig of a run's config.json (`to_dict` output), also of one
    an earlier version wrote: `num_lr_decays` is `num_stages`, the schedule
    `won` is adam_then_sgd, a head on a body without `join_val` held the
    val files out, one on several bodies without `combine_bodies` read
    their embeddings joined."""
    if isinstance(saved, dict):
        saved = {_FORMER_FIELDS.get(name, name): value for name, value in saved.items()}
        if saved.get("schedule") in _FORMER_SCHEDULES:
            saved["schedule"] = _FORMER_SCHEDULES[saved["schedule"]]
        pretrained = saved.get("pretrained")
        if isinstance(pretrained, dict):
            saved["pretrained"] = {"join_val": False, "combine_bodies": "join", **pretrained}
    return from_dict(TrainConfig, saved)
