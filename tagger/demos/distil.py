"""The distillation demo (demo.py --distil): a trained tagger teaches the
paper-size ReSE+multi sample-level CNN (Kim et al. 2018) on real recordings
that carry no labels, and the student is measured on tracks it never saw.

music (Debian's game soundtracks, `soundtracks.py`, or a folder of the
user's) -> records (the folder source: 22050 Hz raw segments, split by
file) -> the teacher's targets and the student trained on them
(`training.distillation`) -> the student against its teacher on the test
split (eval.py --against) -> the speed of both, Keras and int8, tagging the
test split's files as tag.py does.

Each step writes into `work_dir` and is skipped on a rerun when its output
was made with the settings asked for (`pipeline`'s stamps); the builder,
the teacher's targets and the trainer resume their own partial work.
"""

from __future__ import annotations

import dataclasses
import time

from tagger import fileio
from tagger.config import join_path

STUDENT_ARGS = {"block": "rese", "multi": True, "alpha": 16}
CLIPS_PER_SHARD = 10  # small shards: finer resuming, and more tracks read in parallel
VALIDATION_BATCHES = 30  # per epoch: the val split's first 690 segments, to the clip's end
SPEED_FILES = 5  # held-out tracks timed (each tagged whole, once an engine)
# Student and teacher alike: tflite-int8 keeps a log-mel front end float32
# (tflite-dynamic quantises it too, which changes many of MTT_musicnn's top-5
# tags: docs/performance.md, "int8 for log-mel taggers").
SPEED_ENGINES = (("keras", "keras"), ("int8", "tflite-int8"))


@dataclasses.dataclass(frozen=True)
class DistilDemoConfig:
    work_dir: str = "demo_output/distil"
    music: str | None = None  # a folder of audio; None: Debian's game soundtracks
    teacher: str = "MTT_musicnn"
    width: float = 1.0  # the student's; 1.0: the paper's
    epochs: int = 6
    steps_per_epoch: int = 150
    batch_size: int = 23
    lr: float = 1e-3
    test_fraction: float = 0.2
    val_fraction: float = 0.1
    workers: int = 1
    seed: int = 0
    progress: bool = True


def run_distil_demo(config: DistilDemoConfig):
    """Runs every step; yields report lines as it goes."""
    from tagger.training.teacher_targets import Teacher

    start = time.time()
    teacher = Teacher(config.teacher, config.progress, flag="--teacher")  # a bad name stops here
    yield f"teacher: {config.teacher}, {len(teacher.tag_names)} tags"
    music = yield from music_step(config)
    records = join_path(config.work_dir, "records")
    yield from build_step(config, music, records)
    metrics = yield from train_step(config, records, music)
    student = join_path(metrics["run_dir"], "model.keras")
    yield from measure_step(config, records, student)
    yield from speed_step(config, records, music, student)
    yield from caveats(config)
    yield f"demo finished in {time.time() - start:.0f} s"


def music_step(config: DistilDemoConfig):
    """The folder of music: the user's, or Debian's soundtracks laid out."""
    if config.music:
        yield f"music: {config.music}"
        return config.music
    from tagger.demos.soundtracks import SOUNDTRACKS, music_folder

    folder = join_path(config.work_dir, "music")
    start = time.time()
    yield (f"music: Debian's game soundtracks ({', '.join(s.package for s in SOUNDTRACKS)}) "
           f"into {folder}")
    music_folder(folder, join_path(config.work_dir, "debs"))
    yield f"music ready in {time.time() - start:.0f} s"
    return folder


def build_step(config: DistilDemoConfig, music: str, records: str):
    from tagger.config import BuildConfig
    from tagger.datasets.build import build
    from tagger.datasets.folder import SOURCE, FolderSettings
    from tagger.records.info import describe

    start = time.time()
    info = build(SOURCE, FolderSettings(val_fraction=config.val_fraction,
                                        test_fraction=config.test_fraction, seed=config.seed),
                 BuildConfig(data_dir=music, out_dir=records, workers=config.workers,
                             clips_per_shard=CLIPS_PER_SHARD, overwrite=True,
                             max_seconds=SOURCE.max_seconds, progress=config.progress))
    yield describe(info, records)
    yield f"records built in {time.time() - start:.0f} s"


