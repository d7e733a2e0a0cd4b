"""Measures the figures and times the docs quote, and prints them.

    python bench/measure_docs_figures.py                  # everything
    python bench/measure_docs_figures.py demo synthetic_msd
    python bench/measure_docs_figures.py semi_supervised --seeds 1
    python bench/measure_docs_figures.py --tiny           # a check that it runs
    python bench/measure_docs_figures.py --table --keep LOGS   # docs/performance.md's table
    python bench/measure_docs_figures.py --from-logs LOGS      # the same table, nothing run
    python bench/measure_docs_figures.py --from-logs LOGS --column KIND  # into the page

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

The table of docs/performance.md. `ROWS` lists each figure a user reads
there: what it is, the `ratio` line it reads, its goal and the command that
measures it. `--table` runs each row's command once (a command that gives
several rows runs once for all of them), keeps its output in
`<DIR>/<command as a file name>.log` (`--keep DIR`, else a temporary
folder) and prints the table in Markdown: the date, the machine line every
bench starts with, and each row's figure. `--from-logs DIR` builds the same
table from the logs of such a run, or of the commands run by hand with
their output saved under those names (`log_name`), without running
anything. A row whose ratio is not in its command's log says `not
measured`; one printed as `disturbed NAME VALUE (why)` shows its value and
why. `--gpu` takes the rows measured on a GPU machine instead of the CPU
rows. The page's CPU table has a column of figures per machine kind:
`--column KIND` (with `--table`, after printing its table, or
`--from-logs`, instead) writes the run's figures into that column of
`--page` (docs/performance.md), each cell `FIGURE, DATE`; a row whose
command left no log keeps its cell. To add a figure, add its row to `ROWS`,
then to each table of docs/performance.md (tests/test_performance_page.py
checks that they agree).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import bench.common  # noqa: E402,F401  (prints the machine line)
from tagger.fileio import write_atomic  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.path.join(ROOT, "docs", "performance.md")


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


SEEDS = 2  # the semi-supervised demo's default
MEASURES = {"demo": measure_demo, "synthetic_msd": measure_synthetic_msd,
            "semi_supervised": measure_semi_supervised}
# --tiny: each command's flags for a quick run (seconds to a minute on 2 cores)
TINY = {"demo": ("--clips", "24", "--seconds", "3", "--epochs", "1", "--width", "0.0625",
                 "--workers", "1"),
        "synthetic_msd": ("--tracks", "40", "--seconds", "3", "--workers", "1"),
        "semi_supervised": ("--clips", "24", "--seconds", "3", "--teacher-epochs", "1",
                            "--student-epochs", "1", "--workers", "1")}


class Row(NamedTuple):
    """One figure of docs/performance.md's table."""

    what: str  # in words, unique among the rows
    ratio: str  # the name of the `ratio NAME VALUE` line it reads
    goal: str  # in words or as a comparison
    command: str  # what measures it, from the repository root
    gpu: bool = False  # measured on a GPU machine: the GPU table's row


# bench_models.py's DEFAULT_FAMILIES (a test checks)
MODEL_FAMILIES = ("samplecnn", "multiscale", "self_attention", "transformer", "musicnn",
                  "pons_musicnn", "pons_vgg")
# the families bench_peer.py trains beside the original implementations
# (its --peer-dir: a clone of minzwon/sota-music-tagging-models; a test checks)
PEER_FAMILIES = ("fcn", "musicnn", "crnn", "sample_level", "sample_level_se", "short_cnn",
                 "short_res", "cnnsa", "hcnn")
ACCELERATOR_FAMILIES = ("samplecnn", "transformer")


def per_family(families, what: str, ratio: str, goal: str, command: str, gpu: bool = False):
    """A row for each of `families`, `{family}` in `what` and `ratio` replaced."""
    return [Row(what.format(family=family), ratio.format(family=family), goal, command, gpu)
            for family in families]


