"""Training on an accelerator: the sample-level CNN's and the transformer's
training steps in float32, bfloat16 and with XLA, and train.py --quick end
to end, in one run of at most about 8 minutes.

What it prints, each figure as soon as it is measured:
  - the machine: the CPU (first, as every bench), the GPU TensorFlow sees
    (its name and compute capability, and nvidia-smi's line where there is
    one) or one line saying that none is visible and that it runs on the CPU,
    then the TensorFlow and Keras versions;
  - the float32 and bfloat16 matrix-product peaks (bench/flops.py; on an
    NVIDIA GPU from Ampere on, float32 products and convolutions run as TF32,
    TensorFlow's default), and `ratio gpu_matmul_bf16_over_f32`;
  - bench_models.py's measurement of the two families at their bench size
    (SE+multi at batch 23, the teacher transformer at batch 16), each in a
    process of its own, in float32, in bfloat16 (`train.py
    --mixed-precision bfloat16`'s Keras policy) and float32 with XLA:
    training steps/s and MFU (a step counted as three forward passes, against
    the peak of its compute type), as `ratio gpu_train_steps_per_s_<config>_<family>`,
    `gpu_train_mfu_<config>_<family>` (config f32, bf16, xla) and
    `gpu_train_bf16_speedup_<family>`, `gpu_train_xla_speedup_<family>`
    (steps/s over float32's);
  - `train.py --quick --strategy default` of both families on the embedded
    synthetic dataset (made and built first, in the work folder): its wall
    time, its fastest epoch (validation included), the training steps per
    second of that epoch and the test split's macro ROC-AUC, as `ratio
    gpu_quick_seconds_<family>`, `gpu_quick_epoch_seconds_<family>`,
    `gpu_quick_steps_per_s_<family>`, `gpu_quick_test_roc_auc_<family>`.

Every measurement and command (a part) runs in a process of its own, killed
at its time limit (a tiny run's measurements without one run in this
process: at the tests' size they have no memory to give back); the run
starts no part once `--budget-s` is spent, and says what it left out. A
part that fails prints the end of its log, and the run ends with exit
status 1. Everything is written in a temporary folder (or `--out`, kept).
`--tiny` runs each kind of part once at the tests' size (tiny models, one
timed step, small matrix products, a few short clips, one short epoch; the
suite runs it on the CPU): SE+multi in each config, the transformer in
float32 and its quick run. It checks that the script runs; its figures
mean nothing.
A tiny run has no budget and its parts no time limit, unless `--budget-s`
is given: its size is its step counts, so a busy machine makes it slower,
never shorter.

The machine needs requirements.txt and, for the GPU, an NVIDIA driver and
TensorFlow's CUDA libraries: on Linux `pip install 'tensorflow[and-cuda]'`
(the plain tensorflow wheel sees a GPU only where CUDA and cuDNN are
installed system-wide). On a machine whose GPU only JAX can drive,
`--backend jax` measures the same models' training steps under Keras's JAX
backend (float32 and bfloat16; no quick runs: bench/accelerator_jax.py),
in this process, the budget checked before each family (with `--tiny`,
SE+multi in both, the transformer in float32).
Run from the repository root:
    python bench/bench_accelerator.py [--budget-s 420] [--steps 50] [--out DIR] [--tiny]
                                      [--backend tensorflow|jax]
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from bench_models import TINY_MATMUL, measure, measure_in_a_process
from common import gpu_memory_as_needed, tiny_case
from flops import MATMUL_SIZES, TRAIN_FORWARD_RATIO, matmul_flops_per_second

from tagger.cli import positive_float, positive_int

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FAMILIES = ("samplecnn", "transformer")
CONFIGS = (("f32", "float32", False), ("bf16", "bfloat16", False), ("xla", "float32", True))
# --tiny: each kind of part once, {family: its configs}, and the families of the quick runs
TINY_CONFIGS = {"samplecnn": ("f32", "bf16", "xla"), "transformer": ("f32",)}
TINY_QUICK_FAMILIES = ("transformer",)
GPU_MATMUL_SIZES = (8192, 16384)  # a GPU's peak needs larger products than a CPU's
# Each part's time limit in seconds, cut to what is left of the budget; a
# part is not started with less than MIN_PART_S left.
MEASURE_LIMIT_S, DATA_LIMIT_S, TRAIN_LIMIT_S, MIN_PART_S = 120, 120, 180, 10
# The synthetic dataset of the quick runs: (clips, seconds); 11 s holds one
# 4-segment transformer window.
QUICK_DATA = {False: (200, 29.1), True: (32, 11)}
TINY_TRAIN_FLAGS = ("--steps-per-epoch", "2", "--max-epochs-per-stage", "1",
                    "--validation-steps", "1")
TINY_FAMILY_FLAGS = {"samplecnn": ("--width", "0.0625"),
                     "transformer": ("--conv-ndim", "4", "--attention-ndim", "16",
                                     "--attention-layers", "2", "--attention-heads", "2")}
STEPS_PER_EPOCH = re.compile(r"= (\d+) steps per epoch")  # train.py's run size line


class Budget:
    """The run's seconds, counted from its start; None: no budget, and no
    part has a time limit (a tiny run)."""

    def __init__(self, seconds: float | None):
        self.start = time.monotonic()
        self.end = None if seconds is None else self.start + seconds
        self.left_out = []

    def starts(self, part: str) -> bool:
        """Whether `part` may start: else it is noted as left out, too
        little of the budget being left."""
        if self.end is not None and self.end - time.monotonic() < MIN_PART_S:
            self.left_out.append(part)
            return False
        return True

    def limit(self, cap: float) -> float | None:
        """The time limit of a part that starts now: `cap`, cut to what is
        left of the budget; None where there is no budget."""
        return None if self.end is None else min(cap, self.end - time.monotonic())

    def line(self) -> str:
        """'done in N s of the B s budget' (or 'done in N s, no budget')."""
        spent = time.monotonic() - self.start
        if self.end is None:
            return f"done in {spent:.0f} s, no budget"
        return f"done in {spent:.0f} s of the {self.end - self.start:.0f} s budget"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget-s", type=positive_float, default=None, metavar="S",
                   help="the whole run's seconds: no part starts after them (default: 420; "
                        "--tiny: none, and no part has a time limit)")
    p.add_argument("--steps", type=positive_int, default=50, metavar="N",
                   help="timed training steps per measurement (default: 50; --tiny: 1)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="work in DIR, a new or empty folder, and keep it: logs, dataset, "
                        "runs (default: a temporary folder, removed)")
    p.add_argument("--tiny", action="store_true",
                   help="every part at the tests' size: checks that the script runs (its "
                        "figures mean nothing)")
    p.add_argument("--backend", choices=("tensorflow", "jax"), default="tensorflow",
                   help="tensorflow (the default): every part; jax: the models' training "
                        "steps only, under Keras's JAX backend, for a GPU TensorFlow cannot "
                        "drive")
    args = p.parse_args(argv)
    if args.backend == "jax" and args.out:
        p.error("--out keeps the quick runs' files, and --backend jax makes none: leave "
                "one of them out")
    missing = "jax" if args.backend == "jax" else "tensorflow"
    if importlib.util.find_spec(missing) is None:
        p.error(f"{missing} is not installed here"
                + (": install requirements.txt, or measure the models under Keras's JAX "
                   "backend with --backend jax" if missing == "tensorflow" else
                   " (pip install jax; 'jax[cuda12]' or 'jax[cuda13]' for an NVIDIA GPU)"))
    if args.out and os.path.exists(args.out) and not (os.path.isdir(args.out)
                                                      and not os.listdir(args.out)):
        p.error(f"--out {args.out} is a file or a folder holding files already; give a new "
                "or empty folder, or leave --out out for a temporary one")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    budget = budget_of(args)
    if args.backend == "jax":
        return jax_run(1 if args.tiny else args.steps, args.tiny, budget)
    gpu = describe_the_machine()
    with tempfile.TemporaryDirectory(prefix="bench-accelerator-") as temporary:
        work = args.out or temporary
        os.makedirs(work, exist_ok=True)
        peaks = measure_peaks(gpu, args.tiny)
        failed = []
        for family in FAMILIES:
            failed += measure_family(family, 1 if args.tiny else args.steps, args.tiny, peaks,
                                     budget)
        failed += quick_runs(work, args.tiny, budget)
    print(budget.line()
          + (f"; left out for want of time: {', '.join(budget.left_out)}"
             if budget.left_out else "")
          + (f"; failed: {', '.join(failed)}" if failed else ""), flush=True)
    return 1 if failed else 0


def budget_of(args) -> Budget:
    """The run's budget: --budget-s, else 420 s, else none for a tiny run
    (its size is its step counts: a busy machine makes it slower, not shorter)."""
    if args.budget_s is None:
        return Budget(None if args.tiny else 420.0)
    return Budget(args.budget_s)


def jax_run(steps: int, tiny: bool, budget: Budget) -> int:
    """The models' measurements under Keras's JAX backend, in this process
    (bench/accelerator_jax.py); the budget is checked before each family."""
    if "keras" in sys.modules and os.environ.get("KERAS_BACKEND") != "jax":
        raise RuntimeError("Keras is imported already: run --backend jax in a process of its own")
    os.environ["KERAS_BACKEND"] = "jax"
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    import accelerator_jax

    from tagger.models import FAMILIES as SPECS

    accelerator_jax.describe_devices(nvidia_smi())
    import jax

    gpu = jax.devices()[0].platform == "gpu"
    sizes = TINY_MATMUL["sizes"] if tiny else GPU_MATMUL_SIZES if gpu else MATMUL_SIZES
    peaks = accelerator_jax.matmul_peaks(sizes, TINY_MATMUL["repeats"] if tiny else 10)
    print(f"matrix products ({' and '.join(map(str, sizes))} square, JAX): float32 "
          f"{peaks['float32'] / 1e12:.2f} TFLOP/s, bfloat16 {peaks['mixed_bfloat16'] / 1e12:.2f} "
          "TFLOP/s, the peaks the MFU figures are measured against")
    print(f"ratio gpu_jax_matmul_bf16_over_f32 {peaks['mixed_bfloat16'] / peaks['float32']:.3f}",
          flush=True)
    for family in FAMILIES:
        if budget.starts(f"{family} (JAX)"):
            case = tiny_case(family) if tiny else SPECS[family].bench[0]
            accelerator_jax.measure_family(family, case, steps, peaks,
                                           TINY_CONFIGS[family] if tiny else None)
    print(f"{budget.line()}; train.py --quick needs TensorFlow and was not run"
          + (f"; left out for want of time: {', '.join(budget.left_out)}"
             if budget.left_out else ""), flush=True)
    return 0


def describe_the_machine() -> bool:
    """Prints the GPU (or that none is visible) and the versions; whether a
    GPU runs the work. This process takes the GPU's memory as it needs it,
    so that the processes of the parts find it free."""
    from tagger.runtime import quiet_tensorflow

    quiet_tensorflow()
    import keras
    import tensorflow as tf

    gpus = gpu_memory_as_needed()
    details = tf.config.experimental.get_device_details(gpus[0]) if gpus else None
    print(gpu_line(details, len(gpus), nvidia_smi()))
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}", flush=True)
    return bool(gpus)


def gpu_line(details: dict | None, count: int, smi: str | None) -> str:
    """'GPU: <name>, compute capability <x.y> ...' from TensorFlow's details
    of the first GPU (None: no GPU visible) and nvidia-smi's line (or None)."""
    if details is None:
        return ("GPU: none visible to TensorFlow"
                + (f" (nvidia-smi lists {smi}: install TensorFlow's CUDA libraries, "
                   "pip install 'tensorflow[and-cuda]')" if smi else "")
                + "; running on the CPU")
    capability = ".".join(map(str, details.get("compute_capability") or ())) or "unknown"
    return (f"GPU: {details.get('device_name', 'unnamed')}, compute capability {capability} "
            f"({count} visible; the first runs the work)"
            + (f"; nvidia-smi: {smi}" if smi else ""))


