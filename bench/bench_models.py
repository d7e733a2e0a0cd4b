"""Training throughput, inference real-time factor and FLOP utilisation of
the model families at paper size.

For each model: training segments/s (the family's record segments: 2.68 s,
FCN's 29 s; one optimiser step per batch through the project's custom
training step) and inference real-time factor (seconds of audio tagged per
second), with and without XLA (`--jit-compile`), each also as a ratio to
the first row (SE+multi without XLA) measured in the same run, printed as
soon as it is measured, so a stopped run still reports what it measured.
FLOPs per window are counted from the frozen inference graph (bench/flops.py;
checked against a hand count for the sample-level CNN).

Model FLOP utilisation (MFU) is the achieved FLOP/s (a training step counted
as three forward passes) divided by the FLOP/s of a large float32 matrix
product, the machine's peak. The peak is measured beside each family, before
its first measurement and after its last (the after of one family is the
before of the next, nothing running between them), and the family's MFU
figures are printed once the second is taken, against the higher of the two,
with their spread (how far apart they are, as a share of the higher). An MFU
above 1, or one whose peaks are further apart than PEAK_SPREAD_LIMIT (10%),
says that other work shared the cores while a peak or the model was measured:
it is printed as `disturbed NAME VALUE (why)`, not as a `ratio` line.

bfloat16 beside float32: the bench names the CPU's bfloat16 units (AMX-BF16,
AVX-512 BF16, or none), measures a bfloat16 matrix product beside each
float32 one (`ratio matmul_bf16_over_f32`, at the start), and trains and runs
each family's first case once more in mixed bfloat16 (as `train.py
--mixed-precision bfloat16` does, without XLA): its row gives MFU against
the bfloat16 peak and against float32's, and `ratio
train_bf16_speedup_<family>` its training segments/s over the float32
row's, measured in the same run. `--no-bf16` skips them.

`--backend jax` also trains each family's first case under Keras's JAX
backend, in a process of its own started with KERAS_BACKEND=jax, through
train.py --backend jax's step (bench/accelerator_jax.py), on the same model,
batch and input as the TensorFlow rows, between the same two peaks: `ratio
mfu_train_<family>_jax` (its FLOPs are the TensorFlow graph's count of the
same model) beside TensorFlow's `mfu_train_<family>` and
`mfu_train_<family>_xla`, and `ratio train_jax_speedup_<family>`, its
training segments/s over TensorFlow's without XLA. `--repeat N` measures
each family's first case N times in turns (every run of it, one after
the other, then again): each speed or memory ratio is the median of the
turns' (each turn's row against the same turn's float32 row; of an even
N the lower middle one), printed after each turn's value; its MFU
figures are of the turn of median speed.

By default the project's own four families (sample-level CNN, multi-scale
CNN, self-attention, Music Tagging Transformer) and the musicnn families
the pretrained taggers are (Won et al.'s Musicnn, the musicnn package's
Musicnn, MTT_musicnn's, and its VGG), each measurement in a process of its
own (a model's training memory is given back when it ends; the bench
prints the largest so far); `--zoo` adds the rest of the converted zoo's
families (Won et al. 2020's), `--families` names any. Inference runs the
model's inference form, as tag.py's engines do
(`tagger.models.inference_graph`); its FLOPs are counted on the model as
built. `--tiny` measures each
family once at the size the tests build it instead (its `FamilySpec.tiny`
arguments, batches of 2, small matrix products): it checks that the bench
runs; its figures mean nothing.
    python bench/bench_models.py [--steps 3] [--zoo | --families samplecnn,transformer]
                                 [--no-jit] [--no-bf16] [--backend tensorflow|jax] [--tiny]
                                 [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import NamedTuple

from common import (
    bench_model,
    gpu_memory_as_needed,
    random_batch,
    tf_steps_per_second,
    tiny_case,
)
from flops import (
    MATMUL_SIZES,
    TRAIN_FORWARD_RATIO,
    graph_flops,
    matmul_flops_per_second,
    samplecnn_flops,
)

from tagger.cpu_features import bf16_units
from tagger.xla_cpu import start_as_a_command

OWN_FAMILIES = ("samplecnn", "multiscale", "self_attention", "transformer")
DEFAULT_FAMILIES = (*OWN_FAMILIES, "musicnn", "pons_musicnn", "pons_vgg")
PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16"}  # Keras's dtype policies
# Two measurements of the peak further apart than this share of the higher
# say that the cores were shared while the family between them was measured:
# on quiet cores they stay within a few percent.
PEAK_SPREAD_LIMIT = 0.10

TINY_MATMUL = dict(sizes=(256,), repeats=2)


def measure(family, case, steps, jit, precision="float32"):
    """(parameters, training segments/s, inference x real time, FLOPs per
    segment, seconds per segment) of `family`'s `case`, its training steps
    XLA-compiled with `jit`, its layers computing in `precision` (float32,
    or bfloat16 as `train.py --mixed-precision bfloat16` runs them)."""
    import tensorflow as tf

    from tagger.models import family as family_spec
    from tagger.models.inference_graph import inference_model

    spec = family_spec(family)
    batch, pre = case.batch_size, spec.preprocessor
    window, segment, rate = pre.segments, pre.segment_length, pre.sample_rate  # FCN: 29 s, 16 kHz
    model = bench_model(family, case, PRECISIONS[precision])
    x, y = random_batch(family, case)
    train_rate = tf_steps_per_second(model, (x, y), steps, jit) * batch * window
    fast = inference_model(model)  # what tag.py's engines run
    predict = tf.function(lambda v: fast(v, training=False), jit_compile=jit or None)
    predict(x).numpy()
    start = time.perf_counter()
    for _ in range(steps):
        predict(x).numpy()
    seconds_of_audio = steps * batch * window * segment / rate
    realtime = seconds_of_audio / (time.perf_counter() - start)
    flops = graph_flops(model, (window * segment,))
    if case.hand_flops:
        print(f"  FLOPs per segment: graph {flops / 1e9:.3f} G, hand count of convolutions "
              f"and dense layers {samplecnn_flops(model) / 1e9:.3f} G")
    return model.count_params(), train_rate, realtime, flops / window, segment / rate


class ProcessUsage(NamedTuple):
    """What one measurement's process used: its peak resident memory in
    bytes, its CPU seconds in the kernel and its minor page faults (its
    start, a start again with huge pages and compiling included)."""

    peak_bytes: int
    kernel_s: float
    minor_faults: int

    def text(self) -> str:
        return (f"its process: peak {self.peak_bytes / 2**30:.1f} GB, {self.kernel_s:.1f} s "
                f"in the kernel, {self.minor_faults / 1e6:.2f} million minor page faults")


def measure_in_a_process(family, index, steps, jit, tiny, precision="float32", timeout=None,
                         backend="tensorflow"):
    """`measure` of the family's bench case `index` (with `tiny`, at the
    tests' size) in a process of its own (the memory of one model's training
    is given back when it exits), whose Keras runs on `backend` (under jax:
    `measure_jax`, `jit` and `precision` unused, the process started as a
    command under JAX starts): (its figures, its ProcessUsage). The process
    is killed after `timeout` seconds (subprocess.TimeoutExpired)."""
    import json
    import subprocess
    import sys

    env = dict(os.environ, KERAS_BACKEND=backend)
    if backend == "jax":  # a GPU's memory as the process needs it, as bench_accelerator's
        env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    done = subprocess.run([sys.executable, __file__, "--one", family, str(index), str(steps),
                           "1" if jit else "0", "1" if tiny else "0", precision],
                          stdout=subprocess.PIPE, text=True, check=True, timeout=timeout,
                          env=env)
    lines = done.stdout.splitlines()
    for line in lines[:-1]:
        if not line.startswith("CPU: "):  # the machine, printed once by this process
            print(line, flush=True)
    figures, usage = json.loads(lines[-1])
    return figures, ProcessUsage(*usage)


def measure_jax(family, case, steps):
    """(parameters, training segments/s) of `family`'s `case` under Keras's
    JAX backend: `measure`'s model, batch and optimiser through train.py
    --backend jax's step (`accelerator_jax.steps_per_second`)."""
    import accelerator_jax

    from tagger.models import family as family_spec

    model = bench_model(family, case)
    rate = accelerator_jax.steps_per_second(model, random_batch(family, case), steps)
    return model.count_params(), rate * case.batch_size * family_spec(family).preprocessor.segments


