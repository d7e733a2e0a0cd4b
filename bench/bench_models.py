"""Training throughput, inference real-time factor and FLOP utilisation of
the model families at paper size.

For each model: training segments/s (the family's record segments: 2.68 s,
FCN's 29 s; one optimiser step per batch through the project's custom
training step) and inference real-time factor (seconds of audio tagged per
second), with and without XLA (`--jit-compile`), each also as a ratio to
the first row (SE+multi without XLA) measured in the same run. FLOPs per
window are counted from the frozen inference graph (bench/flops.py; checked
against a hand count for the sample-level CNN); model FLOP utilisation (MFU)
is the achieved FLOP/s (a training step counted as three forward passes)
divided by the FLOP/s of a large float32 matrix product measured in the same
run. Every figure is printed as soon as it is measured, so a stopped run
still reports what it measured.

bfloat16 beside float32: the bench names the CPU's bfloat16 units (AMX-BF16,
AVX-512 BF16, or none), measures a bfloat16 matrix product beside the
float32 one (`ratio matmul_bf16_over_f32`), and trains and runs each
family's first case once more in mixed bfloat16 (as `train.py
--mixed-precision bfloat16` does, without XLA): its row gives MFU against
the bfloat16 peak and against float32's, and `ratio
train_bf16_speedup_<family>` its training segments/s over the float32
row's, measured in the same run. `--no-bf16` skips them.

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
                                 [--no-jit] [--no-bf16] [--tiny]
"""

from __future__ import annotations

import argparse
import time

from common import gpu_memory_as_needed
from flops import (
    MATMUL_SIZES,
    TRAIN_FORWARD_RATIO,
    graph_flops,
    matmul_flops_per_second,
    samplecnn_flops,
)

from tagger.cpu_features import bf16_units

OWN_FAMILIES = ("samplecnn", "multiscale", "self_attention", "transformer")
DEFAULT_FAMILIES = (*OWN_FAMILIES, "musicnn", "pons_musicnn", "pons_vgg")
PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16"}  # Keras's dtype policies

TINY_BATCH = 2
TINY_MATMUL = dict(sizes=(256,), repeats=2)


def tiny_case(family):
    """One case of `family` at the size the tests build it (`FamilySpec.tiny`)."""
    from tagger.models import FAMILIES
    from tagger.models.family_spec import BenchCase

    spec = FAMILIES[family]
    return BenchCase(f"{family} (tiny)", dict(spec.tiny), TINY_BATCH,
                     spec.bench[0].hand_flops)


def bench_model(family, case, policy="float32"):
    """`family`'s bench `case` (a BenchCase) built for 50 tags, a raw-waveform
    family for its whole window, its layers under the Keras dtype `policy`."""
    import keras

    from tagger.models import family as family_spec

    spec = family_spec(family)
    kwargs = dict(case.model_args, num_tags=50)
    if spec.raw_waveform:
        kwargs["input_length"] = spec.preprocessor.segments * spec.preprocessor.segment_length
    keras.mixed_precision.set_global_policy(policy)
    try:
        return spec.build(**kwargs)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def random_batch(family, case):
    """(x, y) of one training batch of `case`: quiet noise windows
    (batch, window samples) and 0/1 tags (batch, 50), float32, seed 0."""
    import numpy as np

    from tagger.models import family as family_spec

    pre = family_spec(family).preprocessor
    rng = np.random.default_rng(0)
    x = 0.1 * rng.standard_normal((case.batch_size, pre.segments * pre.segment_length))
    return x.astype("float32"), (rng.random((case.batch_size, 50)) < 0.1).astype("float32")


def measure(family, case, steps, jit, precision="float32"):
    """(parameters, training segments/s, inference x real time, FLOPs per
    segment, seconds per segment) of `family`'s `case`, its training steps
    XLA-compiled with `jit`, its layers computing in `precision` (float32,
    or bfloat16 as `train.py --mixed-precision bfloat16` runs them)."""
    import keras
    import tensorflow as tf

    from tagger.models import family as family_spec
    from tagger.models.inference_graph import inference_model
    from tagger.training.trainer import make_train_function

    spec = family_spec(family)
    batch, pre = case.batch_size, spec.preprocessor
    window, segment, rate = pre.segments, pre.segment_length, pre.sample_rate  # FCN: 29 s, 16 kHz
    model = bench_model(family, case, PRECISIONS[precision])
    strategy = tf.distribute.get_strategy()
    optimizer = keras.optimizers.SGD(1e-3, momentum=0.9, nesterov=True)
    step = make_train_function(model, optimizer, strategy, batch, jit_compile=jit)
    x, y = random_batch(family, case)
    iterator = iter(tf.data.Dataset.from_tensors((x, y)).repeat())
    loss = step(iterator, 1)  # trace and compile
    float(loss)  # a device runs the steps asynchronously: wait for it
    start = time.perf_counter()
    for _ in range(steps):
        loss = step(iterator, 1)
    float(loss)
    train_rate = steps * batch * window / (time.perf_counter() - start)
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