MODELS = "python bench/bench_models.py"
MODELS_JAX = "python bench/bench_models.py --backend jax --no-bf16 --no-jit --repeat 3"
TAG = "python bench/bench_tag.py"
LIBRARY = "python bench/bench_library.py --files 300 --minutes 4 4 --songs 12 --engine"
ACCELERATOR = "python bench/bench_accelerator.py"
GPU_JAX = "python bench/bench_gpu_jax.py --epochs 3"
ROWS = [
    Row("Builder over the decode floor, 1 worker", "builder_floor", "0.9 or more",
        "python bench/bench_build.py"),
    Row("Builder, 2 workers over 1", "builder_2w", "1.8 or more", "python bench/bench_build.py"),
    Row("Training reader, int16 windows, segments/s", "reader_segments_per_s_int16",
        "5000 or more", "python bench/bench_reader.py"),
    Row("Training reader over bare reading, int16", "reader_bare_int16", "0.8 or more",
        "python bench/bench_reader.py"),
    Row("Training reader without TensorFlow, segments/s", "reader_segments_per_s_no_tf",
        "what training consumes", "python bench/bench_reader.py"),
    *per_family(MODEL_FAMILIES, "Training MFU, float32: {family}", "mfu_train_{family}",
                "0.6 or more", MODELS),
    *per_family(MODEL_FAMILIES, "Training MFU with XLA: {family}", "mfu_train_{family}_xla",
                "above float32's without XLA", MODELS),
    *per_family(MODEL_FAMILIES, "Training bfloat16 over float32: {family}",
                "train_bf16_speedup_{family}",
                "2 or more with AMX; 0.8 of the products' bf16/f32 with AVX-512 BF16", MODELS),
    *per_family(MODEL_FAMILIES, "Training, JAX over TensorFlow: {family}",
                "train_jax_speedup_{family}", "0.5 or more", MODELS_JAX),
    *per_family(MODEL_FAMILIES, "Training, JAX's peak memory over TensorFlow's: {family}",
                "train_jax_peak_memory_{family}", "1.3 or less", MODELS_JAX),
    *[Row(f"Tagging MTT_musicnn, end to end, x real time: {engine}",
          f"tag_realtime_mtt_musicnn_{engine.replace('-', '_')}", "100 or more", TAG)
      for engine in ("keras", "keras-bf16", "tflite-int8")],
    Row("Tagging MTT_musicnn, keras-bf16 over keras, model only",
        "tag_model_of_keras_mtt_musicnn_keras_bf16", "above 1", TAG),
    Row("Tagging MTT_musicnn, fastest engine keeping 0.9 of the top 5, over keras",
        "tag_fastest_of_keras_mtt_musicnn", "2 or more", TAG),
    *[Row(f"Tagging SE+multi, end to end, x real time: {engine}",
          f"tag_realtime_samplecnn_{engine.replace('-', '_')}", "100 or more", TAG)
      for engine in ("keras", "tflite-int8")],
    Row("Library, files of 4 minutes an hour: keras", "library_files_per_hour", "8000 or more",
        f"{LIBRARY} keras"),
    Row("Library, files of 4 minutes an hour: tflite-int8", "library_files_per_hour",
        "20000 or more", f"{LIBRARY} tflite-int8"),
    Row("Teacher's targets filled, over tag.py's keras engine", "store_fill_of_tag_keras_targets",
        "0.8 or more", "python bench/bench_stores.py"),
    Row("Embeddings filled, over tag.py's keras engine", "store_fill_of_tag_keras_embeddings",
        "0.8 or more", "python bench/bench_stores.py"),
    Row("Serving over tag.py, throughput", "serve_tag_throughput", "0.8 or more",
        "python bench/bench_serve.py"),
    Row("Demo, seconds", "demo_seconds", "none set", "python bench/measure_docs_figures.py demo"),
    Row("Demo, test macro ROC-AUC", "demo_test_roc_auc", "none set",
        "python bench/measure_docs_figures.py demo"),
    Row("Demo, test macro PR-AUC", "demo_test_pr_auc", "none set",
        "python bench/measure_docs_figures.py demo"),
    Row("Synthetic MSD, seconds", "synthetic_msd_seconds", "none set",
        "python bench/measure_docs_figures.py synthetic_msd"),
    Row("Semi-supervised demo, seconds", "semi_supervised_seconds", "none set",
        "python bench/measure_docs_figures.py semi_supervised"),
    *[Row(f"Training {family}, our step over the original's, {backend}",
          f"peer_train_{family}_{backend}", "1 or more",
          "python bench/bench_peer.py --peer-dir CLONE")
      for family in PEER_FAMILIES for backend in ("tf", "jax")],
    # on a GPU machine
    *per_family(ACCELERATOR_FAMILIES, "GPU training MFU, TensorFlow float32: {family}",
                "gpu_train_mfu_f32_{family}", "none set", ACCELERATOR, gpu=True),
    *per_family(ACCELERATOR_FAMILIES, "GPU training, bfloat16 over float32, TensorFlow: {family}",
                "gpu_train_bf16_speedup_{family}", "above 1", ACCELERATOR, gpu=True),
    *per_family(ACCELERATOR_FAMILIES, "GPU training, XLA over float32, TensorFlow: {family}",
                "gpu_train_xla_speedup_{family}", "above 1", ACCELERATOR, gpu=True),
    *per_family(ACCELERATOR_FAMILIES, "GPU training steps/s, JAX float32: {family}",
                "gpu_jax_train_steps_per_s_f32_{family}", "none set",
                f"{ACCELERATOR} --backend jax", gpu=True),
    *per_family(ACCELERATOR_FAMILIES, "GPU training, bfloat16 over float32, JAX: {family}",
                "gpu_jax_train_bf16_speedup_{family}", "above 1", f"{ACCELERATOR} --backend jax",
                gpu=True),
    Row("GPU machine's reader without TensorFlow, segments/s", "gpu_reader_segments_per_s_no_tf",
        "what training consumes", GPU_JAX, gpu=True),
    *per_family(ACCELERATOR_FAMILIES, "GPU train.py --quick, JAX, 3 epochs, seconds: {family}",
                "gpu_jax_quick_seconds_{family}", "none set", GPU_JAX, gpu=True),
    *per_family(ACCELERATOR_FAMILIES, "GPU training's wait for input, share: {family}",
                "gpu_input_wait_share_{family}", "under 0.05", GPU_JAX, gpu=True),
    *per_family(ACCELERATOR_FAMILIES, "GPU training MFU, JAX bfloat16, best batch: {family}",
                "gpu_jax_scan_best_mfu_{family}", "none set", GPU_JAX, gpu=True),
    *per_family(ACCELERATOR_FAMILIES, "GPU training, JAX bfloat16, best batch, steps/s over "
                "the roofline bound (`bench_roofline.py`): {family}",
                "gpu_jax_scan_best_of_roofline_{family}", "0.5 or more", GPU_JAX, gpu=True),
]
FIGURE = re.compile(r"(ratio|disturbed) (\S+) (\S+)(?: \((.*)\))?")
NOT_MEASURED = "not measured"