def measure_one(family, index, steps, jit, tiny, precision):
    """The body of `--one`: one measurement under the Keras backend this
    process was started with: [its figures, its ProcessUsage] as a JSON
    line."""
    import json
    import resource

    from tagger import backends

    backends.quiet_tensorflow_for_keras()  # before a model build imports Keras
    from tagger.models import FAMILIES

    case = tiny_case(family) if tiny else FAMILIES[family].bench[index]
    if backends.current() == "jax":
        figures = measure_jax(family, case, steps)
    else:
        figures = measure(family, case, steps, jit, precision)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps([figures, [usage.ru_maxrss * 1024, usage.ru_stime, usage.ru_minflt]]))


class Row(NamedTuple):
    """One measurement of a family's bench case: training segments/s,
    inference x real time (None: not measured, as under JAX), FLOPs per
    segment, seconds per segment, its process's usage and the model's
    parameters."""

    label: str
    index: int  # the bench case's
    jit: bool
    precision: str  # float32 or bfloat16
    backend: str  # tensorflow or jax
    train_rate: float
    realtime: float | None
    flops: float
    seconds: float
    usage: ProcessUsage | None = None
    params: int = 0

    def mfu(self, peak: float) -> tuple[float | None, float]:
        """(inference, training) MFU against `peak` FLOP/s."""
        train = self.train_rate * TRAIN_FORWARD_RATIO * self.flops / peak
        if self.realtime is None:
            return None, train
        return self.realtime / self.seconds * self.flops / peak, train

    def ratio_names(self, family: str) -> tuple[str | None, str | None]:
        """The names of its (inference, training) MFU ratio lines: each
        family's first case in float32, without XLA, with it, and under JAX."""
        if self.index or self.precision != "float32":
            return None, None
        if self.backend == "jax":
            return None, f"mfu_train_{family}_jax"
        suffix = "_xla" if self.jit else ""
        return f"mfu_infer_{family}{suffix}", f"mfu_train_{family}{suffix}"


