"""Measures the figures and times the docs quote, and prints them.

    python bench/measure_docs_figures.py                  # everything
    python bench/measure_docs_figures.py demo synthetic_msd
    python bench/measure_docs_figures.py semi_supervised --seeds 1
    python bench/measure_docs_figures.py --tiny           # a check that it runs

What it runs, each in a fresh temporary folder, with the commands' defaults:

- `demo`: `demo.py` (README.md "What it costs", docs/commands/demo.md): wall
  time, size of the work folder, the test split's macro ROC-AUC and PR-AUC.
- `synthetic_msd`: `python -m tagger.commands.synthetic_msd` (docs/msd.md,
  docs/commands/synthetic_msd.md): wall time of the 300 tracks of 30 s.
- `semi_supervised`: `demo.py --semi-supervised` (docs/semi_supervised.md
  "Measured results"): the table of every seed with its intervals, the
  gains, the verdict, and the time of each teacher and student.

Every macro figure names the tags it leaves out (no positive or no negative
test clip), so a figure that drops a tag says which. The first line names
the machine: times from machines of other kinds do not compare. Each
measure ends with `ratio NAME VALUE` lines: `demo_seconds`,
`demo_test_roc_auc`, `demo_test_pr_auc`, `synthetic_msd_seconds`,
`semi_supervised_seconds`. `--tiny` runs each command on a few clips for
one epoch (`TINY`): it checks that the script runs; its figures mean
nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import bench.common  # noqa: E402,F401  (prints the machine line)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(argv, log_path: str) -> float:
    """Runs a command from the repository root; its output goes to
    `log_path`; returns the wall time in seconds (a failure ends the script)."""
    start = time.time()
    with open(log_path, "w") as log:
        done = subprocess.run([sys.executable, *argv], cwd=ROOT, stdout=log,
                              stderr=subprocess.STDOUT)
    seconds = time.time() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}); see {log_path}")
    return seconds


def folder_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(folder, name))
               for folder, _, names in os.walk(path) for name in names
               if not os.path.islink(os.path.join(folder, name)))


def excluded(tags) -> str:
    return (f"; leaves out {len(tags)} tag(s) with no positive or no negative test clip: "
            f"{', '.join(tags)}" if tags else "; every tag has positive and negative test clips")


def settings(flags) -> str:
    return f"with {' '.join(flags)}" if flags else "defaults"


def measure_demo(work: str, flags=()) -> None:
    out = os.path.join(work, "demo")
    seconds = run(["demo.py", "--work-dir", out, "--no-progress", *flags], out + ".log")
    metrics = json.load(open(os.path.join(out, "runs", "samplecnn-rese-multi",
                                          "metrics.json")))
    test = metrics["test"]
    print(f"demo.py ({settings(flags)}): {seconds / 60:.1f} minutes, "
          f"{folder_bytes(out) / 1e9:.2f} GB in its work folder; test macro ROC-AUC "
          f"{test['roc_auc']:.4f}, PR-AUC {test['pr_auc']:.4f} over "
          f"{test['evaluated_tags']} tags" + excluded(test["excluded_tags"]))
    print(f"ratio demo_seconds {seconds:.1f}")
    print(f"ratio demo_test_roc_auc {test['roc_auc']:.4f}")
    print(f"ratio demo_test_pr_auc {test['pr_auc']:.4f}", flush=True)


def measure_synthetic_msd(work: str, flags=()) -> None:
    out = os.path.join(work, "msd")
    seconds = run(["-m", "tagger.commands.synthetic_msd", out, "--no-progress", *flags],
                  out + ".log")
    print(f"synthetic_msd ({settings(flags) if flags else 'defaults: 300 tracks of 30 s'}): "
          f"{seconds / 60:.1f} minutes")
    print(f"ratio synthetic_msd_seconds {seconds:.1f}", flush=True)


def measure_semi_supervised(work: str, flags=()) -> None:
    from tagger.evaluation.evaluate import evaluate

    out = os.path.join(work, "semi")
    seconds = run(["demo.py", "--semi-supervised", "--work-dir", out, "--no-progress", *flags],
                  out + ".log")
    with open(out + ".log") as log:
        lines = log.read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("test split"))
    print(f"demo.py --semi-supervised ({settings(flags)}): "
          f"{seconds / 60:.1f} minutes; its table:", flush=True)
    for line in lines[start:]:
        print(f"  {line}")
    summary = json.load(open(os.path.join(out, "semi_supervised", "results.json")))
    runs = os.path.join(out, "semi_supervised", "runs")
    for name in sorted(os.listdir(runs)):
        history = os.path.join(runs, name, "history.csv")
        if os.path.exists(history):
            import csv

            rows = list(csv.DictReader(open(history)))
            total = sum(float(r["seconds"]) for r in rows)
            print(f"  {name}: {len(rows)} epochs, {total / 60:.1f} minutes of training "
                  f"({total / max(1, len(rows)):.0f} s per epoch)")
    records = os.path.join(out, "semi_supervised", "tfrecord")
    teacher = summary["models"][0]["run"]
    result = evaluate(os.path.join(teacher, "model.keras"), records, "test", bootstrap=0)
    print(f"  every figure above is over {len(result.metrics.per_tag)} tags"
          + excluded(result.metrics.excluded))
    print(f"ratio semi_supervised_seconds {seconds:.1f}", flush=True)


MEASURES = {"demo": measure_demo, "synthetic_msd": measure_synthetic_msd,
            "semi_supervised": measure_semi_supervised}
# --tiny: each command's flags for a quick run (seconds to a minute on 2 cores)
TINY = {"demo": ("--clips", "24", "--seconds", "3", "--epochs", "1", "--width", "0.0625",
                 "--workers", "1"),
        "synthetic_msd": ("--tracks", "40", "--seconds", "3", "--workers", "1"),
        "semi_supervised": ("--clips", "24", "--seconds", "3", "--teacher-epochs", "1",
                            "--student-epochs", "1", "--workers", "1")}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", nargs="*", metavar="WHAT",
                   help=f"what to measure, any of {', '.join(MEASURES)} (default: all)")
    p.add_argument("--seeds", type=int, default=2,
                   help="semi_supervised: seeds (default: 2, the demo's default)")
    p.add_argument("--tiny", action="store_true",
                   help="each command on a few clips for one epoch: checks that this script "
                        "runs (its figures mean nothing)")
    p.add_argument("--keep", metavar="DIR", default=None,
                   help="work in DIR and keep it (default: a temporary folder, removed)")
    args = p.parse_args(argv)
    unknown = [name for name in args.what if name not in MEASURES]
    if unknown:
        p.error(f"nothing to measure is called {', '.join(map(repr, unknown))}; "
                f"choose from {', '.join(MEASURES)}")
    args.what = args.what or list(MEASURES)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="docs-figures-") as temporary:
        work = args.keep or temporary
        os.makedirs(work, exist_ok=True)
        for name in args.what:
            flags = TINY[name] if args.tiny else ()
            if name == "semi_supervised":
                flags = ("--seeds", str(args.seeds), *flags)
            MEASURES[name](work, flags)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