def log_name(command: str) -> str:
    """The file name of `command`'s output: 'bench_build.log' for `python
    bench/bench_build.py`, its flags joined in."""
    words = [word for word in shlex.split(command)[1:] if word != "bench/measure_docs_figures.py"]
    words = [os.path.basename(word).removesuffix(".py") for word in words]
    return re.sub(r"[^A-Za-z0-9.]+", "_", "_".join(words)).strip("_") + ".log"


def figures_in(text: str) -> dict:
    """{name: its figure as printed} of the `ratio NAME VALUE` lines of a
    bench's output, and 'VALUE (disturbed: why)' of its `disturbed NAME
    VALUE (why)` lines."""
    found = {}
    for line in text.splitlines():
        match = FIGURE.fullmatch(line.strip())
        if match:
            kind, name, value, why = match.groups()
            found[name] = value if kind == "ratio" else f"{value} (disturbed: {why or '?'})"
    return found


def machine_of(text: str) -> str | None:
    """The machine line (`bench/common.py`'s) a bench's output starts with."""
    return next((line for line in text.splitlines() if line.startswith("CPU: ")), None)


def figures_from_logs(folder: str, rows) -> tuple[list, list]:
    """([the machine lines], [(figure or None, its log's UTC date) of each
    of `rows`]) from the logs in `folder` (`log_name`)."""
    logs = {}
    for command in dict.fromkeys(row.command for row in rows):
        path = os.path.join(folder, log_name(command))
        if os.path.exists(path):
            date = datetime.datetime.fromtimestamp(os.path.getmtime(path), datetime.timezone.utc)
            with open(path, errors="replace") as log:
                logs[command] = (log.read(), date.strftime("%Y-%m-%d"))
    machines = list(dict.fromkeys(filter(None, (machine_of(text) for text, _ in logs.values()))))
    figures = []
    for row in rows:
        text, date = logs.get(row.command, ("", None))
        figures.append((figures_in(text).get(row.ratio), date))
    return machines, figures


def measured_line(machines, figures) -> str:
    """The line above a table: its dates and machines."""
    dates = sorted({date for figure, date in figures if figure}) or ["never"]
    return (f"Measured {' to '.join(dict.fromkeys((dates[0], dates[-1])))} (UTC) "
            f"on `{'`, `'.join(machines) or 'no machine named'}`, with `python "
            f"bench/measure_docs_figures.py --table`.")