def peak_spread(before: float, after: float) -> float:
    """How far apart two measurements of the peak are, as a share of the higher."""
    return abs(after - before) / max(before, after)


def disturbance(mfu: float, spread: float) -> str | None:
    """Why an MFU measured between two peaks `spread` apart is a disturbed
    measurement (above 1: more than the cores give; or peaks further apart
    than PEAK_SPREAD_LIMIT), or None where it stands."""
    reasons = []
    if mfu > 1:
        reasons.append("above 1")
    if spread > PEAK_SPREAD_LIMIT:
        reasons.append(f"the peaks before and after the family are {spread:.1%} apart, "
                       f"over {PEAK_SPREAD_LIMIT:.0%}")
    return "; ".join(reasons) or None


def mfu_text(mfu: float, spread: float) -> str:
    """'0.467', or '1.130 (disturbed)' (`disturbance`)."""
    return f"{mfu:.3f}" + (" (disturbed)" if disturbance(mfu, spread) else "")


def figure_line(name: str, mfu: float, spread: float) -> str:
    """`ratio NAME VALUE`, or `disturbed NAME VALUE (why)` (`disturbance`)."""
    why = disturbance(mfu, spread)
    return f"ratio {name} {mfu:.3f}" if why is None else f"disturbed {name} {mfu:.3f} ({why})"


def family_mfu_lines(family: str, rows, before: dict, after: dict) -> list[str]:
    """The lines of `family`'s MFU figures: for each compute type, its peaks
    `before` and `after` the family ({type: FLOP/s}) and their spread; each
    of `rows` (Row) with its MFU against the higher peak of its compute type
    (a bfloat16 row against float32's too); then the ratio lines, each a
    `disturbed` line where `disturbance` says so."""
    peaks = {kind: max(before[kind], after[kind]) for kind in before}
    spreads = {kind: peak_spread(before[kind], after[kind]) for kind in before}
    lines = [f"{kind} peak beside {family}: {before[kind] / 1e9:.1f} GFLOP/s before, "
             f"{after[kind] / 1e9:.1f} after, spread {spreads[kind]:.1%}"
             + (f" (over {PEAK_SPREAD_LIMIT:.0%}: its {kind} MFU figures are disturbed)"
                if spreads[kind] > PEAK_SPREAD_LIMIT else "")
             + "; the MFU figures are against the higher" for kind in before]
    ratio_lines = []
    for row in rows:
        spread = spreads[row.precision]
        infer, train = row.mfu(peaks[row.precision])
        text = ("" if infer is None else f"inference {mfu_text(infer, spread)} "
                ) + f"training {mfu_text(train, spread)}"
        if row.precision != "float32":
            against = row.mfu(peaks["float32"])
            text += (f" (float32's peak: inference {mfu_text(against[0], spreads['float32'])} "
                     f"training {mfu_text(against[1], spreads['float32'])})")
        lines.append(f"{row.label:30s} MFU {text}")
        for name, value in zip(row.ratio_names(family), (infer, train)):
            if name:
                ratio_lines.append(figure_line(name, value, spread))
    return lines + ratio_lines


