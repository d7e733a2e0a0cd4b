"""Which head train.py --from should train: linear or one hidden layer, the
val files joined to its training or held out to stop on, against a
logistic regression, on several bodies, with pseudo-labels; on real music.

    python bench/bench_own_tags_heads.py RECORDS [--from MTT_musicnn] [--also-from MSD_musicnn]
                                         [--per-tag 10] [--draws 6]
    python bench/bench_own_tags_heads.py --tiny    # tones and untrained bodies: the suite's run

RECORDS: records of a folder whose every file is labelled (build_folder.py
--labels with every file listed, e.g. one tag per soundtrack), all splits
pooled. Each draw labels `--per-tag` files of each tag, split as
build_folder.py splits them by default (80/10/10: train, val, test), and
the head trains on the body's stored embeddings (`pretrained_body`) as
train.py --from trains it (`tag_head`'s layers, Adam at the head's rate and
batch, `config.head_settings`): on the train and val files for a fixed 20
epochs, the last kept (train.py's), or on the train files with early
stopping following the val loss of the clip scores, of the windows, or
none (the last of 100 epochs kept). Beside them: a logistic regression per
tag on each file's mean embedding (scikit-learn, C=1, features
standardised on the training files, trained on the train and val files);
train.py's head on the embeddings of the body and of each `--also-from`
joined (train.py --from A --from B), and its heads trained apart, one per
body, their scores averaged; and train.py's head trained again on
the labelled files and the held-out files it scores confidently (every tag
below 0.2 or above 0.8), labelled with its own scores above 0.5. Every
file not labelled in the draw is held out: the macro ROC-AUC and PR-AUC of
the clip scores (the mean of the windows' scores, as tag.py scores a file)
over them, averaged over the draws, with the lowest. The embeddings are
computed once and stored beside the records.

Ratio lines: `own_tags_heldout_roc_auc` (train.py --from's head),
`own_tags_default_of_best` (its held-out ROC-AUC over the best row's: 1
when none does better), `own_tags_default_over_logistic_min` (its
held-out ROC-AUC over the logistic regression's, on the draw where it
leads least: above 1 when it beats it on every draw),
`own_tags_bodies_over_default` and `own_tags_heads_averaged_over_default`
(with `--also-from`: the joined bodies' mean, and the averaged heads', over
its) and `own_tags_pseudo_over_default` (the pseudo-labels'
mean over its). `--tiny` makes records of two folders of tones and two
untrained package Musicnns at `--width` as the bodies, in a temporary
folder (a run of seconds that checks the bench runs).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import timed, untrained_pons_musicnn

from tagger.config import HEAD_SETTINGS, head_settings
from tagger.evaluation.metrics import binary_crossentropy, tag_metrics
from tagger.records.info import load_info
from tagger.records.reader import clip_labels
from tagger.training import tag_head
from tagger.training.pretrained_body import Body, check_same_audio, joined_embeddings

# (label, hidden units, what early stopping follows; "joined": none, the val
# files train it too for head_settings' 20 epochs, as train.py --from's)
DEFAULT = ("one hidden layer of 256, val joined, 20 epochs", 256, "joined")
HEADS = (DEFAULT,
         ("one hidden layer of 256, clip loss", 256, "clip"),
         ("linear, clip loss", 0, "clip"),
         ("one hidden layer of 256, window loss", 256, "window"),
         ("linear, window loss", 0, "window"),
         ("one hidden layer of 256, none", 256, None))
LOGISTIC_C = 1.0  # scikit-learn's default
CONFIDENT = 0.3  # a held-out file is pseudo-labelled when every score is this far from 0.5


def records_parser(description: str, tiny_bodies: str) -> argparse.ArgumentParser:
    """The flags of the benches on a records folder of labelled files:
    RECORDS, --from, and --tiny (tones and `tiny_bodies`) with --width."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("records", nargs="?", default=None)
    p.add_argument("--from", dest="from_model", default=None,
                   help="the body (default: MTT_musicnn)")
    p.add_argument("--tiny", action="store_true",
                   help=f"tones and {tiny_bodies} in a temporary folder")
    p.add_argument("--width", type=float, default=None,
                   help="with --tiny: the untrained body's width (default: 1/16)")
    return p