def nvidia_smi() -> str | None:
    """nvidia-smi's name, memory and driver of the first GPU, or None."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                               "--format=csv,noheader"], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = done.stdout.strip().splitlines()
    return lines[0].strip() if done.returncode == 0 and lines else None


def measure_peaks(gpu: bool, tiny: bool) -> dict:
    """{compute type: FLOP/s} of float32 and bfloat16 matrix products."""
    matmul = TINY_MATMUL if tiny else dict(sizes=GPU_MATMUL_SIZES if gpu else MATMUL_SIZES)
    peaks = {dtype: matmul_flops_per_second(**matmul, dtype=dtype)
             for dtype in ("float32", "bfloat16")}
    sizes = " and ".join(map(str, matmul["sizes"]))
    print(f"matrix products ({sizes} square): float32 {peaks['float32'] / 1e12:.2f} TFLOP/s, "
          f"bfloat16 {peaks['bfloat16'] / 1e12:.2f} TFLOP/s, the peaks the MFU figures are "
          "measured against")
    print(f"ratio gpu_matmul_bf16_over_f32 {peaks['bfloat16'] / peaks['float32']:.3f}",
          flush=True)
    return peaks


def measure_family(family: str, steps: int, tiny: bool, peaks: dict, budget: Budget) -> list:
    """bench_models.py's measurement of `family`'s first bench case in each
    of CONFIGS, printed; the parts that failed."""
    from tagger.models import FAMILIES as SPECS

    case = tiny_case(family) if tiny else SPECS[family].bench[0]
    window = SPECS[family].preprocessor.segments
    rates, failed = {}, []
    for config, precision, jit in CONFIGS:
        if tiny and config not in TINY_CONFIGS[family]:
            continue
        part = f"{family} {config}"
        if not budget.starts(part):
            continue
        limit = budget.limit(MEASURE_LIMIT_S)
        try:
            if limit is None:  # a tiny run without --budget-s: nothing to kill or give back
                _, train_rate, realtime, flops, _ = measure(family, case, steps, jit, precision)
            else:
                (_, train_rate, realtime, flops, _), _ = measure_in_a_process(
                    family, 0, steps, jit, tiny, precision, timeout=limit)
        except subprocess.TimeoutExpired:
            print(f"{part}: stopped at its time limit ({limit:.0f} s)", flush=True)
            budget.left_out.append(part)
            continue
        except subprocess.CalledProcessError as error:
            print(f"{part}: failed (exit status {error.returncode}; its error is above)",
                  flush=True)
            failed.append(part)
            continue
        rates[config] = train_rate / (case.batch_size * window)  # steps/s
        mfu = train_rate * TRAIN_FORWARD_RATIO * flops / peaks[precision]
        print(f"{case.label} {config:4s} batch {case.batch_size:3d}: train {rates[config]:8.2f} "
              f"steps/s ({train_rate:8.1f} segments/s), MFU {mfu:.3f} against the "
              f"{precision} peak; inference {realtime:8.1f}x real time", flush=True)
        print(f"ratio gpu_train_steps_per_s_{config}_{family} {rates[config]:.3f}")
        print(f"ratio gpu_train_mfu_{config}_{family} {mfu:.4f}", flush=True)
    for config in ("bf16", "xla"):
        if config in rates and "f32" in rates:
            print(f"ratio gpu_train_{config}_speedup_{family} "
                  f"{rates[config] / rates['f32']:.3f}", flush=True)
    return failed


def quick_runs(work: str, tiny: bool, budget: Budget) -> list:
    """The synthetic dataset and its records, then `train.py --quick` of
    each family, printed; the parts that failed."""
    data, records = os.path.join(work, "dataset"), os.path.join(work, "tfrecord")
    clips, seconds = QUICK_DATA[tiny]
    families = TINY_QUICK_FAMILIES if tiny else FAMILIES
    trainings = [f"train.py --quick {family}" for family in families]
    preparations = (
        (f"synthetic dataset of {clips} clips of {seconds} s",
         ["-m", "tagger.commands.synthetic", data, "--clips", str(clips), "--seconds",
          str(seconds), "--no-progress"]),
        ("its records (build_mtt.py)",
         ["build_mtt.py", "--data-dir", data, "--out-dir", records, "--no-progress"]))
    for index, (part, argv) in enumerate(preparations):
        start = time.monotonic()
        outcome = run_part(part, argv, work, DATA_LIMIT_S, budget)
        if outcome != "done":
            budget.left_out += [later for later, _ in preparations[index + 1:]] + trainings
            return [part] if outcome == "failed" else []
        print(f"{part}: {time.monotonic() - start:.0f} s", flush=True)
    failed = []
    for family, part in zip(families, trainings):
        argv = ["train.py", "--data-dir", records, "--train-dir", os.path.join(work, "runs"),
                "--run-name", family, "--model", family, "--quick", "--strategy", "default",
                "--no-progress"]
        if tiny:
            argv += [*TINY_FAMILY_FLAGS[family], *TINY_TRAIN_FLAGS]
        start = time.monotonic()
        outcome = run_part(part, argv, work, TRAIN_LIMIT_S, budget)
        if outcome == "failed":
            failed.append(part)
        elif outcome == "done":
            report_quick_run(family, os.path.join(work, "runs", family),
                             log_path(work, part), time.monotonic() - start)
    return failed


def report_quick_run(family: str, run_dir: str, log: str, seconds: float) -> None:
    """Prints a finished quick run's figures, from its log and run folder."""
    with open(log, encoding="utf-8") as f:
        steps = int(STEPS_PER_EPOCH.search(f.read()).group(1))
    with open(os.path.join(run_dir, "history.csv"), encoding="utf-8") as f:
        epochs = [float(row["seconds"]) for row in csv.DictReader(f)]
    with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as f:
        test = json.load(f)["test"]
    fastest = min(epochs)
    print(f"train.py --quick {family}: {seconds:.0f} s, {len(epochs)} epochs of {steps} steps, "
          f"the fastest {fastest:.2f} s ({steps / fastest:.1f} steps/s, validation included); "
          f"test macro ROC-AUC {test['roc_auc']:.4f} over {test['evaluated_tags']} tags")
    print(f"ratio gpu_quick_seconds_{family} {seconds:.1f}")
    print(f"ratio gpu_quick_epoch_seconds_{family} {fastest:.2f}")
    print(f"ratio gpu_quick_steps_per_s_{family} {steps / fastest:.2f}")
    print(f"ratio gpu_quick_test_roc_auc_{family} {test['roc_auc']:.4f}", flush=True)


def log_path(work: str, part: str) -> str:
    return os.path.join(work, re.sub(r"\W+", "_", part).strip("_") + ".log")


def run_part(part: str, argv: list, work: str, cap: float, budget: Budget) -> str:
    """Runs `python ARGV` from the repository root, its output in its log in
    `work`, killed (with the processes it started) at its time limit:
    'done', 'failed' (the end of its log printed), 'stopped' or 'left out'."""
    if not budget.starts(part):
        return "left out"
    limit = budget.limit(cap)
    with open(log_path(work, part), "w", encoding="utf-8") as log:
        process = subprocess.Popen([sys.executable, *argv], cwd=ROOT, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
        try:
            status = process.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            print(f"{part}: stopped at its time limit ({limit:.0f} s)", flush=True)
            budget.left_out.append(part)
            return "stopped"
    if status != 0:
        with open(log_path(work, part), encoding="utf-8", errors="replace") as log:
            tail = log.read().splitlines()[-15:]
        print(f"{part}: failed (exit status {status}); the end of its log:", *tail,
              sep="\n  ", flush=True)
        return "failed"
    return "done"


if __name__ == "__main__":
    raise SystemExit(main())