def measure_peaks(matmul: dict, bf16: bool) -> dict:
    """{compute type: FLOP/s} of the float32 matrix products `matmul`
    (`matmul_flops_per_second`'s arguments), and of bfloat16 ones with `bf16`."""
    kinds = ("float32", "bfloat16") if bf16 else ("float32",)
    return {kind: matmul_flops_per_second(**matmul, dtype=kind) for kind in kinds}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=3, help="timed steps per measurement")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--families", default=None,
                       help="comma-separated families to measure (default: "
                            f"{','.join(DEFAULT_FAMILIES)})")
    which.add_argument("--zoo", action="store_true",
                       help="every family, the converted zoo's included")
    p.add_argument("--no-jit", action="store_true", help="skip the XLA measurements")
    p.add_argument("--no-bf16", action="store_true",
                   help="skip the bfloat16 measurements (the matrix products and each "
                        "family's first case in mixed bfloat16)")
    p.add_argument("--backend", choices=("tensorflow", "jax"), default="tensorflow",
                   help="tensorflow (the default): every measurement under TensorFlow; jax: "
                        "each family's first case also trains under Keras's JAX backend, its "
                        "MFU beside TensorFlow's")
    p.add_argument("--tiny", action="store_true",
                   help="each family at the tests' size: checks that the bench runs (its "
                        "figures mean nothing)")
    p.add_argument("--repeat", type=int, default=1,
                   help="measurements of each family's first case, in turns: its bfloat16 and "
                        "JAX speed and memory ratios the median of the turns', its MFU figures "
                        "of the turn of median speed")
    # FAMILY INDEX STEPS JIT TINY PRECISION
    p.add_argument("--one", nargs=6, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.repeat < 1:
        p.error(f"--repeat must be 1 or more, got {args.repeat}")
    if args.one:
        if os.environ.get("KERAS_BACKEND") == "jax":  # as a command under JAX starts
            start_as_a_command()
        family, index, steps, jit, tiny, precision = args.one
        return measure_one(family, int(index), int(steps), jit == "1", tiny == "1", precision)
    from tagger.models import FAMILY_NAMES

    if args.zoo:
        families = FAMILY_NAMES
    else:
        families = tuple(args.families.split(",")) if args.families else DEFAULT_FAMILIES
        unknown = sorted(set(families) - set(FAMILY_NAMES))
        if unknown:
            p.error(f"unknown families {', '.join(unknown)}; valid: {', '.join(FAMILY_NAMES)}")
    if args.backend == "jax":
        import importlib.util

        if importlib.util.find_spec("jax") is None:
            p.error("--backend jax needs JAX, which is not installed here: "
                    "pip install -r requirements-jax.txt")
    gpu_memory_as_needed()  # this process's matrix products leave it to the measurements
    units = bf16_units()
    print(f"bfloat16 units of this CPU: {', '.join(units) if units else 'none'}", flush=True)
    matmul = TINY_MATMUL if args.tiny else dict(sizes=MATMUL_SIZES)
    sizes = " and ".join(map(str, matmul["sizes"]))
    start = before = measure_peaks(matmul, not args.no_bf16)
    print(f"float32 matrix products ({sizes} square): {before['float32'] / 1e9:.1f} GFLOP/s, "
          "the peak the MFU figures are measured against, again after each family",
          flush=True)
    if not args.no_bf16:
        print(f"bfloat16 matrix products ({sizes} square): {before['bfloat16'] / 1e9:.1f} "
              "GFLOP/s, the peak the bfloat16 rows' MFU figures are measured against",
              flush=True)
        print(f"ratio matmul_bf16_over_f32 {before['bfloat16'] / before['float32']:.3f}",
              flush=True)
    base = None
    for family in families:
        rows, base = measure_family(family, args, base)
        after = measure_peaks(matmul, not args.no_bf16)
        for line in family_mfu_lines(family, rows, before, after):
            print(line, flush=True)
        before = after
    print(f"matrix products at the end: {before['float32'] / 1e9:.1f} GFLOP/s "
          f"({start['float32'] / 1e9:.1f} at the start)")


def measure_family(family, args, base):
    """(rows, base): each of `family`'s bench cases (with --tiny, its tiny
    one) measured in each of its runs, each in a process of its own and
    printed as measured, with its ratios to `base`, the run's first row
    ((label, train rate, real-time factor), None before it); the first
    case's runs `args.repeat` times in turns. A bfloat16 or JAX row also
    prints its training speed over the case's float32 row without XLA,
    whose FLOPs a JAX row takes: the median of the turns' ratios, each
    turn's row against the same turn's float32 row. A run's row in `rows`
    is its turn of median training speed."""
    from tagger.models import FAMILIES

    cases = (tiny_case(family),) if args.tiny else FAMILIES[family].bench
    rows = []
    for index, case in enumerate(cases):
        runs = [("tensorflow", False, "float32")]
        runs += [] if args.no_jit else [("tensorflow", True, "float32")]
        if index == 0 and not args.no_bf16:
            runs.append(("tensorflow", False, "bfloat16"))  # beside float32 without XLA
        if index == 0 and args.backend == "jax":
            runs.append(("jax", False, "float32"))  # JAX compiles every step
        turns = {run: [] for run in runs}
        repeats = args.repeat if index == 0 else 1
        for turn in range(repeats):
            for run in runs:
                row = measure_row(family, index, case, run, args, turns[runs[0]])
                turns[run].append(row)
                base = base or (row.label, row.train_rate, row.realtime)
                print_row(row, case, base)
                if turn == repeats - 1:  # its ratios as soon as its last turn is measured
                    print_ratios(family, run, turns[run], turns[runs[0]])
        for run in runs:
            by_speed = sorted(turns[run], key=lambda r: r.train_rate)
            rows.append(by_speed[(len(by_speed) - 1) // 2])
    return rows, base


def measure_row(family, index, case, run, args, float32_turns) -> Row:
    """One measurement of `family`'s case `index` in `run` (backend, jit,
    precision), in a process of its own; a JAX row takes the FLOPs of the
    case's float32 row (the last of `float32_turns`)."""
    backend, jit, precision = run
    label = (case.label + (" +XLA" if jit else "") + (" bf16" if precision == "bfloat16" else "")
             + (" JAX" if backend == "jax" else ""))
    figures, usage = measure_in_a_process(family, index, args.steps, jit, args.tiny, precision,
                                          backend=backend)
    if backend == "jax":
        (params, train_rate), realtime = figures, None
        flops, seconds = float32_turns[-1].flops, float32_turns[-1].seconds  # the same model's
    else:
        params, train_rate, realtime, flops, seconds = figures
    return Row(label, index, jit, precision, backend, train_rate, realtime, flops, seconds,
               usage, params)


def print_row(row: Row, case, base) -> None:
    """A measurement's line: its figures, its ratios to `base`, its process's usage."""
    inference = "" if row.realtime is None else f"  inference {row.realtime:7.1f}x real time"
    to_base = (f"train {row.train_rate / base[1]:.2f}"
               + ("" if row.realtime is None else f", inference {row.realtime / base[2]:.2f}"))
    print(f"{row.label:30s} {row.params / 1e6:6.2f}M params  batch {case.batch_size:3d}  "
          f"train {row.train_rate:7.1f} segments/s{inference}  {row.flops / 1e9:6.3f} "
          f"GFLOP/segment  (to {base[0]}: {to_base}); {row.usage.text()}", flush=True)


def print_ratios(family: str, run, turns: list, float32_turns: list) -> None:
    """A bfloat16 or JAX run's training speed over the float32 row without
    XLA, and a JAX run's peak resident memory over it: each the median of
    the turns' ratios (each turn against the same turn's float32 row)."""
    backend, _, precision = run
    speedup = "bf16" if precision == "bfloat16" else "jax" if backend == "jax" else None
    figures = {f"train_{speedup}_speedup_{family}": lambda row: row.train_rate} if speedup else {}
    if backend == "jax":
        figures[f"train_jax_peak_memory_{family}"] = lambda row: row.usage.peak_bytes
    for name, figure in figures.items():
        values = [figure(row) / figure(float32) for row, float32 in zip(turns, float32_turns)]
        if len(values) > 1:
            print(f"{name} in {len(values)} turns: {', '.join(f'{v:.3f}' for v in values)}",
                  flush=True)
        print(f"ratio {name} {statistics.median_low(values):.3f}", flush=True)


if __name__ == "__main__":
    main()
