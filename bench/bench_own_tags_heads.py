"""Which head train.py --from should train: linear or one hidden layer, and
what early stopping on a few validation files does to it, on real music.

    python bench/bench_own_tags_heads.py RECORDS [--from MTT_musicnn] [--per-tag 10] [--draws 6]
    python bench/bench_own_tags_heads.py --tiny    # tones and an untrained body: the suite's run

RECORDS: records of a folder whose every file is labelled (build_folder.py
--labels with every file listed, e.g. one tag per soundtrack), all splits
pooled. Each draw labels `--per-tag` files of each tag, split as
build_folder.py splits them by default (80/10/10: train, val, test), and
the head trains on the body's stored embeddings (`pretrained_body`) as
train.py --from trains it (`tag_head`'s layers, Adam at the head's rate,
batch and epoch limit, `config.HEAD_SETTINGS`), early stopping following
the val loss of the clip scores (train.py's), of the windows, or none (the
last epoch kept). Every file not labelled in the draw is held out: the
macro ROC-AUC and PR-AUC of the clip scores (the mean of the windows'
scores, as tag.py scores a file) over them, averaged over the draws, with
the lowest. The embeddings are computed once and stored beside the records.

Ratio lines: `own_tags_heldout_roc_auc` (train.py --from's head: one
hidden layer, early stopping on the clip loss) and
`own_tags_default_of_best` (its held-out ROC-AUC over the best head's: 1
when no other head does better). `--tiny` makes records of two folders of
tones and an untrained package Musicnn at `--width` as the body, in a
temporary folder (a run of seconds that checks the bench runs).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import timed, untrained_pons_musicnn

from tagger.config import HEAD_SETTINGS
from tagger.evaluation.metrics import binary_crossentropy, tag_metrics
from tagger.records.info import load_info
from tagger.records.reader import clip_labels
from tagger.training import tag_head
from tagger.training.pretrained_body import Body, split_embeddings

# (label, hidden units, what early stopping follows)
HEADS = (("one hidden layer of 256, clip loss", 256, "clip"),
         ("linear, clip loss", 0, "clip"),
         ("one hidden layer of 256, window loss", 256, "window"),
         ("linear, window loss", 0, "window"),
         ("one hidden layer of 256, none", 256, None))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("records", nargs="?", default=None)
    p.add_argument("--from", dest="from_model", default="MTT_musicnn")
    p.add_argument("--per-tag", type=int, default=10)
    p.add_argument("--draws", type=int, default=6)
    p.add_argument("--max-epochs", type=int, default=HEAD_SETTINGS["max_epochs_per_stage"],
                   help="epochs at most per head (default: train.py --from's)")
    p.add_argument("--tiny", action="store_true",
                   help="tones and an untrained body in a temporary folder")
    p.add_argument("--width", type=float, default=1 / 16,
                   help="with --tiny: the untrained body's width")
    args = p.parse_args(argv)
    if (args.records is None) != args.tiny:
        p.error("name RECORDS, or --tiny for records of tones")
    return args


def tiny_setting(folder: str, width: float, files: int = 8, seed: int = 0) -> tuple[str, str]:
    """(records, body): two folders of `files` tones each, every file
    labelled by its folder, built at the package Musicnn's rate and window,
    and an untrained package Musicnn at `width`, in `folder`."""
    import csv
    import os

    import keras
    import soundfile

    from tagger.commands import build_folder
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
            rows.append((f"{tag}/{i}.wav", tag))
    labels = os.path.join(folder, "labels.csv")
    with open(labels, "w", newline="") as f:
        csv.writer(f).writerows([("path", "tags"), *rows])
    records = os.path.join(folder, "records")
    code = build_folder.main([music, "--labels", labels, "--out-dir", records,
                              "--sample-rate", str(SAMPLE_RATE), "--segment-length",
                              str(SEGMENT_LENGTH), "--workers", "1", "--no-progress"])
    if code:
        raise SystemExit(f"the tiny records could not be built (exit code {code})")
    body = os.path.join(folder, "body.keras")
    keras.utils.set_random_seed(seed)  # the same untrained body in every run
    save_tagger(*untrained_pons_musicnn(width), body)
    return records, body


def pooled(body, records):
    """(every clip's window embeddings, (clips, tags) labels) of every split."""
    info = load_info(records)
    clips, labels = [], []
    for split in info.splits:
        ids, y = clip_labels(records, split, info)
        rows = split_embeddings(body, records, info, split, clip_ids=ids, progress=True)
        clips += np.split(rows.values, rows.offsets[1:-1])
        labels.append(y)
    return clips, np.concatenate(labels), list(info.tag_names)


def draw(labels, per_tag, seed):
    """(train, val, test, held out) clip indexes of one draw."""
    rng = np.random.default_rng(seed)
    chosen = []
    for tag in range(labels.shape[1]):
        files = np.flatnonzero(labels[:, tag] == 1)
        chosen += list(rng.permutation(files)[:per_tag])
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


def train_head(body_path, layer, clips, labels, train, val, units, stopping, seed,
               max_epochs: int):
    import keras

    from tagger.models.saved import load_tagger

    keras.utils.set_random_seed(seed)
    body, _ = load_tagger(body_path)
    head = tag_head.head_of(tag_head.attach_head(body, layer, labels.shape[1], units), layer)
    head.compile(keras.optimizers.Adam(HEAD_SETTINGS["lr"]), "binary_crossentropy")
    x = np.concatenate([clips[i] for i in train])
    y = np.concatenate([np.repeat(labels[i][None], len(clips[i]), 0) for i in train])
    xv = np.concatenate([clips[i] for i in val])
    yv = np.concatenate([np.repeat(labels[i][None], len(clips[i]), 0) for i in val])
    best, wait, weights = np.inf, 0, None
    for _ in range(max_epochs):
        head.fit(x, y, batch_size=HEAD_SETTINGS["batch_size"], epochs=1, verbose=0)
        if stopping is None:
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


def main(argv=None):
    import tempfile

    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_own_tags_") as work:
        if args.tiny:
            args.records, args.from_model = tiny_setting(work, args.width)
        measure(args)


def measure(args):
    """Every head of HEADS over the draws; their lines and the ratio lines."""
    body = Body(args.from_model)
    clips, labels, tags = pooled(body, args.records)
    print(f"{len(clips)} files, {len(tags)} tags; {args.draws} draws of {args.per_tag} "
          "labelled files a tag (80/10/10), the rest held out", flush=True)
    means = []
    for label, units, stopping in HEADS:
        figures, start = [], time.perf_counter()
        for seed in range(args.draws):
            train, val, _, held = draw(labels, args.per_tag, seed)
            head, _ = timed(train_head, body.path, body.embedding_layer, clips, labels, train,
                            val, units, stopping, seed, args.max_epochs)
            result = tag_metrics(labels[held], clip_scores(head, clips, held), tags)
            figures.append((result.roc_auc, result.pr_auc))
        roc, pr = np.array(figures).T
        means.append(roc.mean())
        print(f"{label:40s} held-out ROC-AUC {roc.mean():.4f} (lowest {roc.min():.4f})  "
              f"PR-AUC {pr.mean():.4f}  ({time.perf_counter() - start:.0f} s)", flush=True)
    print(f"ratio own_tags_heldout_roc_auc {means[0]:.4f}")  # HEADS[0]: train.py --from's
    print(f"ratio own_tags_default_of_best {means[0] / max(means):.4f}")


if __name__ == "__main__":
    main()
