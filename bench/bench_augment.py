"""The augmentation chain's cost per batch under TensorFlow: the chain in
keras.ops (tagger.augment, threefry draws) against the chain in TensorFlow
ops that it replaced (tests/augment/tensorflow_reference.py, a frozen copy,
philox draws), at Won 2021's probabilities.

    python bench/bench_augment.py [--batch 16] [--samples 59049 220500] [--rounds 10]
                                  [--xla]

For each crop length, both chains are traced in a `tf.function` (the step
of a TensorFlow run without XLA; with `--xla` also XLA-compiled, a step
with `--xla on`), then run in turns, one batch of noise each per round, the
seed new every call. Per batch: the CPU seconds of this process (all its
threads; the median over the rounds), which other processes' load hardly
changes, and the wall-clock seconds (the fastest round, the least
disturbed). Ratio lines, keras.ops over TensorFlow ops:
`augment_cpu_keras_over_tf_<samples>` and `augment_wall_keras_over_tf_<samples>`
(`..._xla` for the compiled chains).
"""

from __future__ import annotations

import argparse
import statistics
import time

from common import ratio_line

SAMPLE_RATE = 22050


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--samples", type=int, nargs="+", default=[59049, 220500],
                   help="crop lengths (59049: a sample-level CNN's; 220500: 10 s)")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--xla", action="store_true", help="also time the XLA-compiled chains")
    args = p.parse_args(argv)
    if min(args.batch, args.rounds, *args.samples) < 1:
        p.error("--batch, --rounds and --samples take positive counts")
    return args


def chains(xla: bool):
    """{name: a compiled `(x, seed) -> augmented x`}: the keras.ops chain
    and the TensorFlow reference."""
    import tensorflow as tf

    from tagger.augment import augment
    from tests.augment import tensorflow_reference

    return {"keras": tf.function(lambda x, s: augment(x, s, SAMPLE_RATE), jit_compile=xla),
            "tf": tf.function(lambda x, s: tensorflow_reference.augment(x, s, SAMPLE_RATE),
                              jit_compile=xla)}


def time_in_turns(compiled: dict, x, rounds: int) -> dict:
    """{name: (median CPU seconds, fewest wall-clock seconds) of one batch},
    the chains taking turns."""
    import tensorflow as tf

    cpu = {name: [] for name in compiled}
    wall = {name: [] for name in compiled}
    for chain in compiled.values():  # traced (and compiled) before the clock
        chain(x, tf.constant([0, 0], tf.int64)).numpy()
    for i in range(rounds):
        for name, chain in compiled.items():
            seed = tf.constant([i + 1, 7], tf.int64)
            start, start_cpu = time.perf_counter(), time.process_time()
            chain(x, seed).numpy()
            cpu[name].append(time.process_time() - start_cpu)
            wall[name].append(time.perf_counter() - start)
    return {name: (statistics.median(cpu[name]), min(wall[name])) for name in compiled}


def main(argv=None):
    import numpy as np
    import tensorflow as tf

    args = parse_args(argv)
    modes = [False, True] if args.xla else [False]
    for samples in args.samples:
        rng = np.random.default_rng(samples)  # the cost does not depend on the audio
        x = tf.constant(0.1 * rng.normal(size=(args.batch, samples)).astype(np.float32))
        for xla in modes:
            suffix = f"{samples}_xla" if xla else f"{samples}"
            timed = time_in_turns(chains(xla), x, args.rounds)
            print(f"batch {args.batch} x {samples} samples{', XLA' if xla else ''}, per batch: "
                  f"keras.ops {1000 * timed['keras'][0]:.1f} ms CPU, "
                  f"{1000 * timed['keras'][1]:.1f} ms wall; TensorFlow ops "
                  f"{1000 * timed['tf'][0]:.1f} ms CPU, {1000 * timed['tf'][1]:.1f} ms wall")
            for i, measure in enumerate(("cpu", "wall")):
                ratio = timed["keras"][i] / timed["tf"][i]
                print(ratio_line(f"keras.ops chain / TensorFlow chain, {measure} ({suffix})",
                                 ratio, "<= 1.2"))
                print(f"ratio augment_{measure}_keras_over_tf_{suffix} {ratio:.3f}")


if __name__ == "__main__":
    main()