def parsed(p: argparse.ArgumentParser, argv, tiny_makes=("from_model",)) -> argparse.Namespace:
    """`p`'s arguments: RECORDS or --tiny, one of them; the flags that
    --tiny's setting makes for itself (`tiny_makes`, attribute names) only
    without it, --width only with it."""
    args = p.parse_args(argv)
    if (args.records is None) != args.tiny:
        p.error("name RECORDS, or --tiny for records of tones")
    flag = {"from_model": "--from", "also_from": "--also-from"}
    given = [flag[name] for name in tiny_makes if getattr(args, name)]
    if args.tiny and given:
        p.error(f"--tiny makes its own bodies: leave out {' and '.join(given)}")
    if args.width is not None and not args.tiny:
        p.error("--width sizes --tiny's untrained body: give it with --tiny only")
    args.from_model = args.from_model or "MTT_musicnn"
    args.width = 1 / 16 if args.width is None else args.width
    return args


def parse_args(argv=None):
    p = records_parser(__doc__.splitlines()[0], "two untrained bodies")
    p.add_argument("--also-from", action="append", default=[], metavar="MODEL",
                   help="a body whose embeddings join --from's in one more row (repeatable)")
    p.add_argument("--per-tag", type=int, default=10)
    p.add_argument("--draws", type=int, default=6)
    p.add_argument("--max-epochs", type=int, default=None,
                   help="epochs at most per head (default: train.py --from's, 20 with the "
                        "val files joined, 100 with them held out)")
    return parsed(p, argv, tiny_makes=("from_model", "also_from"))


def tiny_setting(folder: str, width: float, files: int = 8,
                 seed: int = 0) -> tuple[str, str, str]:
    """(records, body, second body): two folders of `files` tones each,
    every file labelled by its folder, built at the package Musicnn's rate
    and window, and two untrained package Musicnns at `width`, in `folder`."""
    import os

    import keras
    import soundfile

    from tagger.commands import build_folder
    from tagger.datasets.labels_csv import labels_text
    from tagger.models.pons_musicnn import SAMPLE_RATE, SEGMENT_LENGTH
    from tagger.models.saved import save_tagger

    music, rng = os.path.join(folder, "music"), np.random.default_rng(0)
    t = np.arange(int(3.2 * SAMPLE_RATE)) / SAMPLE_RATE
    rows = []
    for tag, hz in (("low", 220.0), ("high", 1760.0)):
        os.makedirs(os.path.join(music, tag))
        for i in range(files):
            audio = 0.3 * np.sin(2 * np.pi * hz * t) + 0.05 * rng.standard_normal(len(t))
            soundfile.write(os.path.join(music, tag, f"{i}.wav"), audio.astype(np.float32),
                            SAMPLE_RATE)
            rows.append((f"{tag}/{i}.wav", [tag]))
    labels = os.path.join(folder, "labels.csv")
    with open(labels, "w") as f:
        f.write(labels_text(rows))
    records = os.path.join(folder, "records")
    code = build_folder.main([music, "--labels", labels, "--out-dir", records,
                              "--sample-rate", str(SAMPLE_RATE), "--segment-length",
                              str(SEGMENT_LENGTH), "--workers", "1", "--no-progress"])
    if code:
        raise SystemExit(f"the tiny records could not be built (exit code {code})")
    bodies = [os.path.join(folder, f"body{i}.keras") for i in (1, 2)]
    for i, body in enumerate(bodies):
        keras.utils.set_random_seed(seed + i)  # the same untrained bodies in every run
        save_tagger(*untrained_pons_musicnn(width), body)
    return records, *bodies


def pooled(bodies, records):
    """(every clip's window embeddings, of `bodies` joined, (clips, tags)
    labels) of every split."""
    info = load_info(records)
    clips, labels = [], []
    for split in info.splits:
        ids, y = clip_labels(records, split, info)
        rows = joined_embeddings(bodies, records, info, split, clip_ids=ids, progress=True)
        clips += np.split(rows.values, rows.offsets[1:-1])
        labels.append(y)
    return clips, np.concatenate(labels), list(info.tag_names)


