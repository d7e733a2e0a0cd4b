"""The noisy-student demonstration (`demo.py --semi-supervised`).

On the synthetic dataset, records with a small labelled train split and a
large unlabelled `student` split (build_mtt's --unlabelled-fraction). For
each seed: a teacher (sample-level CNN, ReSE+multi) trained on the labelled
clips alone, then two students trained by noisy-student training with its
soft labels on the unlabelled clips: a compact one (half the channel width)
and one of the teacher's size. All are evaluated on the same test split:
macro ROC-AUC and PR-AUC with percentile-bootstrap 95% intervals over test
clips, and the paired bootstrap interval of each student's gain over its
teacher (the same resampled clips for both models).

Everything goes under `<work_dir>/`; a rerun with the same settings reuses
the finished runs, other settings start the runs anew.
"""

from __future__ import annotations

import dataclasses
import json
import time

import numpy as np

from tagger import fileio
from tagger.config import BuildConfig, NoisyStudentConfig, TrainConfig, join_path, to_dict

STAMP = "semi_supervised.json"


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
    resamples: int = 1000
    students: tuple = ("compact", "equal")  # which students to train per seed
    steps_per_epoch: int | None = None  # None: one pass over the labelled clips
    workers: int = 1
    progress: bool = True


def run_semi_supervised_demo(config: SemiSupervisedDemoConfig):
    """Runs the demonstration; yields report lines; the last lines are the table."""
    from tagger.datasets.mtt import build_mtt
    from tagger.demo import DemoConfig, make_dataset
    from tagger.records.info import describe

    start = time.time()
    data_dir = join_path(config.work_dir, "dataset")
    records = join_path(config.work_dir, "semi_supervised", "tfrecord")
    runs = join_path(config.work_dir, "semi_supervised", "runs")
    yield from make_dataset(DemoConfig(work_dir=config.work_dir, clips=config.clips,
                                       seconds=config.seconds, seed=config.seed,
                                       workers=config.workers, progress=config.progress),
                            data_dir)
    info = build_mtt(BuildConfig(data_dir=data_dir, out_dir=records, workers=config.workers,
                                 unlabelled_fraction=config.unlabelled_fraction,
                                 seed=config.seed,
                                 overwrite=True, progress=config.progress))
    yield describe(info, records)
    _start_anew_if_changed(config, runs)
    results = []
    for seed in range(config.seed, config.seed + config.seeds):
        teacher = yield from _train(config, records, runs, f"teacher-seed{seed}", seed,
                                    config.teacher_width, None)
        for name, width in (("compact", config.compact_width),
                            ("equal", config.teacher_width)):
            if name not in config.students:
                continue
            student = yield from _train(config, records, runs, f"student-{name}-seed{seed}",
                                        seed, width, teacher)
            results.append((seed, name, teacher, student))
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
        schedule="staged", optimizer="adam", lr=config.lr, num_lr_decays=1,
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
    from tagger.evaluation.evaluate import evaluate

    predictions = {}

    def predict(run_dir):
        if run_dir not in predictions:
            result = evaluate(join_path(run_dir, "model.keras"), records, "test")
            predictions[run_dir] = (result.predictions.labels, result.predictions.scores)
        return predictions[run_dir]

    rows = []
    for seed, name, teacher, student in results:
        labels, teacher_scores = predict(teacher)
        _, student_scores = predict(student)
        stats = paired_bootstrap(labels, teacher_scores, student_scores,
                                 config.resamples, seed)
        rows.append({"seed": seed, "student": name, "teacher_run": teacher,
                     "student_run": student, **stats})
    out = join_path(config.work_dir, "semi_supervised", "results.json")
    fileio.write_atomic(out, json.dumps(rows, indent=1))
    clips = len(predict(results[0][2])[0]) if results else 0
    yield (f"test split: {clips} clips; 95% percentile-bootstrap intervals over clips "
           f"({config.resamples} resamples); gain = student - teacher on the same resamples")
    yield (f"{'seed':>4} {'student':8} {'metric':7} {'teacher':>22} {'student':>22} "
           f"{'gain':>24}")
    for r in rows:
        for metric in ("roc_auc", "pr_auc"):
            t, s, g = r["teacher"][metric], r["student_model"][metric], r["gain"][metric]
            yield (f"{r['seed']:>4} {r['student']:8} {metric:7} {_ci(t):>22} {_ci(s):>22} "
                   f"{_ci(g, signed=True):>24}" + ("  *" if g[1] > 0 else ""))
    yield "* the gain's interval lies above 0: the student beats its teacher beyond the interval"
    yield f"results: {out}"


