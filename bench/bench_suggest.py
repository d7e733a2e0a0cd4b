"""Whether the files train.py --from --suggest picks teach the tagger more
than files drawn at random, for as many labels, on real music.

    python bench/bench_suggest.py RECORDS [--from MTT_musicnn] [--budgets 5 10 20 40]
        [--seeds 3] [--start 2] [--round 10] [--json RESULTS]
    python bench/bench_suggest.py --tiny    # tones and an untrained body: the suite's run

RECORDS: records of a folder whose every file is labelled (e.g. one tag
per soundtrack, build_folder.py --labels-from folders), all splits pooled
(bench_own_tags_heads.pooled). Labelling is simulated, for each seed:

1. a quarter of each tag's files are held out, never offered to label:
   the measure; the other files are the pool, as unlabelled to begin with;
2. `--start` files of each tag, drawn at random from the pool, are
   labelled first (a user labels a few of each tag to begin with);
3. random: the start grows with files of the pool drawn at random;
   suggested: it grows in rounds of `--round` files, each round the head
   trained on the files labelled so far and the next files those
   `suggest.choose` picks from the pool's unlabelled ones (train.py
   --suggest's choice: the head's clip scores, the clips' mean
   embeddings, those of the labelled files);
4. a budget B labels B x tags files in all (B a tag on average), the
   start at least and the pool at most (the output names a budget
   capped); at each, the head is trained on the files labelled as
   train.py --from trains it (split 80/10/10 into train, val and test as
   build_folder.py splits them, the val files joined to the training
   ones for 20 epochs: bench_own_tags_heads.train_head) and scored on the held-out files
   (macro ROC-AUC of the clip scores), and on every file not labelled
   (held-out and the pool's rest: a choice that labels the hard files
   leaves the easy ones to this measure, so it flatters the suggestion).

Ratio lines, means over the seeds: `suggest_over_random_roc_auc_<B>` (held
out) and `suggest_over_random_roc_auc_unlabelled_<B>` (every file not
labelled). `--json` writes each seed's figures (docs/make_suggest_figure.py
draws them). `--tiny` makes records of two folders of tones and an
untrained package Musicnn as the body, in a temporary folder.
"""

from __future__ import annotations

import json
import time

import numpy as np
from bench_own_tags_heads import (
    DEFAULT,
    clip_scores,
    draw,
    parsed,
    pooled,
    records_parser,
    tiny_setting,
    train_head,
)

from tagger.config import PretrainedConfig
from tagger.datasets.folder import FolderSettings, split_rows
from tagger.evaluation.metrics import tag_metrics
from tagger.training.pretrained_body import Body
from tagger.training.suggest import choose

HELD_OUT = 0.25  # of each tag's files: the measure
CHOICES = ("random", "suggested")
HEAD_UNITS = PretrainedConfig().head_units  # train.py --from's head


def parse_args(argv=None):
    p = records_parser(__doc__.splitlines()[0], "an untrained body")
    p.add_argument("--budgets", type=int, nargs="+", default=[5, 10, 20, 40],
                   help="labelled files a tag on average (default: 5 10 20 40)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--start", type=int, default=2,
                   help="files of each tag labelled at random to begin with (default: 2)")
    p.add_argument("--round", type=int, default=10,
                   help="files suggested a round, the head trained again after each")
    p.add_argument("--max-epochs", type=int, default=None,
                   help="epochs per head (default: train.py --from's, 20)")
    p.add_argument("--json", default=None, help="write each seed's figures to this file")
    args = parsed(p, argv)
    if min(args.budgets) < 1 or args.seeds < 1 or args.start < 1 or args.round < 1:
        p.error("--budgets, --seeds, --start and --round take positive counts")
    return args


def held_out(labels, rng) -> list:
    """HELD_OUT of each tag's files, drawn with `rng`: the measure."""
    held = set()
    for tag in range(labels.shape[1]):
        files = np.flatnonzero(labels[:, tag] == 1)
        held.update(rng.permutation(files)[:round(HELD_OUT * len(files))].tolist())
    return sorted(held)


def split(labelled, seed: int) -> tuple:
    """(train, val) of the labelled files, split as build_folder.py splits
    them (80/10/10, `split_rows`; the test tenth labelled, not trained on)."""
    rows = split_rows([str(i) for i in labelled], FolderSettings(seed=seed), what=None)
    return [labelled[i] for i in rows["train"]], [labelled[i] for i in rows["val"]]