def draw(labels, per_tag, seed, at_most_half: bool = False):
    """(train, val, test, held out) clip indexes of one draw: `per_tag`
    files of each tag (`at_most_half`: at most half of the tag's files)."""
    rng = np.random.default_rng(seed)
    chosen = []
    for tag in range(labels.shape[1]):
        files = np.flatnonzero(labels[:, tag] == 1)
        count = min(per_tag, len(files) // 2) if at_most_half else per_tag
        chosen += list(rng.permutation(files)[:count])
    chosen = list(rng.permutation(chosen))
    n = len(chosen)
    test, val = chosen[:round(0.1 * n)], chosen[round(0.1 * n):round(0.2 * n)]
    held = sorted(set(range(len(labels))) - set(chosen))
    return chosen[round(0.2 * n):], val, test, held


def clip_scores(head, clips, index):
    rows = np.concatenate([clips[i] for i in index])
    scores = np.asarray(head.predict(rows, batch_size=1024, verbose=0), np.float64)
    return np.stack([part.mean(axis=0) for part in
                     np.split(scores, np.cumsum([len(clips[i]) for i in index])[:-1])])


def windows_and_tags(clips, labels, index):
    """(windows, tags): the windows of the clips at `index`, each with its clip's tags."""
    x = np.concatenate([clips[i] for i in index])
    return x, np.concatenate([np.repeat(labels[i][None], len(clips[i]), 0) for i in index])


def train_head(bodies, clips, labels, train, val, units, stopping, seed,
               max_epochs: int | None = None, extra=None):
    """The head as `stopping` says (HEADS), trained on the windows of the
    clips at `train` (and `val` when "joined") and `extra` (windows, tags)."""
    import keras

    from tagger.models.saved import load_tagger

    keras.utils.set_random_seed(seed)
    models = [(load_tagger(body.path)[0], body.info, body.embedding_layer) for body in bodies]
    head = tag_head.head_of(tag_head.attach_head(models, labels.shape[1], units, "join"),
                            bodies[0].info)
    head.compile(keras.optimizers.Adam(HEAD_SETTINGS["lr"]), "binary_crossentropy")
    joined = stopping == "joined"
    x, y = windows_and_tags(clips, labels, train + val if joined else train)
    if extra is not None:
        x, y = np.concatenate([x, extra[0]]), np.concatenate([y, extra[1]])
    xv, yv = windows_and_tags(clips, labels, val) if stopping == "window" else (None, None)
    best, wait, weights = np.inf, 0, None
    for _ in range(max_epochs or head_settings(joined)["max_epochs_per_stage"]):
        head.fit(x, y, batch_size=HEAD_SETTINGS["batch_size"], epochs=1, verbose=0)
        if stopping in (None, "joined"):
            continue
        if stopping == "clip":
            loss = binary_crossentropy(labels[val], clip_scores(head, clips, val))
        else:
            loss = binary_crossentropy(yv, head.predict(xv, batch_size=1024, verbose=0))
        if loss < best:
            best, wait, weights = loss, 0, head.get_weights()
        else:
            wait += 1
            if wait >= HEAD_SETTINGS["patience"]:
                break
    if weights is not None:
        head.set_weights(weights)
    return head


def logistic_scores(clips, labels, train, held):
    """(held clips, tags) scores of a logistic regression per tag on the
    clips' mean embeddings, standardised on the training clips."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    means = np.stack([clip.mean(axis=0) for clip in clips])
    scaler = StandardScaler().fit(means[train])
    x, x_held = scaler.transform(means[train]), scaler.transform(means[held])
    return np.stack([LogisticRegression(C=LOGISTIC_C, max_iter=2000).fit(
        x, labels[train, tag]).predict_proba(x_held)[:, 1] for tag in range(labels.shape[1])],
        axis=1)


def pseudo_labelled(clips, held, scores):
    """(windows, tags) of the held-out clips whose every score is CONFIDENT
    away from 0.5, labelled with their scores above 0.5, and their count."""
    sure = [i for i, row in zip(held, scores) if np.all(np.abs(row - 0.5) >= CONFIDENT)]
    tags = {i: (row > 0.5).astype(np.float32) for i, row in zip(held, scores)}
    if not sure:
        return None, 0
    return (np.concatenate([clips[i] for i in sure]),
            np.concatenate([np.repeat(tags[i][None], len(clips[i]), 0) for i in sure])), len(sure)


def main(argv=None):
    import tempfile

    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_own_tags_") as work:
        if args.tiny:
            args.records, args.from_model, second = tiny_setting(work, args.width)
            args.also_from = [second]
        measure(args)


class Rows:
    """Each row's per-draw (ROC-AUC, PR-AUC), printed as its draws end."""

    def __init__(self):
        self.figures = {}

    def add(self, label, truth, scores, tags):
        result = tag_metrics(truth, scores, tags)
        self.figures.setdefault(label, []).append((result.roc_auc, result.pr_auc))

    def roc(self, label) -> np.ndarray:
        return np.array([roc for roc, _ in self.figures[label]])

    def line(self, label, seconds: float, note: str = "") -> str:
        roc, pr = np.array(self.figures[label]).T
        return (f"{label:48s} held-out ROC-AUC {roc.mean():.4f} (lowest {roc.min():.4f})  "
                f"PR-AUC {pr.mean():.4f}  ({seconds:.0f} s){note}")


def measure(args):
    """Every row over the draws; their lines and the ratio lines."""
    body = Body(args.from_model)
    clips, labels, tags = pooled([body], args.records)
    print(f"{len(clips)} files, {len(tags)} tags; {args.draws} draws of {args.per_tag} "
          "labelled files a tag (80/10/10), the rest held out", flush=True)
    draws = [draw(labels, args.per_tag, seed) for seed in range(args.draws)]
    rows, default = Rows(), f"{DEFAULT[0]} (train.py --from's)"
    default_scores = []  # per draw: the default head's held-out clip scores, reused below
    for label, units, stopping in HEADS:
        label = default if (label, units, stopping) == DEFAULT else label
        start = time.perf_counter()
        for seed, (train, val, _, held) in enumerate(draws):
            head, _ = timed(train_head, [body], clips, labels, train, val, units, stopping,
                            seed, args.max_epochs)
            scores = clip_scores(head, clips, held)
            if label == default:
                default_scores.append(scores)
            rows.add(label, labels[held], scores, tags)
        print(rows.line(label, time.perf_counter() - start), flush=True)
    logistic, start = f"logistic regression, clip means, C={LOGISTIC_C:g}", time.perf_counter()
    for train, val, _, held in draws:
        rows.add(logistic, labels[held], logistic_scores(clips, labels, train + val, held),
                 tags)
    print(rows.line(logistic, time.perf_counter() - start), flush=True)
    pseudo, start, counts = "train.py's head, then pseudo-labels", time.perf_counter(), []
    for seed, (train, val, _, held) in enumerate(draws):
        extra, count = pseudo_labelled(clips, held, default_scores[seed])
        counts.append(count)
        head = train_head([body], clips, labels, train, val, 256, "joined", seed,
                          args.max_epochs, extra)
        rows.add(pseudo, labels[held], clip_scores(head, clips, held), tags)
    print(rows.line(pseudo, time.perf_counter() - start,
                    f"  [{np.mean(counts):.0f} files pseudo-labelled a draw]"), flush=True)
    if args.also_from:
        bodies = [body] + [Body(name) for name in args.also_from]
        check_same_audio(bodies)
        joined_clips, _, _ = pooled(bodies, args.records)
        together = f"train.py's head on {' + '.join(b.name for b in bodies)}"
        start = time.perf_counter()
        for seed, (train, val, _, held) in enumerate(draws):
            head = train_head(bodies, joined_clips, labels, train, val, 256, "joined", seed,
                              args.max_epochs)
            rows.add(together, labels[held], clip_scores(head, joined_clips, held), tags)
        print(rows.line(together, time.perf_counter() - start), flush=True)
        averaged = f"train.py's head on each of {' and '.join(b.name for b in bodies)}, averaged"
        start = time.perf_counter()
        own_clips = [pooled([other], args.records)[0] for other in bodies[1:]]
        for seed, (train, val, _, held) in enumerate(draws):
            scores = [default_scores[seed]] + [  # the first body's head: the default row's
                clip_scores(train_head([one], ones, labels, train, val, 256, "joined", seed,
                                       args.max_epochs), ones, held)
                for one, ones in zip(bodies[1:], own_clips)]
            rows.add(averaged, labels[held], np.mean(scores, axis=0), tags)
        print(rows.line(averaged, time.perf_counter() - start), flush=True)
    ours = rows.roc(default)
    print(f"ratio own_tags_heldout_roc_auc {ours.mean():.4f}")
    print(f"ratio own_tags_default_of_best "
          f"{ours.mean() / max(rows.roc(label).mean() for label in rows.figures):.4f}")
    print(f"ratio own_tags_default_over_logistic_min {(ours / rows.roc(logistic)).min():.4f}")
    if args.also_from:
        print(f"ratio own_tags_bodies_over_default {rows.roc(together).mean() / ours.mean():.4f}")
        print(f"ratio own_tags_heads_averaged_over_default "
              f"{rows.roc(averaged).mean() / ours.mean():.4f}")
    print(f"ratio own_tags_pseudo_over_default {rows.roc(pseudo).mean() / ours.mean():.4f}")


if __name__ == "__main__":
    main()
