"""Training under Keras's JAX backend on an accelerator machine without
TensorFlow: records in, train.py and eval.py whole, in about 10 minutes.

What it prints, each figure as soon as it is measured:
  - the CPU (every bench's first line), JAX's devices and the versions;
  - the synthetic dataset (`tagger.commands.synthetic`, 200 clips of 29.1 s)
    and its records (build_mtt.py, half the train clips moved, labels
    dropped, into the unlabelled `student` split), both made here without
    TensorFlow;
  - the TensorFlow-free reader's training batches a second on this
    machine's cores (`records.plain_reader`, its default workers, raw
    int16 windows of one segment, batch 23), as `ratio
    gpu_reader_segments_per_s_no_tf` (segments/s);
  - `train.py --backend jax` of SE+multi (the paper's batch 23) and of the
    teacher transformer (batch 16, its 10 s windows), each batch the nearest
    multiple of the devices JAX sees (`run_batch`), for --epochs epochs of
    `--quick`'s one Adam stage, then `eval.py
    --backend jax` of the saved model at the run's batch: the run's wall
    time, its fastest epoch (validation included), that epoch's training steps a second and
    the test macro ROC-AUC, as `ratio gpu_jax_quick_{seconds, epoch_seconds,
    steps_per_s, test_roc_auc}_<family>`, and the share of the training
    steps' time spent waiting for input (the run's last lines), as `ratio
    gpu_input_wait_share_<family>` (goal: under 0.05); eval.py's ROC-AUC must
    equal the run's to 1e-4 (a line says where it does not: on a GPU the
    scores' rounding follows the batch's shape, so eval.py runs at the
    run's batch);
  - noisy-student training (Won, Choi, Serra 2021) of each family under
    JAX: `train.py --backend jax --teacher` the transformer run above,
    `--augment`, half labelled and half unlabelled windows a step, the same
    epochs and batch: the same figures as `ratio gpu_jax_quick_noisy_{seconds,
    epoch_seconds, steps_per_s, test_roc_auc}_<family>` and `ratio
    gpu_input_wait_share_noisy_<family>`;
  - a batch-size scan of each family's training step in bfloat16
    (train.py --backend jax's step, through bench/accelerator_jax.py, the
    steps back to back): steps/s, segments/s and MFU against the bfloat16
    matrix-product peak, as `ratio gpu_jax_scan_{steps_per_s,mfu}_<family>_b<batch>`,
    and the best batch's MFU as `ratio gpu_jax_scan_best_mfu_<family>`;
    its steps/s over the H200's roofline bound at that batch
    (bench_roofline.py) as `ratio gpu_jax_scan_best_of_roofline_<family>`.
`--tiny` runs every part at the tests' size on whatever JAX computes on
(the suite runs it on the CPU), each kind of run once: the transformer's
supervised run (the teacher) and SE+multi's noisy student, and the scan
of the transformer at one batch (the other families' scans and batches
are the same part). It checks that the script runs; its figures mean nothing.

The machine needs JAX for its accelerator, this repository and the
packages tagger imports that JAX machines lack (docs/jax.md, "Installing
without TensorFlow"): `python bench/bench_gpu_jax.py --fetch-wheels .whl`
(here, where pip reaches the package index) puts their wheels for
Python 3.12 on Linux x86-64 in `.whl`; there,
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
    PYTHONPATH=/tmp/site python3 bench/bench_gpu_jax.py [--epochs 3] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import common  # noqa: F401  the machine's line, first

from tagger.cli import positive_int

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# family: (its train.py flags, its batch)
FAMILIES = {"samplecnn": (["--model", "samplecnn", "--block", "se", "--width", "1.0",
                           "--alpha", "16"], 23),
            "transformer": (["--model", "transformer", "--size", "teacher",
                             "--conv-ndim", "128"], 16)}
TINY_FLAGS = {"samplecnn": ["--width", "0.0625", "--alpha", "2"],
              "transformer": ["--conv-ndim", "4", "--attention-ndim", "16",
                              "--attention-layers", "2", "--attention-heads", "2"]}
# (family, whether a noisy student of the transformer run): the transformer's own run first
RUNS = tuple((family, noisy) for noisy in (False, True) for family in FAMILIES)
TINY_RUNS = (("transformer", False), ("samplecnn", True))  # each kind of run once
DATA = {False: (200, 29.1), True: (24, 11.0)}  # (clips, seconds); 11 s: one 10 s window
SCAN_BATCHES = {False: {"samplecnn": (23, 92, 368), "transformer": (16, 64, 256)},
                True: {"transformer": (2,)}}  # tiny: one scan, one batch
UNLABELLED_FRACTION = "0.5"  # of the train clips: the noisy students' unlabelled split
HANG_S = 3600  # a guard against a hung part, never reached by a working one
STEPS_PER_EPOCH = re.compile(r"= (\d+) steps per epoch")
INPUT_LINE = re.compile(r"waited ([\d.]+) s of their ([\d.]+) s for batches")
# what tagger needs beyond a JAX machine's packages: (name, version)
WHEELS = (("keras", "3.15.1"), ("namex", "0.1.0"), ("optree", "0.20.0"),
          ("soundfile", "0.14.0"), ("cffi", "2.1.1"), ("pycparser", "3.12"),
          ("soxr", "1.1.0"), ("google-crc32c", "1.9.0"), ("mutagen", "1.48.1"),
          # the runs' TensorBoard scalars: its event writer and what that imports
          ("tensorboard", "2.21.0"), ("protobuf", "6.33.6"), ("absl-py", "2.5.1"))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=positive_int, default=3, metavar="N",
                   help="epochs of each training run (default: 3)")
    p.add_argument("--steps", type=positive_int, default=30, metavar="N",
                   help="timed steps per batch size of the scan (default: 30)")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="work in DIR and keep it: dataset, records, runs, logs (default: a "
                        "temporary folder, removed)")
    p.add_argument("--tiny", action="store_true",
                   help="every part at the tests' size: checks that the script runs")
    p.add_argument("--fetch-wheels", default=None, metavar="DIR",
                   help="only put the wheels an accelerator machine lacks in DIR, with pip, "
                        "and stop")
    args = p.parse_args(argv)
    given = [flag for flag, value in (("--epochs", args.epochs != 3), ("--out", args.out),
                                      ("--tiny", args.tiny), ("--steps", args.steps != 30))
             if value]
    if args.fetch_wheels and given:
        p.error(f"--fetch-wheels only fetches wheels: leave out {', '.join(given)}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.fetch_wheels:
        return fetch_wheels(args.fetch_wheels)
    os.environ["KERAS_BACKEND"] = "jax"
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # for the runs' processes
    import accelerator_jax
    from bench_accelerator import nvidia_smi

    accelerator_jax.describe_devices(nvidia_smi())
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-gpu-jax-") as temporary:
        work = args.out or temporary
        os.makedirs(work, exist_ok=True)
        records = make_records(work, args.tiny)
        measure_reader(records, args.tiny)
        teacher = os.path.join(work, "runs", "transformer", "model.keras")
        for family, noisy in TINY_RUNS if args.tiny else RUNS:
            train_and_evaluate(family, records, work, args.epochs, args.tiny,
                               teacher=teacher if noisy else None)
        scan_batches(args.steps, args.tiny)
    print(f"done in {time.monotonic() - start:.0f} s", flush=True)
    return 0


def run(argv: list, log: str, env=None) -> str:
    """Runs `python ARGV` from the repository root and returns its output
    (also written to `log`); a failure prints the end of it and stops."""
    start = time.monotonic()
    done = subprocess.run([sys.executable, *argv], cwd=ROOT, capture_output=True, text=True,
                          env=env, timeout=HANG_S)
    with open(log, "w", encoding="utf-8") as f:
        f.write(done.stdout + done.stderr)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).splitlines()[-15:]
        raise SystemExit("\n  ".join([f"{argv[0]} failed (exit status {done.returncode}):",
                                      *tail]))
    run.seconds = time.monotonic() - start
    return done.stdout


def make_records(work: str, tiny: bool) -> str:
    data, records = os.path.join(work, "dataset"), os.path.join(work, "tfrecord")
    clips, seconds = DATA[tiny]
    run(["-m", "tagger.commands.synthetic", data, "--clips", str(clips), "--seconds",
         str(seconds), "--no-progress"], os.path.join(work, "synthetic.log"))
    made = run.seconds
    run(["build_mtt.py", "--data-dir", data, "--out-dir", records, "--unlabelled-fraction",
         UNLABELLED_FRACTION, "--no-progress"],
        os.path.join(work, "build.log"))
    print(f"synthetic dataset of {clips} clips of {seconds} s: {made:.0f} s; its records "
          f"(build_mtt.py): {run.seconds:.0f} s", flush=True)
    return records


def measure_reader(records: str, tiny: bool) -> None:
    """The TensorFlow-free reader's training segments a second, its default workers."""
    from tagger.records import plain_reader
    from tagger.records.info import load_info

    info = load_info(records)
    batches = 4 if tiny else 400
    with plain_reader.train_batches(records, 23, info=info, seed=0) as reader:
        next(reader)  # its workers started
        start = time.perf_counter()
        for _ in range(batches):
            next(reader)
        rate = batches * 23 / (time.perf_counter() - start)
    print(f"the TensorFlow-free reader: {rate:.0f} segments/s of {info.segment_length} int16 "
          f"samples ({plain_reader.default_workers()} workers, batch 23)")
    print(f"ratio gpu_reader_segments_per_s_no_tf {rate:.0f}", flush=True)


