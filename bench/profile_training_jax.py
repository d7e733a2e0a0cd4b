"""Where the time of train.py --backend jax's training step goes on the
CPU, by XLA operation, family by family.

For each family (bench_models' default list; `--families` to pick) at its
first bench case: train.py --backend jax's step (`backend_jax`, through
`accelerator_jax.steps_per_second`'s train function: the model's training
form on the CPU, BCE, SGD with Nesterov momentum) is compiled, then run
for `--steps` steps under JAX's profiler (`jax.profiler.trace`, XLA's CPU
runtime asked for an event per operation, `--xla_cpu_enable_xprof_traceme`).
The trace's operation events (`jax.profiler.ProfileData`, named as the
compiled program's instructions) are summed by kind:

  - library: YNNPACK's or oneDNN's fusions (`ynn_fusion`, `onednn`): the
    matrix products and convolutions XLA hands to a library;
  - convolution, dot: those XLA computes itself;
  - layout: transposes, copies, slices, concatenations and broadcasts
    (an operation, or a fusion of them alone: `transpose_copy_fusion`);
  - reduce: reductions (`reduce` in the name, `reduce-window`);
  - scatter: scatters and select-and-scatters (a max pool's gradient);
  - elementwise: the rest, XLA's element-wise loops (its other fusions,
    `wrapped_` single operations).

Prints each kind's milliseconds a step and share, the slowest operations,
then `ratio profile_jax_<family>_<kind>_share` for each kind that ran and
`ratio profile_jax_<family>_op_share` (the operations' summed time over
the steps' wall time: time outside operations, or operations on both
cores at once, moves it off 1). `--tiny` profiles each family at the
tests' size: it checks that the bench runs; its figures mean nothing.
    python bench/profile_training_jax.py [--families musicnn,pons_vgg] [--steps 3]
"""

from __future__ import annotations

import argparse
import collections
import glob
import itertools
import os
import re
import sys
import tempfile
import time

KINDS = ("library", "convolution", "dot", "layout", "reduce", "scatter", "elementwise")
# thunks that run other operations inside them, which have events of their own
CONTAINERS = re.compile(r"(while|call|conditional)(\.\d+)?")
# an instruction XLA did not fuse keeps the name of the JAX operation that
# made it (conv_general_dilated.3, dot_general.7, stack.2)
KIND_OF_NAME = (("library", ("ynn_fusion", "onednn", "xnn_fusion")),
                ("scatter", ("scatter",)),
                ("convolution", ("convolution", "conv_general")),
                ("dot", ("dot",)),
                ("reduce", ("reduce",)))
# a fusion is named after what it fuses (transpose_copy_fusion,
# broadcast_add_fusion): layout where every part moves data alone
LAYOUT_PARTS = {"transpose", "copy", "concatenate", "stack", "slice", "pad", "broadcast",
                "reshape", "bitcast", "gather", "dynamic-slice", "dynamic-update-slice"}
SUFFIXES = re.compile(r"(^wrapped_)|((_fusion)?(\.\d+)?$)")


def kind_of(name: str) -> str:
    """The kind (KINDS) of the operation named `name`."""
    for kind, parts in KIND_OF_NAME:
        if any(part in name for part in parts):
            return kind
    if set(SUFFIXES.sub("", name).split("_")) <= LAYOUT_PARTS:
        return "layout"
    return "elementwise"


def operation_times(trace_dir: str) -> collections.Counter:
    """{operation name: seconds} summed over the trace's events of the
    compiled program's operations (those with an `hlo_op` statistic;
    containers left out)."""
    import jax

    times = collections.Counter()
    for path in glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True):
        for plane in jax.profiler.ProfileData.from_file(path).planes:
            for line in plane.lines:
                for event in line.events:
                    name = dict(event.stats).get("hlo_op")
                    if name and not CONTAINERS.fullmatch(name):
                        times[name] += event.duration_ns / 1e9
    return times


def profile(family: str, case, steps: int) -> tuple[collections.Counter, float]:
    """({operation: seconds over the `steps` profiled steps}, their wall seconds)."""
    import jax
    import keras
    from common import bench_model, random_batch

    from tagger.training.backend_jax import JaxBackend

    model = bench_model(family, case)
    optimizer = keras.optimizers.SGD(1e-3, momentum=0.9, nesterov=True)
    train = JaxBackend("default").train_function(model, optimizer, case.batch_size)
    batches = itertools.repeat(random_batch(family, case))
    float(train(batches, 1))  # trace and compile, waited for
    with tempfile.TemporaryDirectory(prefix="profile-jax-") as trace_dir:
        with jax.profiler.trace(trace_dir):
            start = time.perf_counter()
            float(train(batches, steps))  # waits for the last step
            seconds = time.perf_counter() - start
        times = operation_times(trace_dir)
    train.end_epoch()
    if not times:
        raise SystemExit("the trace holds no operation of the compiled program: this "
                         "jaxlib's CPU runtime wrote none (--xla_cpu_enable_xprof_traceme)")
    return times, seconds


def report(family: str, label: str, times: collections.Counter, seconds: float, steps: int,
           top: int) -> None:
    by_kind = collections.Counter()
    for name, spent in times.items():
        by_kind[kind_of(name)] += spent
    total = sum(by_kind.values())
    print(f"{label}: {steps} steps in {seconds:.2f} s, operations {total:.2f} s")
    for kind in KINDS:
        print(f"  {kind:12s} {1000 * by_kind[kind] / steps:10.1f} ms a step  "
              f"{by_kind[kind] / total:6.1%}")
    print(f"  the {top} slowest operations:")
    for name, spent in times.most_common(top):
        print(f"    {name:40s} {kind_of(name):12s} {1000 * spent / steps:10.1f} ms a step  "
              f"{spent / total:6.1%}")
    for kind in KINDS:
        if by_kind[kind]:
            print(f"ratio profile_jax_{family}_{kind}_share {by_kind[kind] / total:.4f}")
    print(f"ratio profile_jax_{family}_op_share {total / seconds:.4f}", flush=True)


def main(argv=None) -> int:
    if argv is None:  # run as a program: as a command under JAX starts
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from tagger.xla_cpu import start_as_a_command

        start_as_a_command()
    # XLA reads its flags once, when JAX first starts a backend: before Keras
    # (which imports JAX) is imported
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                               + " --xla_cpu_enable_xprof_traceme=true").strip()
    os.environ["KERAS_BACKEND"] = "jax"
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import common  # noqa: F401  the machine's line, first
    from bench_models import DEFAULT_FAMILIES

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--families", default=",".join(DEFAULT_FAMILIES),
                   help="comma-separated families (default: bench_models.py's)")
    p.add_argument("--steps", type=int, default=3, help="profiled steps per family")
    p.add_argument("--top", type=int, default=8, help="slowest operations listed per family")
    p.add_argument("--tiny", action="store_true",
                   help="each family at the tests' size: checks the bench runs")
    args = p.parse_args(argv)
    from tagger import backends
    from tagger.models import FAMILIES

    families = args.families.split(",")
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        p.error(f"not a family: {', '.join(unknown)}")
    if args.steps < 1:
        p.error("--steps must be at least 1")
    backends.quiet_tensorflow_for_keras()
    from common import tiny_case

    for family in families:
        case = tiny_case(family) if args.tiny else FAMILIES[family].bench[0]
        times, seconds = profile(family, case, args.steps)
        report(family, case.label, times, seconds, args.steps, args.top)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
