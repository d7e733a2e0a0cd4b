"""Which bodies train.py --from should learn a library's own tags on: each
alone, their heads' scores averaged, against a logistic probe on each
body's embedding, at several counts of labelled files a tag; on real music.

    python bench/bench_own_tags_bodies.py RECORDS [--bodies MTT_musicnn MSD_musicnn ...]
                                          [--per-tag 5 10 20] [--seeds 3] [--json FILE]
    python bench/bench_own_tags_bodies.py --tiny    # tones and untrained bodies: the suite's run

RECORDS: records of a folder whose every file is labelled (build_folder.py
--labels-from folders: one tag per soundtrack), all splits pooled. Each
body embeds every clip once, at its own rate and window, stored beside the
records (`pretrained_body`; the seconds it took are printed, and the
hours of audio). For each count of labelled files a tag and each seed, a
draw labels that many files of each tag (at most half of the tag's
files), split 80/10/10 as build_folder.py splits them; a head trains on
each body's embeddings of the train and val files as train.py --from
trains it (`bench_own_tags_heads.train_head`, its default row), and every
file not labelled is held out. Rows: each body's head; a logistic
regression per tag on each body's clip means (the probe:
`bench_own_tags_heads.logistic_scores`); and every combination of 2 to
`--max-combined` bodies, and all of them, their heads' clip scores
averaged: the tagger train.py --from A --from B makes where the bodies
read the same windows (marked `*` where they do not: a mean of clip
scores that no saved tagger makes). Each row: the held-out macro ROC-AUC,
the mean over the seeds, a 95% bootstrap interval of that mean (the held-out
files resampled, `metrics.bootstrap_macro_aucs`, the seeds' AUCs averaged
resample by resample), the lowest seed, the mean PR-AUC, each tag's
ROC-AUC and the heads' training seconds.

Ratio lines, per count k: `own_tags_best_single_roc_auc_k` (the best
body's head), `own_tags_averaged_over_single_k` (the best combination's
mean over the best body's), `own_tags_best_over_probe_k` (the best row's
mean over the best probe's), `own_tags_best_over_probe_min_k` (the
best row over the best probe on the seed where it leads least) and, with
--noisy-student, `own_tags_student_over_teacher_k` (the last round's
student over the first body's head). `--tiny`:
records of two folders of tones and two untrained package Musicnns in a
temporary folder (a run of seconds that checks the bench runs).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time

import numpy as np
from bench_own_tags_heads import (
    clip_scores,
    draw,
    logistic_scores,
    pooled,
    tiny_setting,
    train_head,
)

from tagger.evaluation.metrics import bootstrap_macro_aucs, tag_metrics
from tagger.training.pretrained_body import Body

UNITS, TRAINING = 256, "joined"  # train.py --from's head (bench_own_tags_heads.DEFAULT)
LEVEL = 0.95


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("records", nargs="?", default=None)
    p.add_argument("--tiny", action="store_true",
                   help="tones and two untrained bodies in a temporary folder")
    p.add_argument("--width", type=float, default=None,
                   help="with --tiny: the untrained bodies' width (default: 1/16)")
    p.add_argument("--bodies", nargs="+", default=None, metavar="MODEL",
                   help="pretrained names or saved taggers (default: MTT_musicnn "
                        "MSD_musicnn)")
    p.add_argument("--per-tag", nargs="+", type=int, default=[5, 10, 20], metavar="N",
                   help="labelled files a tag, each count a table (default: 5 10 20)")
    p.add_argument("--seeds", type=int, default=3, help="draws per count (default: 3)")
    p.add_argument("--max-combined", type=int, default=3,
                   help="combinations of up to this many bodies, and all of them")
    p.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    p.add_argument("--noisy-student", type=int, default=0, metavar="COPIES",
                   help="also a noisy student of the first body's head: COPIES augmented "
                        "embeddings of every file (default: 0, none)")
    p.add_argument("--rounds", type=int, default=1,
                   help="with --noisy-student: its rounds, each the last one's student")
    p.add_argument("--max-epochs", type=int, default=None,
                   help="the heads' epochs (default: train.py --from's, 20)")
    p.add_argument("--json", default=None, metavar="FILE", help="every row's figures")
    args = p.parse_args(argv)
    if (args.records is None) != args.tiny:
        p.error("name RECORDS, or --tiny for records of tones")
    if args.tiny and args.bodies:
        p.error("--tiny makes its own bodies: leave out --bodies")
    if args.width is not None and not args.tiny:
        p.error("--width sizes --tiny's untrained bodies: give it with --tiny only")
    if args.rounds != 1 and not args.noisy_student:
        p.error("--rounds counts the noisy student's rounds: give it with --noisy-student")
    if min(args.per_tag) < 1 or args.seeds < 1 or args.max_combined < 1:
        p.error("--per-tag, --seeds and --max-combined count from 1")
    args.bodies = args.bodies or ["MTT_musicnn", "MSD_musicnn"]
    args.width = 1 / 16 if args.width is None else args.width
    return args


def main(argv=None):
    import tempfile

    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_own_tags_bodies_") as work:
        if args.tiny:
            args.records, *args.bodies = tiny_setting(work, args.width)
        measure(args)


def embedded(names, records) -> tuple:
    """(bodies, {name: every clip's window embeddings}, labels, tags), each
    body's embeddings computed or read once, its seconds and audio printed."""
    bodies, clips = [], {}
    for name in names:
        body = Body(name)
        body.name = os.path.basename(name)  # a saved tagger by its file's name
        start = time.perf_counter()
        clips[body.name], labels, tags = pooled([body], records)
        seconds = time.perf_counter() - start
        grid = body.windows()
        hours = (sum(len(c) for c in clips[body.name]) * grid["hop_samples"]
                 / grid["sample_rate"] / 3600)
        print(f"{body.name}: {len(clips[body.name])} files, {hours:.2f} hours of audio in "
              f"windows of {grid['window_samples']} samples at {grid['sample_rate']} Hz, "
              f"embedded or read in {seconds:.0f} s", flush=True)
        bodies.append(body)
    return bodies, clips, labels, tags


class Augmenting:
    """An engine's predictor whose windows go through the noisy-student
    augmentation chain (`tagger.augment.augment`) first, batch by batch,
    each batch keyed by (`copy`, its number): the same draws every run."""

    def __init__(self, predictor, copy: int):
        self.predictor, self.copy, self.batches = predictor, copy, 0

    def __getattr__(self, name):
        return getattr(self.predictor, name)

    def __call__(self, windows):
        from tagger.augment import augment

        seed = np.array([self.copy, self.batches], np.int64)
        self.batches += 1
        return self.predictor(np.asarray(augment(windows, seed, self.sample_rate)))


def augmented(body, records, copy: int) -> list:
    """Every clip's window embeddings by `body` of its audio augmented
    (`Augmenting`), in `pooled`'s order, computed once and kept beside the
    body's stored embeddings (augmented-<copy>.npz)."""
    from tagger.records import batches
    from tagger.records.info import load_info
    from tagger.training.clip_batches import outputs_of_clips
    from tagger.training.pretrained_body import embeddings_store

    path = os.path.join(embeddings_store(body, records).folder, f"augmented-{copy}.npz")
    if not os.path.exists(path):
        info, clips, start = load_info(records), [], time.perf_counter()
        predictor = Augmenting(body.predictor(embeddings=True), copy)
        for split in info.splits:
            clips += [outputs.embeddings for _, outputs in outputs_of_clips(
                predictor, batches.clips(records, split, info), info.sample_rate)]
        np.savez(path + ".partial.npz", num_rows=[len(c) for c in clips],
                 values=np.concatenate(clips))
        os.replace(path + ".partial.npz", path)
        print(f"{body.name}: augmented copy {copy} embedded in "
              f"{time.perf_counter() - start:.0f} s", flush=True)
    with np.load(path) as stored:
        return np.split(stored["values"], np.cumsum(stored["num_rows"])[:-1])


def noisy_student(body, clips, copies, labels, train, val, held, teacher, seed, epochs):
    """Held-out clip scores of a student head (train.py --from's) trained on
    the labelled files' windows, clean and of each augmented copy, with
    their tags, and the held-out files' augmented windows with `teacher`'s
    clip scores of them as soft labels."""
    labelled = train + val
    x = [copy[i] for copy in copies for i in labelled + held]
    y = [np.repeat((labels[i] if k < len(labelled) else teacher[k - len(labelled)])[None],
                   len(copies[0][i]), 0).astype(np.float32)
         for _ in copies for k, i in enumerate(labelled + held)]
    head = train_head([body], clips, labels, train, val, UNITS, TRAINING, seed, epochs,
                      (np.concatenate(x), np.concatenate(y)))
    return clip_scores(head, clips, held)


def combinations(bodies, most: int) -> dict:
    """{label: bodies} of 2 to `most` bodies, and all of them, in order; the
    label their names joined by ' + ', and ' *' where they read different
    windows (no one tagger of them)."""
    picked = [c for k in range(2, min(most, len(bodies)) + 1)
              for c in itertools.combinations(bodies, k)]
    if len(bodies) > most:
        picked.append(tuple(bodies))
    return {" + ".join(b.name for b in group)
            + ("" if all(b.windows() == group[0].windows() for b in group) else " *"): group
            for group in picked}


class Table:
    """Each row's held-out clip scores per seed, and the heads' seconds."""

    def __init__(self, labels, tags):
        self.labels, self.tags = labels, tags
        self.scores, self.seconds, self.held = {}, {}, []

    def add(self, label, seed, scores, seconds=0.0):
        self.scores.setdefault(label, {})[seed] = scores
        self.seconds[label] = self.seconds.get(label, 0.0) + seconds

    def figures(self, label, resamples: int) -> dict:
        per_seed = [tag_metrics(self.labels[held], self.scores[label][seed], self.tags)
                    for seed, held in enumerate(self.held)]
        rocs = np.array([m.roc_auc for m in per_seed])
        boot = np.mean([bootstrap_macro_aucs(self.labels[held], [self.scores[label][seed]],
                                             resamples, seed)[0][0]
                        for seed, held in enumerate(self.held)], axis=0)
        tail = 100 * (1 - LEVEL) / 2
        per_tag = {t: float(np.nanmean([dict(zip(m.per_tag.tag, m.per_tag.roc_auc)).get(
            t, np.nan) for m in per_seed])) for t in self.tags}
        return {"row": label, "roc_auc": float(rocs.mean()), "lowest_seed": float(rocs.min()),
                "interval": [float(np.nanpercentile(boot, tail)),
                             float(np.nanpercentile(boot, 100 - tail))],
                "pr_auc": float(np.mean([m.pr_auc for m in per_seed])),
                "seeds": rocs.tolist(), "per_tag": per_tag,
                "training_s": round(self.seconds[label], 1)}


def row_line(f: dict) -> str:
    tags = ", ".join(f"{t} {v:.3f}" for t, v in sorted(f["per_tag"].items(),
                                                         key=lambda kv: -kv[1]))
    low, high = f["interval"]
    return (f"{f['row']:52s} {f['roc_auc']:.4f} [{low:.4f}, {high:.4f}] lowest "
            f"{f['lowest_seed']:.4f}  PR {f['pr_auc']:.4f}  {f['training_s']:5.1f} s  | {tags}")


def measure(args):
    """Every count's table and ratio lines (module docstring)."""
    bodies, clips, labels, tags = embedded(args.bodies, args.records)
    combined = combinations(bodies, args.max_combined)
    copies = [augmented(bodies[0], args.records, copy) for copy in range(args.noisy_student)]
    report = {"records": args.records, "files": len(labels), "tags": tags, "counts": {}}
    for per_tag in args.per_tag:
        table = Table(labels, tags)
        for seed in range(args.seeds):
            train, val, _, held = draw(labels, per_tag, seed, at_most_half=True)
            table.held.append(held)
            for body in bodies:
                start = time.perf_counter()
                head = train_head([body], clips[body.name], labels, train, val, UNITS,
                                  TRAINING, seed, args.max_epochs)
                table.add(body.name, seed, clip_scores(head, clips[body.name], held),
                          time.perf_counter() - start)
                table.add(f"probe {body.name}", seed,
                          logistic_scores(clips[body.name], labels, train + val, held))
            if args.noisy_student:
                body = bodies[0]
                teacher = table.scores[body.name][seed]
                for round_ in range(1, args.rounds + 1):
                    start = time.perf_counter()
                    teacher = noisy_student(body, clips[body.name], copies, labels, train, val,
                                            held, teacher, seed, args.max_epochs)
                    table.add(f"{body.name}, noisy student, round {round_}", seed, teacher,
                              time.perf_counter() - start)
            for label, group in combined.items():
                table.add(label, seed, np.mean([table.scores[b.name][seed] for b in group],
                                               axis=0))
        for label, group in combined.items():  # its heads' training: each body's
            table.seconds[label] = sum(table.seconds[b.name] for b in group)
        rows = sorted((table.figures(label, args.resamples) for label in table.scores),
                      key=lambda f: -f["roc_auc"])
        files = len(labels) - len(table.held[0])
        print(f"\n{per_tag} labelled files a tag (at most half of a tag's; {files} labelled "
              f"in all, {len(table.held[0])} held out), {args.seeds} seeds: held-out macro "
              f"ROC-AUC, {LEVEL:.0%} interval, lowest seed, PR-AUC, training, per tag",
              flush=True)
        for f in rows:
            print(row_line(f), flush=True)
        report["counts"][per_tag] = rows
        ratios(rows, bodies, per_tag, args.rounds if args.noisy_student else 0)
    if args.json:
        with open(args.json, "w") as out:
            json.dump(report, out, indent=1)


def ratios(rows, bodies, per_tag: int, rounds: int) -> None:
    by = {f["row"]: f for f in rows}
    singles = [by[b.name] for b in bodies]
    probes = [by[f"probe {b.name}"] for b in bodies]
    best_single = max(singles, key=lambda f: f["roc_auc"])
    best_probe = max(probes, key=lambda f: f["roc_auc"])
    best = rows[0]
    mixes = [f for f in rows if " + " in f["row"]]
    print(f"ratio own_tags_best_single_roc_auc_{per_tag} {best_single['roc_auc']:.4f}")
    if mixes:
        print(f"ratio own_tags_averaged_over_single_{per_tag} "
              f"{mixes[0]['roc_auc'] / best_single['roc_auc']:.4f}")
    print(f"ratio own_tags_best_over_probe_{per_tag} "
          f"{best['roc_auc'] / best_probe['roc_auc']:.4f}")
    print(f"ratio own_tags_best_over_probe_min_{per_tag} "
          f"{min(a / b for a, b in zip(best['seeds'], best_probe['seeds'])):.4f}")
    if rounds:
        student = by[f"{bodies[0].name}, noisy student, round {rounds}"]
        print(f"ratio own_tags_student_over_teacher_{per_tag} "
              f"{student['roc_auc'] / by[bodies[0].name]['roc_auc']:.4f}")


if __name__ == "__main__":
    main()