def _ci(value, signed=False):
    point, low, high = value
    f = "{:+.4f}" if signed else "{:.4f}"
    return f"{f.format(point)} [{f.format(low)}, {f.format(high)}]"


def paired_bootstrap(labels, teacher_scores, student_scores, resamples: int = 1000,
                     seed: int = 0, level: float = 0.95) -> dict:
    """Point values (sklearn, the whole split) and percentile-bootstrap
    intervals of macro ROC-AUC and PR-AUC for the teacher, the student and
    the student's gain, with the same resampled clips for both models; a
    tag with no positive or no negative clip in a resample is left out of
    that resample's macro average. Returns {"teacher" | "student_model" |
    "gain": {metric: (point, low, high)}}."""
    from tagger.evaluation.metrics import tag_metrics

    labels = np.asarray(labels) > 0.5
    clips, tags = labels.shape
    names = [str(i) for i in range(tags)]
    point = {}
    for key, scores in (("teacher", teacher_scores), ("student_model", student_scores)):
        m = tag_metrics(labels.astype(np.float32), np.asarray(scores), names)
        point[key] = {"roc_auc": m.roc_auc, "pr_auc": m.pr_auc}
    point["gain"] = {k: point["student_model"][k] - point["teacher"][k] for k in point["teacher"]}
    rng = np.random.default_rng(seed)
    draws = {key: {"roc_auc": [], "pr_auc": []} for key in point}
    for _ in range(resamples):
        index = rng.integers(0, clips, clips)
        y = labels[index]
        values = {}
        for key, scores in (("teacher", teacher_scores), ("student_model", student_scores)):
            values[key] = macro_aucs(y, np.asarray(scores, np.float64)[index])
            for metric in ("roc_auc", "pr_auc"):
                draws[key][metric].append(values[key][metric])
        for metric in ("roc_auc", "pr_auc"):
            draws["gain"][metric].append(values["student_model"][metric]
                                         - values["teacher"][metric])
    tail = 100 * (1 - level) / 2
    result = {}
    for key in point:
        result[key] = {}
        for metric in ("roc_auc", "pr_auc"):
            values = np.asarray(draws[key][metric])
            low, high = np.percentile(values[np.isfinite(values)], [tail, 100 - tail])
            result[key][metric] = (float(point[key][metric]), float(low), float(high))
    return result


def macro_aucs(labels: np.ndarray, scores: np.ndarray) -> dict:
    """Macro ROC-AUC (Mann-Whitney, ties averaged) and average precision (as
    sklearn's for distinct scores) over the tags with positives and negatives;
    labels bool (clips, tags), scores (clips, tags)."""
    from scipy.stats import rankdata

    positives = labels.sum(0)
    keep = (positives > 0) & (positives < labels.shape[0])
    if not keep.any():
        return {"roc_auc": float("nan"), "pr_auc": float("nan")}
    y, s, p = labels[:, keep], scores[:, keep], positives[keep].astype(np.float64)
    n = y.shape[0] - p
    ranks = rankdata(s, axis=0)
    roc = ((ranks * y).sum(0) - p * (p + 1) / 2) / (p * n)
    order = np.argsort(-s, axis=0, kind="stable")
    hits = np.take_along_axis(y, order, axis=0)
    precision = np.cumsum(hits, axis=0) / np.arange(1, y.shape[0] + 1)[:, None]
    ap = (precision * hits).sum(0) / p
    return {"roc_auc": float(roc.mean()), "pr_auc": float(ap.mean())}