def run_batch(batch: int, devices: int) -> int:
    """The batch nearest `batch` that `devices` divide (train.py splits its
    batch over every device JAX sees, and refuses one they do not divide):
    at least one window a device."""
    return devices * max(1, round(batch / devices))


def train_and_evaluate(family: str, records: str, work: str, epochs: int, tiny: bool,
                       teacher: str | None = None) -> None:
    """train.py --backend jax of `family` (with `teacher`: a noisy student
    of it, augmented), then eval.py of its model; prints the figures."""
    import jax

    flags, batch = FAMILIES[family]
    # a noisy student's batch is half labelled, half unlabelled, each split over the devices
    batch = run_batch(2 if tiny else batch, jax.device_count() * (2 if teacher else 1))
    name = f"noisy_{family}" if teacher else family
    argv = ["train.py", "--backend", "jax", "--data-dir", records, "--train-dir",
            os.path.join(work, "runs"), "--run-name", name, "--quick", *flags,
            "--max-epochs-per-stage", str(epochs), "--patience", str(epochs),
            "--batch-size", str(batch), "--no-progress"]
    if teacher:
        argv += ["--teacher", teacher, "--augment"]
    if tiny:
        argv += [*TINY_FLAGS[family], "--steps-per-epoch", "2", "--validation-steps", "1"]
    out = run(argv, os.path.join(work, f"train_{name}.log"))
    seconds = run.seconds
    run_dir = os.path.join(work, "runs", name)
    steps = int(STEPS_PER_EPOCH.search(out).group(1))
    waited, total = map(float, INPUT_LINE.search(out).groups())
    with open(os.path.join(run_dir, "history.csv"), encoding="utf-8") as f:
        fastest = min(float(line.split(",")[-1]) for line in f.read().splitlines()[1:])
    with open(os.path.join(run_dir, "metrics.json"), encoding="utf-8") as f:
        test = json.load(f)["test"]
    report = os.path.join(work, f"eval_{name}.json")
    run(["eval.py", os.path.join(run_dir, "model.keras"), "--backend", "jax", "--data-dir",
         records, "--batch-size", str(batch), "--bootstrap", "0", "--out-json", report,
         "--no-progress"], os.path.join(work, f"eval_{name}.log"))
    with open(report, encoding="utf-8") as f:
        evaluated = json.load(f)["roc_auc"]
    if abs(evaluated - test["roc_auc"]) > 1e-4:  # said, and the other parts still run
        print(f"NOT THE SAME: eval.py's test ROC-AUC of {name}, {evaluated:.4f}, is not its "
              f"run's, {test['roc_auc']:.4f}", flush=True)
    how = "noisy student of the transformer run, augmented" if teacher else "supervised"
    print(f"train.py --backend jax {family} ({how}): batch {batch}, {seconds:.0f} s, "
          f"{epochs} epochs of {steps} steps, the fastest {fastest:.2f} s "
          f"({steps / fastest:.1f} steps/s, validation included); test macro ROC-AUC "
          f"{test['roc_auc']:.4f} (eval.py at the run's batch: {evaluated:.4f}); the steps "
          f"waited {waited:.1f} s of {total:.1f} s for input")
    noisy = "_noisy" if teacher else ""
    print(f"ratio gpu_jax_quick{noisy}_seconds_{family} {seconds:.1f}")
    print(f"ratio gpu_jax_quick{noisy}_epoch_seconds_{family} {fastest:.2f}")
    print(f"ratio gpu_jax_quick{noisy}_steps_per_s_{family} {steps / fastest:.2f}")
    print(f"ratio gpu_jax_quick{noisy}_test_roc_auc_{family} {test['roc_auc']:.4f}")
    print(f"ratio gpu_input_wait_share{noisy}_{family} {waited / total:.4f}", flush=True)