def table_from_logs(folder: str, rows=None) -> str:
    """The Markdown table of `rows` (default: the CPU rows of ROWS) from the
    logs in `folder`, each row's figure from its command's log (`log_name`),
    its date the log's (UTC): the date and machine line first."""
    rows = [row for row in ROWS if not row.gpu] if rows is None else rows
    machines, figures = figures_from_logs(folder, rows)
    lines = [measured_line(machines, figures), "",
             "| what | figure | goal | date | command |", "| --- | --- | --- | --- | --- |"]
    for row, (figure, date) in zip(rows, figures):
        what, command = row_cells(row)
        lines.append(f"| {what} | {figure or NOT_MEASURED} | {row.goal} | "
                     f"{date if figure else '-'} | {command} |")
    return "\n".join(lines)


def column_cell(figure: str | None, date: str | None) -> str:
    """A machine column's cell of the CPU table: `FIGURE, DATE`, or `not measured`."""
    return f"{figure}, {date}" if figure else NOT_MEASURED


def table_head(lines) -> tuple[int, list]:
    """(index, cells) of the header line of the CPU table (`| what | goal |`)
    among a page's `lines`; raises ValueError where there is none."""
    head = next((i for i, line in enumerate(lines) if line.startswith("| what | goal |")), None)
    if head is None:
        raise ValueError("the page has no table headed '| what | goal |'")
    return head, [cell.strip() for cell in lines[head].strip().strip("|").split(" | ")]


def with_column(page: str, kind: str, rows, cells) -> str:
    """`page` (docs/performance.md's text) with the column `kind` of its CPU
    table (the one headed `| what | goal |`) holding `cells`, one per row
    of `rows` (None: the cell as it is); raises ValueError where the table
    has no such column or its rows are not `rows`."""
    lines = page.split("\n")
    head, columns = table_head(lines)
    if kind not in columns[2:-1]:
        raise ValueError(f"the table has no column {kind!r}; its machine kinds: "
                         f"{', '.join(map(repr, columns[2:-1]))}")
    index = columns.index(kind)
    body = range(head + 2, head + 2 + len(rows))
    for i, row, cell in zip(body, rows, cells):
        found = ([part.strip() for part in lines[i].strip().strip("|").split(" | ")]
                 if i < len(lines) else [])
        if len(found) != len(columns) or (found[0], found[-1]) != row_cells(row):
            raise ValueError(f"line {i + 1} of the page is not the row of {row.ratio!r} "
                             "(the table's rows are ROWS', in its order)")
        if cell is not None:
            found[index] = cell
        lines[i] = f"| {' | '.join(found)} |"
    return "\n".join(lines)


def write_column(page_path: str, kind: str, folder: str, rows) -> str:
    """Writes the figures of the logs in `folder` into column `kind` of
    `page_path`'s CPU table; returns the line naming their dates and machines."""
    machines, figures = figures_from_logs(folder, rows)
    with open(page_path, encoding="utf-8") as page:
        text = page.read()
    try:
        # a row whose command left no log keeps its cell: that command did not run
        text = with_column(text, kind, rows, [column_cell(*pair) if pair[1] else None
                                              for pair in figures])
    except ValueError as error:
        raise SystemExit(f"measure_docs_figures.py: {page_path}: {error}") from None
    write_atomic(page_path, text)
    return measured_line(machines, figures)


def row_cells(row: Row) -> tuple[str, str]:
    """The 'what' and 'command' cells of `row` in the table."""
    return f"{row.what} (`{row.ratio}`)", f"`{row.command}`"