def train_config(config: DistilDemoConfig, records: str):
    from tagger.config import DistillationConfig, TrainConfig

    return TrainConfig(
        data_dir=records, train_dir=join_path(config.work_dir, "runs"), model="samplecnn",
        model_args={**STUDENT_ARGS, "width": config.width}, batch_size=config.batch_size,
        schedule="staged", optimizer="adam", lr=config.lr, num_stages=1,
        max_epochs_per_stage=config.epochs, patience=config.epochs,
        steps_per_epoch=config.steps_per_epoch, validation_steps=VALIDATION_BATCHES,
        seed=config.seed, strategy="default",
        resume=True, progress=config.progress,
        distillation=DistillationConfig(teachers=(config.teacher,)))


def train_step(config: DistilDemoConfig, records: str, music: str):
    from tagger.demos.pipeline import stamped_training

    dataset = {"music": music, "val_fraction": config.val_fraction,
               "test_fraction": config.test_fraction, "seed": config.seed}
    width = "paper-size" if config.width == 1 else f"width {config.width:g}"
    metrics = yield from stamped_training(
        config, train_config(config, records), dataset,
        f"training the {width} ReSE+multi sample-level CNN on {config.teacher}'s targets: "
        f"Adam lr {config.lr:g}, {config.epochs} epochs of {config.steps_per_epoch} batches "
        f"of {config.batch_size}")
    return metrics


def measure_step(config: DistilDemoConfig, records: str, student: str):
    """eval.py --against on the test split; the report in against.json."""
    from tagger import strict_json
    from tagger.evaluation.against import evaluate_against
    from tagger.training.teacher_targets import targets_for

    start = time.time()
    result = evaluate_against(student, [config.teacher], records,
                              targets_for([config.teacher], records, config.progress,
                                          log=lambda _: None, flag="--teacher"),
                              "test", progress=config.progress, seed=config.seed)
    out = join_path(config.work_dir, "against.json")
    fileio.write_atomic(out, strict_json.dumps(result.as_dict(), indent=2) + "\n")
    lines = result.report_lines()
    table = lines.index("per tag (sorted by ROC-AUC against the teacher's tags):")
    yield "the student against its teacher on the held-out tracks:"
    yield from (f"  {line}" for line in lines[:table])
    yield f"  (per tag: {out}; measured in {time.time() - start:.0f} s)"


def speed_step(config: DistilDemoConfig, records: str, music: str, student: str):
    """Seconds of audio tagged per second (x real time) by student and
    teacher, Keras and int8, on the test split's files, as tag.py tags them
    (int8 ranges measured on a few training files); Keras alone, and a line
    saying why, where a TFLite model cannot be written in this process
    (`backends.without_keras_on_tensorflow`: Keras on JAX, say)."""
    from tagger.backends import without_keras_on_tensorflow
    from tagger.inference.engine.registry import EngineOptions, make_predictor
    from tagger.inference.engine.tagging import tag_files
    from tagger.models.saved import load_tagger
    from tagger.pretrained import resolve_model
    from tagger.records.reader import split_audio_files

    files = split_audio_files(records, music, "test", count=SPEED_FILES)
    calibration = split_audio_files(records, music, "train", count=8)
    options = EngineOptions(calibration_audio=lambda: calibration)
    teacher = resolve_model(config.teacher, log=lambda _: None)
    no_tflite = without_keras_on_tensorflow()
    engines = SPEED_ENGINES[:1] if no_tflite else SPEED_ENGINES
    yield f"speed on {len(files)} held-out tracks, x real time on this machine:"
    for who, path in (("student", student), (f"teacher {config.teacher}", teacher)):
        model, info = load_tagger(path)
        rates = []
        for label, engine in engines:
            predictor = make_predictor(engine, model, info, options)
            start = time.time()
            seconds = sum(r.duration for r in tag_files(predictor, files) if r.ok)
            rates.append(f"{label} ({engine}) {seconds / (time.time() - start):.0f}x")
        yield f"  {who:28s} " + "   ".join(rates)
    if no_tflite:
        yield f"  (int8 not timed: tflite-int8 is TensorFlow's own format, and {no_tflite})"


def caveats(config: DistilDemoConfig):
    yield ("what the student can know: its teacher's tags, as its teacher hears them, on "
           "music like the tracks it trained on")
    if config.music is None:
        yield ("what it cannot: game soundtracks are instrumental (orchestral, ambient, "
               "electronic, rock), so tags the teacher gives to voices, pop, country or "
               "Indian music were rarely shown to it; it inherits its teacher's errors "
               "and knows no tag its teacher does not")