class Simulation:
    """One seed's labelling: the held-out files, the pool, the start."""

    def __init__(self, body, clips, labels, tags, args, seed: int):
        self.body, self.clips, self.labels, self.tags, self.args = body, clips, labels, tags, args
        self.seed, self.rng = seed, np.random.default_rng(seed)
        self.held = held_out(labels, self.rng)
        self.pool = sorted(set(range(len(clips))) - set(self.held))
        start = draw(labels[self.pool], args.start, seed)
        self.start = [self.pool[i] for part in start[:3] for i in part]
        self.means = np.stack([c.mean(axis=0) for c in clips])  # (clips, dim)

    def head(self, labelled):
        train, val = split(labelled, self.seed)
        return train_head([self.body], self.clips, self.labels, train, val, HEAD_UNITS,
                          DEFAULT[2], self.seed, self.args.max_epochs)

    def figures(self, head, labelled) -> tuple:
        """(held-out ROC-AUC, ROC-AUC of every file not labelled)."""
        rest = sorted(set(range(len(self.clips))) - set(labelled))
        scores = clip_scores(head, self.clips, rest)
        held = np.isin(rest, self.held)
        return (tag_metrics(self.labels[self.held], scores[held], self.tags).roc_auc,
                tag_metrics(self.labels[rest], scores, self.tags).roc_auc)

    def random(self, totals) -> list:
        start = set(self.start)
        others = [i for i in self.rng.permutation(self.pool) if i not in start]
        return [self.figures(self.head(labelled), labelled)
                for labelled in (self.start + others[:total - len(self.start)]
                                 for total in totals)]

    def suggested(self, totals) -> list:
        labelled, found = list(self.start), []
        head = self.head(labelled)
        for total in totals:
            while len(labelled) < total:
                done = set(labelled)
                left = [i for i in self.pool if i not in done]
                picks = choose(clip_scores(head, self.clips, left), self.means[left],
                               min(self.args.round, total - len(labelled)),
                               self.means[labelled])
                labelled += [left[i] for i in picks]
                head = self.head(labelled)
            found.append(self.figures(head, labelled))
        return found


def main(argv=None):
    import tempfile

    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_suggest_") as work:
        if args.tiny:
            args.records, args.from_model, _ = tiny_setting(work, args.width)
        measure(args)


def measure(args):
    """Random and suggested labels at each budget over the seeds; their
    lines and the ratio lines."""
    body = Body(args.from_model)
    clips, labels, tags = pooled([body], args.records)
    first = Simulation(body, clips, labels, tags, args, 0)
    pool, start = len(first.pool), len(first.start)
    if not split(first.start, 0)[1]:
        raise SystemExit(f"--start {args.start} labels {start} files to begin with, too few "
                         "for build_folder.py's split to give val one; start with more")
    totals = [min(max(b * len(tags), start), pool) for b in args.budgets]
    print(f"{len(clips)} files, {len(tags)} tags; {args.seeds} seed(s), each holding out "
          f"{len(first.held)} files ({HELD_OUT:.0%} of each tag's) and labelling {start} of "
          f"the other {pool} at random to start ({args.start} a tag), then more at random or "
          f"suggested in rounds of {args.round}", flush=True)
    for budget, total in zip(args.budgets, totals):
        if total != budget * len(tags):
            print(f"budget {budget} a tag: {budget * len(tags)} files asked, {total} labelled "
                  f"({'the start' if total == start else 'every file of the pool'})")
    results = {choice: [] for choice in CHOICES}  # choice -> per seed (budgets, 2)
    for seed in range(args.seeds):
        sim = first if seed == 0 else Simulation(body, clips, labels, tags, args, seed)
        for choice in CHOICES:
            begun = time.perf_counter()
            results[choice].append(getattr(sim, choice)(totals))
            print(f"seed {seed} {choice:9s} held-out ROC-AUC "
                  + " ".join(f"{r[0]:.4f}" for r in results[choice][-1])
                  + f"  ({time.perf_counter() - begun:.0f} s)", flush=True)
    figures = {choice: np.array(results[choice]) for choice in CHOICES}  # (seeds, budgets, 2)
    print(f"{'labelled files a tag':22s}  {'held-out ROC-AUC':^36s}    "
          f"{'every file not labelled':^36s}")
    print(f"{'(files in all)':22s}" + f"  {'random':>17s} {'suggested':>18s}" * 2)
    for b, (budget, total) in enumerate(zip(args.budgets, totals)):
        cells = [f"{figures[c][:, b, m].mean():.4f} ± {figures[c][:, b, m].std():.4f}"
                 for m in (0, 1) for c in CHOICES]
        print(f"{f'{budget} ({total})':22s}" + "".join(f"  {cells[i]:>17s} {cells[i + 1]:>18s}"
                                                     for i in (0, 2)))
    for b, budget in enumerate(args.budgets):
        ratio = figures["suggested"][:, b].mean(axis=0) / figures["random"][:, b].mean(axis=0)
        print(f"ratio suggest_over_random_roc_auc_{budget} {ratio[0]:.4f}")
        print(f"ratio suggest_over_random_roc_auc_unlabelled_{budget} {ratio[1]:.4f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"budgets": args.budgets, "totals": totals, "files": len(clips),
                       "tags": tags, "held_out": len(first.held), "start": start,
                       "round": args.round, "seeds": args.seeds,
                       **{c: figures[c].tolist() for c in CHOICES}}, f, indent=1)


if __name__ == "__main__":
    main()