def scan_batches(steps: int, tiny: bool) -> None:
    """Each family's jitted bfloat16 training step at each of its SCAN_BATCHES."""
    import dataclasses

    import accelerator_jax
    import bench_roofline
    from common import tiny_case
    from flops import TRAIN_FORWARD_RATIO

    from tagger.models import FAMILIES as SPECS

    peak = accelerator_jax.matmul_peaks((256,) if tiny else (8192, 16384),
                                        2 if tiny else 10)["mixed_bfloat16"]
    for family, batches in SCAN_BATCHES[tiny].items():
        case = tiny_case(family) if tiny else SPECS[family].bench[0]
        mfus, rates = {}, {}
        for batch in batches:
            rate, flops = accelerator_jax.train_rate(
                family, dataclasses.replace(case, batch_size=batch), 1 if tiny else steps,
                "mixed_bfloat16")
            rates[batch] = rate
            mfus[batch] = rate * TRAIN_FORWARD_RATIO * flops / peak
            print(f"{case.label} bf16 batch {batch:4d} (JAX): {rate:8.2f} steps/s, "
                  f"{rate * batch:9.1f} segments/s, MFU {mfus[batch]:.3f}")
            print(f"ratio gpu_jax_scan_steps_per_s_{family}_b{batch} {rate:.3f}")
            print(f"ratio gpu_jax_scan_mfu_{family}_b{batch} {mfus[batch]:.4f}", flush=True)
        best = max(mfus, key=mfus.get)
        print(f"{case.label}: the best MFU {mfus[best]:.3f} at batch {best}")
        print(f"ratio gpu_jax_scan_best_mfu_{family} {mfus[best]:.4f}", flush=True)
        bound = bench_roofline.step_bound(family, dataclasses.replace(case, batch_size=best))
        print(bench_roofline.describe(case.label, best, bound))
        print(f"ratio gpu_jax_scan_best_of_roofline_{family} "
              f"{rates[best] * bound.seconds:.4f}", flush=True)


def fetch_wheels(folder: str) -> int:
    """The WHEELS for Python 3.12 on Linux x86-64, with pip, into `folder`."""
    platforms = [f"--platform=manylinux_2_{n}_x86_64" for n in (17, 27, 28)]
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                           "--only-binary=:all:", "--python-version", "3.12",
                           "--implementation", "cp", *platforms, "--platform=manylinux2014_x86_64",
                           "--platform=any", "-d", folder,
                           *(f"{name}=={version}" for name, version in WHEELS)])
    return done.returncode


if __name__ == "__main__":
    raise SystemExit(main())