def run_logged(command: str, folder: str, peer_dir: str | None = None) -> int:
    """Runs `command` (its `python`: this interpreter; its `CLONE`:
    `peer_dir`) from the repository root, its output to its log in
    `folder`; its exit status."""
    argv = [peer_dir if word == "CLONE" else word for word in shlex.split(command)]
    argv[0] = sys.executable if argv[0] == "python" else argv[0]
    with open(os.path.join(folder, log_name(command)), "w") as log:
        return subprocess.run(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode


def measure_table(folder: str, rows, peer_dir: str | None = None) -> str:
    """Runs each command of `rows` once, in turn, its output kept in
    `folder`, and returns their table; a command that fails is named on
    standard error and its rows read what it printed before failing. The
    commands that take the original code (`CLONE`) run on `peer_dir`, or
    are left out without it, which standard error says."""
    for command in dict.fromkeys(row.command for row in rows):
        if "CLONE" in command.split() and not peer_dir:
            print(f"not running {command}: give --peer-dir", file=sys.stderr, flush=True)
            continue
        print(f"running {command}", file=sys.stderr, flush=True)
        code = run_logged(command, folder, peer_dir)
        if code:
            print(f"{command} failed ({code}); see {os.path.join(folder, log_name(command))}",
                  file=sys.stderr, flush=True)
    return table_from_logs(folder, rows)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", nargs="*", metavar="WHAT",
                   help=f"what to measure, any of {', '.join(MEASURES)} (default: all)")
    p.add_argument("--seeds", type=int, default=None,
                   help=f"semi_supervised: seeds (default: {SEEDS}, the demo's default)")
    p.add_argument("--tiny", action="store_true",
                   help="each command on a few clips for one epoch: checks that this script "
                        "runs (its figures mean nothing)")
    p.add_argument("--keep", metavar="DIR", default=None,
                   help="work in DIR and keep it (default: a temporary folder, removed); "
                        "with --table, the commands' logs")
    p.add_argument("--table", action="store_true",
                   help="run each command of docs/performance.md's table once and print the "
                        "table")
    p.add_argument("--from-logs", metavar="DIR", default=None,
                   help="print docs/performance.md's table from the logs of a --table run in "
                        "DIR, running nothing")
    p.add_argument("--gpu", action="store_true",
                   help="with --table or --from-logs: the rows measured on a GPU machine")
    p.add_argument("--column", metavar="KIND", default=None,
                   help="with --table or --from-logs: write the figures into column KIND "
                        "(a machine kind) of --page's CPU table; the rows of commands that "
                        "left no log keep their cells")
    p.add_argument("--page", metavar="PATH", default=None,
                   help="with --column: the page whose table it writes (default: "
                        "docs/performance.md)")
    p.add_argument("--peer-dir", metavar="CLONE", default=None,
                   help="with --table: the original zoo's code, for bench_peer.py's rows "
                        "(without it those rows are not run)")
    args = p.parse_args(argv)
    if args.table and args.from_logs:
        p.error("--table runs the commands and --from-logs reads their logs: give one")
    if (args.table or args.from_logs) and (args.what or args.tiny):
        p.error("--table and --from-logs make the whole table: give no WHAT and no --tiny")
    if args.gpu and not (args.table or args.from_logs):
        p.error("--gpu chooses the table's rows: give it with --table or --from-logs")
    if args.column is not None and not (args.table or args.from_logs):
        p.error("--column writes a --table or --from-logs run's figures: give one of them")
    if args.column is not None and args.gpu:
        p.error("--column writes the CPU table's column; the GPU table is printed")
    if args.page is not None and args.column is None:
        p.error("--page is the page --column writes: give --column")
    args.page = args.page or PAGE
    if args.column is not None and not os.path.isfile(args.page):
        p.error(f"--page expects the performance page; {args.page!r} is not a file")
    if args.column is not None:  # before a --table run's hours
        with open(args.page, encoding="utf-8") as page:
            try:
                kinds = table_head(page.read().split("\n"))[1][2:-1]
            except ValueError as error:
                p.error(f"--page {args.page}: {error}")
        if args.column not in kinds:
            p.error(f"--column {args.column!r} is not a column of {args.page}'s table; its "
                    f"machine kinds: {', '.join(map(repr, kinds))}")
    if args.peer_dir and not args.table:
        p.error("--peer-dir is for the commands --table runs: give it with --table")
    if args.from_logs and args.keep:
        p.error("--from-logs reads a folder and writes none: --keep does not apply")
    if args.seeds is not None and (args.table or args.from_logs):
        p.error("--seeds sets the semi_supervised measure's seeds: not with --table or "
                "--from-logs")
    if args.from_logs and not os.path.isdir(args.from_logs):
        p.error(f"--from-logs expects a folder of logs; {args.from_logs!r} is not one")
    unknown = [name for name in args.what if name not in MEASURES]
    if unknown:
        p.error(f"nothing to measure is called {', '.join(map(repr, unknown))}; "
                f"choose from {', '.join(MEASURES)}")
    args.what = args.what or list(MEASURES)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    rows = [row for row in ROWS if row.gpu == args.gpu]
    if args.from_logs:
        print(write_column(args.page, args.column, args.from_logs, rows) if args.column
              else table_from_logs(args.from_logs, rows))
        return 0
    with tempfile.TemporaryDirectory(prefix="docs-figures-") as temporary:
        work = args.keep or temporary
        os.makedirs(work, exist_ok=True)
        if args.table:
            print(measure_table(work, rows, args.peer_dir), flush=True)
            if args.column:
                print(write_column(args.page, args.column, work, rows))
            return 0
        for name in args.what:
            flags = TINY[name] if args.tiny else ()
            if name == "semi_supervised":
                flags = ("--seeds", str(SEEDS if args.seeds is None else args.seeds), *flags)
            MEASURES[name](work, flags)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