def measure_in_a_process(family, index, steps, jit, tiny, precision="float32", timeout=None):
    """`measure` of the family's bench case `index` (with `tiny`, at the
    tests' size) in a process of its own (the memory of one model's training
    is given back when it exits): its figures and the process's peak
    resident memory in bytes. The process is killed after `timeout` seconds
    (subprocess.TimeoutExpired)."""
    import json
    import resource
    import subprocess
    import sys

    done = subprocess.run([sys.executable, __file__, "--one", family, str(index), str(steps),
                           "1" if jit else "0", "1" if tiny else "0", precision],
                          stdout=subprocess.PIPE, text=True, check=True, timeout=timeout)
    lines = done.stdout.splitlines()
    for line in lines[:-1]:
        if not line.startswith("CPU: "):  # the machine, printed once by this process
            print(line, flush=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return json.loads(lines[-1]), peak


def measure_one(family, index, steps, jit, tiny, precision):
    """The body of `--one`: one measurement, its figures as a JSON line."""
    import json

    from tagger.runtime import quiet_tensorflow

    quiet_tensorflow()  # before a model build imports Keras
    from tagger.models import FAMILIES

    case = tiny_case(family) if tiny else FAMILIES[family].bench[index]
    print(json.dumps(measure(family, case, steps, jit, precision)))


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
    p.add_argument("--tiny", action="store_true",
                   help="each family at the tests' size: checks that the bench runs (its "
                        "figures mean nothing)")
    # FAMILY INDEX STEPS JIT TINY PRECISION
    p.add_argument("--one", nargs=6, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        family, index, steps, jit, tiny, precision = args.one
        return measure_one(family, int(index), int(steps), jit == "1", tiny == "1", precision)
    from tagger.models import FAMILIES, FAMILY_NAMES

    if args.zoo:
        families = FAMILY_NAMES
    else:
        families = tuple(args.families.split(",")) if args.families else DEFAULT_FAMILIES
        unknown = sorted(set(families) - set(FAMILY_NAMES))
        if unknown:
            p.error(f"unknown families {', '.join(unknown)}; valid: {', '.join(FAMILY_NAMES)}")
    gpu_memory_as_needed()  # this process's matrix products leave it to the measurements
    units = bf16_units()
    print(f"bfloat16 units of this CPU: {', '.join(units) if units else 'none'}", flush=True)
    matmul = TINY_MATMUL if args.tiny else dict(sizes=MATMUL_SIZES)
    sizes = " and ".join(map(str, matmul["sizes"]))
    peak = matmul_flops_per_second(**matmul)
    print(f"float32 matrix products ({sizes} square): {peak / 1e9:.1f} GFLOP/s, "
          "the peak the MFU figures are measured against", flush=True)
    peaks = {"float32": peak}
    if not args.no_bf16:
        peaks["bfloat16"] = matmul_flops_per_second(**matmul, dtype="bfloat16")
        print(f"bfloat16 matrix products ({sizes} square): {peaks['bfloat16'] / 1e9:.1f} "
              "GFLOP/s, the peak the bfloat16 rows' MFU figures are measured against",
              flush=True)
        print(f"ratio matmul_bf16_over_f32 {peaks['bfloat16'] / peak:.3f}", flush=True)
    base = None
    for family in families:
        cases = (tiny_case(family),) if args.tiny else FAMILIES[family].bench
        for index, case in enumerate(cases):
            runs = [(False, "float32")] + ([] if args.no_jit else [(True, "float32")])
            if index == 0 and not args.no_bf16:
                runs.append((False, "bfloat16"))  # beside the float32 row without XLA
            float32_train = None
            for jit, precision in runs:
                (params, train_rate, realtime, flops, seconds), memory = measure_in_a_process(
                    family, index, args.steps, jit, args.tiny, precision)
                mfu = {name: (realtime / seconds * flops / value,
                              train_rate * TRAIN_FORWARD_RATIO * flops / value)
                       for name, value in peaks.items()}
                infer_mfu, train_mfu = mfu[precision]
                label = (case.label + (" +XLA" if jit else "")
                         + (" bf16" if precision == "bfloat16" else ""))
                base = base or (label, train_rate, realtime)
                against_f32 = (f" (float32's peak: inference {mfu['float32'][0]:.3f} training "
                               f"{mfu['float32'][1]:.3f})" if precision == "bfloat16" else "")
                print(f"{label:30s} {params / 1e6:6.2f}M params  batch {case.batch_size:3d}  "
                      f"train {train_rate:7.1f} segments/s  inference {realtime:7.1f}x real "
                      f"time  {flops / 1e9:6.3f} GFLOP/segment  MFU inference {infer_mfu:.3f} "
                      f"training {train_mfu:.3f}{against_f32}  (to {base[0]}: train "
                      f"{train_rate / base[1]:.2f}, inference {realtime / base[2]:.2f}); "
                      f"peak memory of the measurements so far {memory / 2**30:.1f} GB",
                      flush=True)
                if index == 0 and precision == "float32":
                    print(f"ratio mfu_infer_{family}{'_xla' if jit else ''} {infer_mfu:.3f}")
                    print(f"ratio mfu_train_{family}{'_xla' if jit else ''} {train_mfu:.3f}",
                          flush=True)
                if precision == "float32" and not jit:
                    float32_train = train_rate
                if precision == "bfloat16":
                    print(f"ratio train_bf16_speedup_{family} "
                          f"{train_rate / float32_train:.3f}", flush=True)
    again = matmul_flops_per_second(**matmul)
    print(f"matrix products at the end: {again / 1e9:.1f} GFLOP/s (MFU above x "
          f"{peak / again:.3f} against this peak)")


if __name__ == "__main__":
    main()
