"""The noisy-student demonstration (`demo.py --semi-supervised`).

On the synthetic dataset, records with a small labelled train split and a
large unlabelled `student` split (build_mtt's --unlabelled-fraction). For
each seed: a teacher (sample-level CNN, ReSE+multi) trained on the labelled
clips alone, then two students trained by noisy-student training with its
soft labels on the unlabelled clips: a compact one (half the channel width)
and one of the teacher's size. All are evaluated on the same test split:
macro ROC-AUC and PR-AUC with percentile-bootstrap 95% intervals over test
clips, and the paired bootstrap interval of each student's gain over its
teacher. Each model's intervals are eval.py's own (`evaluate` with
`resamples` resamples, seed 0: `eval.py --bootstrap N` prints the same); the
gain's interval comes from the same resampled clips
(tagger.evaluation.metrics.paired_bootstrap_gain).

Everything goes under `<work_dir>/`; a rerun with the same settings reuses
the finished runs, other settings start the runs anew.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time

from tagger import fileio
from tagger.config import BuildConfig, NoisyStudentConfig, TrainConfig, join_path, to_dict

STAMP = "semi_supervised.json"
BOOTSTRAP_SEED = 0  # eval.py's default --seed: its intervals are eval.py's
STUDENTS = {"compact": "compact student", "equal": "equal-size student"}


@dataclasses.dataclass(frozen=True)
class SemiSupervisedDemoConfig:
    work_dir: str = "demo_output"
    clips: int = 600
    seconds: float = 6.0
    unlabelled_fraction: float = 0.75  # of the train split, labels dropped
    seeds: int = 2
    seed: int = 0  # the dataset's seed and the first training seed
    teacher_width: float = 0.125
    compact_width: float = 0.0625
    teacher_epochs: int = 12
    student_epochs: int = 30
    batch_size: int = 16  # the students: half labelled, half unlabelled
    lr: float = 0.003
    pseudo_label_weight: float = 1.0
    resamples: int = 1000  # bootstrap resamples (eval.py's default)
    students: tuple = ("compact", "equal")  # which students to train per seed
    steps_per_epoch: int | None = None  # None: one pass over the labelled clips
    workers: int = 1
    progress: bool = True


def run_semi_supervised_demo(config: SemiSupervisedDemoConfig):
    """Runs the demonstration; yields report lines; the last lines are the table."""
    from tagger.datasets.build import build
    from tagger.datasets.mtt import SOURCE, MttSettings
    from tagger.demos.pipeline import DemoConfig, make_dataset
    from tagger.records.info import describe

    start = time.time()
    # Its own dataset (600 clips of 6 s), apart from demo.py's (400 of 29.1 s)
    # in <work_dir>/dataset: sharing one made each demo remake it for the other
    # and left the other's records not matching the audio.
    data_dir = join_path(config.work_dir, "semi_supervised", "dataset")
    records = join_path(config.work_dir, "semi_supervised", "tfrecord")
    runs = join_path(config.work_dir, "semi_supervised", "runs")
    yield from make_dataset(DemoConfig(work_dir=config.work_dir, clips=config.clips,
                                       seconds=config.seconds, seed=config.seed,
                                       workers=config.workers, progress=config.progress),
                            data_dir)
    info = build(SOURCE, MttSettings(seed=config.seed,
                                     unlabelled_fraction=config.unlabelled_fraction),
                 BuildConfig(data_dir=data_dir, out_dir=records, workers=config.workers,
                             overwrite=True, progress=config.progress))
    yield describe(info, records)
    _start_anew_if_changed(config, runs)
    results = []  # per seed: (seed, teacher run, {student: run})
    for seed in range(config.seed, config.seed + config.seeds):
        teacher = yield from _train(config, records, runs, f"teacher-seed{seed}", seed,
                                    config.teacher_width, None)
        students = {}
        for name, width in (("compact", config.compact_width),
                            ("equal", config.teacher_width)):
            if name in config.students:
                students[name] = yield from _train(config, records, runs,
                                                   f"student-{name}-seed{seed}", seed,
                                                   width, teacher)
        results.append((seed, teacher, students))
    yield from _report(config, records, results)
    yield f"semi-supervised demo finished in {time.time() - start:.0f} s"


def _train(config, records, runs, name, seed, width, teacher):
    from tagger.training.run import train

    student = teacher is not None
    epochs = config.student_epochs if student else config.teacher_epochs
    train_config = TrainConfig(
        data_dir=records, train_dir=runs, run_name=name, model="samplecnn",
        model_args={"block": "rese", "multi": True, "alpha": 16, "width": width},
        batch_size=config.batch_size if student else config.batch_size // 2,
        schedule="staged", optimizer="adam", lr=config.lr, num_stages=1,
        max_epochs_per_stage=epochs, patience=epochs, monitor="val_roc_auc", seed=seed,
        steps_per_epoch=config.steps_per_epoch,
        strategy="default", resume=True, evaluate_test=False, progress=config.progress,
        noisy_student=NoisyStudentConfig(
            teacher=join_path(teacher, "model.keras") if student else None,
            pseudo_label_weight=config.pseudo_label_weight))
    begin = time.time()
    yield (f"{name}: samplecnn ReSE+multi width {width:g}, {epochs} epochs"
           + (f", noisy student of {teacher}" if student else ", labelled clips only"))
    metrics = train(train_config)
    yield f"{name}: trained in {time.time() - begin:.0f} s"
    return metrics["run_dir"]


def _start_anew_if_changed(config, runs):
    stamp = join_path(config.work_dir, "semi_supervised", STAMP)
    wanted = json.loads(json.dumps(  # as read back: lists, not tuples
        {k: v for k, v in to_dict(config).items() if k not in ("workers", "progress")}))
    if fileio.exists(runs) and (not fileio.exists(stamp)
                                or json.loads(fileio.read_text(stamp)) != wanted):
        fileio.rmtree(runs)
    fileio.makedirs(join_path(config.work_dir, "semi_supervised"))
    fileio.write_atomic(stamp, json.dumps(wanted, sort_keys=True))


def _report(config, records, results):
    """Evaluates every model on the test split (eval.py's intervals) and each
    student's paired gain over its teacher; writes results.json; yields the
    table and the verdict."""
    from tagger.evaluation.evaluate import evaluate
    from tagger.evaluation.metrics import paired_bootstrap_gain

    @functools.cache  # each model evaluated once
    def evaluation(run_dir):
        return evaluate(join_path(run_dir, "model.keras"), records, "test",
                        bootstrap=config.resamples, seed=BOOTSTRAP_SEED)

    models, gains = [], []
    for seed, teacher_run, students in results:
        teacher = evaluation(teacher_run)
        models.append(_model_row(seed, "teacher", teacher_run, teacher))
        for name, student_run in students.items():
            student = evaluation(student_run)
            models.append(_model_row(seed, STUDENTS[name], student_run, student))
            ci = paired_bootstrap_gain(teacher.predictions.labels, teacher.predictions.scores,
                                       student.predictions.scores, config.resamples,
                                       BOOTSTRAP_SEED)
            row = {"seed": seed, "student": name, "teacher_run": teacher_run,
                   "student_run": student_run}
            for metric in ("roc_auc", "pr_auc"):
                point = getattr(student.metrics, metric) - getattr(teacher.metrics, metric)
                row[metric] = [point, *ci[metric]]
            gains.append(row)
    clips = (len(evaluation(results[0][1]).predictions.clip_ids) if results else 0)
    summary = {"test_clips": clips, "bootstrap": {"level": 0.95, "resamples": config.resamples,
                                                  "seed": BOOTSTRAP_SEED},
               "models": models, "gains": gains}
    out = join_path(config.work_dir, "semi_supervised", "results.json")
    fileio.write_atomic(out, json.dumps(summary, indent=1))
    yield from table_lines(summary)
    yield f"results: {out}"


def _model_row(seed, model, run_dir, result) -> dict:
    m = result.metrics
    return {"seed": seed, "model": model, "run": run_dir,
            "roc_auc": [m.roc_auc, *m.intervals["roc_auc"]],
            "pr_auc": [m.pr_auc, *m.intervals["pr_auc"]]}


def table_lines(summary: dict) -> list:
    """The final report of `summary` (results.json's content): every model's
    macro ROC-AUC and PR-AUC with their intervals, each student's paired gain
    over its teacher, and the verdict."""
    b = summary["bootstrap"]
    level = f"{b['level']:.0%}"
    lines = [f"test split: {summary['test_clips']} clips; [{level} percentile-bootstrap "
             f"intervals over clips, {b['resamples']} resamples, seed {b['seed']}, as eval.py "
             "computes them]",
             f"{'seed':>4}  {'model':20} {'ROC-AUC [' + level + ' CI]':>23}  "
             f"{'PR-AUC [' + level + ' CI]':>23}"]
    lines += [f"{r['seed']:>4}  {r['model']:20} {_ci(r['roc_auc']):>23}  {_ci(r['pr_auc']):>23}"
              for r in summary["models"]]
    lines += ["gain = student - teacher, paired: both models on the same resampled clips",
              f"{'seed':>4}  {'student':20} {'ROC-AUC gain [' + level + ' CI]':>26}  "
              f"{'PR-AUC gain [' + level + ' CI]':>26}"]
    lines += [f"{g['seed']:>4}  {STUDENTS[g['student']]:20} "
              f"{_ci(g['roc_auc'], signed=True):>26}  {_ci(g['pr_auc'], signed=True):>26}"
              + ("  *" if beats(g) else "") for g in summary["gains"]]
    return lines + [f"* the ROC-AUC gain's {level} interval lies above 0: the student beats "
                    "its teacher beyond the interval", verdict(summary["gains"])]


def beats(gain: dict, metric: str = "roc_auc") -> bool:
    """Whether the gain's interval lies above 0."""
    return gain[metric][1] > 0


def verdict(gains: list) -> str:
    """One line: for each student, in how many seeds it beats its teacher
    beyond the interval, on ROC-AUC and on PR-AUC."""
    if not gains:
        return "verdict: no student was trained"
    parts = []
    for name, label in STUDENTS.items():
        rows = [g for g in gains if g["student"] == name]
        if not rows:
            continue
        n = len(rows)
        roc, pr = (sum(beats(g, m) for g in rows) for m in ("roc_auc", "pr_auc"))
        claim = ("beats its teacher beyond the interval" if roc == n else
                 "beats its teacher beyond the interval in some seeds only" if roc else
                 "does not beat its teacher beyond the interval")
        parts.append(f"the {label} {claim} (gain's interval above 0 in {roc} of {n} "
                     f"seed(s) on ROC-AUC, {pr} of {n} on PR-AUC)")
    return "verdict: " + "; ".join(parts)


def _ci(value, signed=False):
    point, low, high = value
    f = "{:+.4f}" if signed else "{:.4f}"
    return f"{f.format(point)} [{f.format(low)}, {f.format(high)}]"
