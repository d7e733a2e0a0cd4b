"""How far the sample-level CNN's inference FLOP utilisation goes on this
machine, and what holds it there.

SE+multi at paper size, inference only. Each row is model FLOP/s divided by
the FLOP/s of a large float32 matrix product measured in the same run:
  - batch sizes (more work per call amortises per-op overhead);
  - XLA (`jit_compile`) against TensorFlow's oneDNN kernels;
  - the same network without its batch-norm layers: the most that folding
    batch norm into the convolutions could give;
  - the time share of the stem, each block and the head, each timed on its
    own (a model from the part's input tensors to its output), with oneDNN
    and with XLA, to show where the time goes.
Ends with `ratio samplecnn_best_infer_mfu VALUE`, the best inference MFU
of the rows with batch norm (bench_models.py's `mfu_infer_samplecnn` is
the one at batch 23, the paper's). `--tiny` builds the network at 1/16 of
its channels and measures the peak on small matrix products: it checks
that the bench runs; its figures mean nothing.
    python bench/bench_samplecnn_mfu.py [--batches 1,8,23,64] [--steps 5] [--tiny]
"""

from __future__ import annotations

import argparse
import os
import time

from common import ratio_line  # noqa: F401  (puts the repository on sys.path)
from flops import MATMUL_SIZES, graph_flops, matmul_flops_per_second

SEGMENT = 59049
TINY_WIDTH = 1 / 16
TINY_MATMUL = dict(sizes=(256,), repeats=2)


def build(without_batch_norm: bool, width: float = 1.0):
    """SE+multi at paper size (or `width` of its channels); optionally with
    every BatchNormalization replaced by the identity (same convolutions,
    same FLOPs less the element-wise normalisation)."""
    import keras

    import tagger.models.samplecnn as samplecnn
    from tagger.models import build_model

    def se_multi():
        return build_model("samplecnn", block="se", multi=True, num_tags=50,
                           input_length=SEGMENT, width=width)

    if not without_batch_norm:
        return se_multi()

    class Layers:
        def __getattr__(self, name):
            return getattr(keras.layers, name)

        @staticmethod
        def BatchNormalization(name=None):  # noqa: N802 (the layer's name)
            return keras.layers.Activation("linear", name=name)

    class Keras:
        layers = Layers()

        def __getattr__(self, name):
            return getattr(keras, name)

    samplecnn.keras = Keras()
    try:
        return se_multi()
    finally:
        samplecnn.keras = keras


def segments_per_second(model, batch: int, jit: bool, steps: int) -> float:
    return rate_of(model, batch, jit, steps, [(SEGMENT,)])


def layer_time_shares(model, batch: int, steps: int, jit: bool) -> list[tuple[str, float]]:
    """(part, seconds per segment) for the stem, each block and the head,
    each timed on its own as a model from its input tensors to its output:
    where the inference time goes."""
    import keras

    ends = ["stem_relu"] + [layer.name for layer in model.layers
                            if layer.name.endswith("_se_scale")]
    feeds = [model.input] + [model.get_layer(name).output for name in ends]
    multi = [model.get_layer(name).output for name in ends[-3:]]  # the aggregated blocks
    parts = [("stem", [model.input], feeds[1])]
    parts += [(name.removesuffix("_se_scale"), [feeds[i]], feeds[i + 1])
              for i, name in enumerate(ends[1:], start=1)]
    parts.append(("head (global pooling, dense layers)", multi, model.output))
    shares = []
    for label, inputs, output in parts:
        part = keras.Model(inputs, output)
        shapes = [tuple(t.shape[1:]) for t in inputs]
        shares.append((label, 1.0 / rate_of(part, batch, jit, steps, shapes)))
    return shares


def rate_of(model, batch: int, jit: bool, steps: int, shapes) -> float:
    """Inputs per second of `model` on random inputs of `shapes` (best call)."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    xs = [(0.1 * rng.standard_normal((batch, *shape))).astype("float32") for shape in shapes]
    predict = tf.function(lambda *v: model(list(v) if len(v) > 1 else v[0], training=False),
                          jit_compile=jit or None)
    predict(*xs)
    best = float("inf")
    for _ in range(steps):
        start = time.perf_counter()
        np.asarray(predict(*xs))
        best = min(best, time.perf_counter() - start)
    return batch / best


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", default="1,8,23,64", help="batch sizes (default: 1,8,23,64)")
    p.add_argument("--steps", type=int, default=5, help="timed calls per row (default: 5)")
    p.add_argument("--tiny", action="store_true",
                   help=f"1/{1 / TINY_WIDTH:g} of the channels, small matrix products: checks "
                        "that the bench runs (its figures mean nothing)")
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    batches = [int(b) for b in args.batches.split(",")]
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    matmul = TINY_MATMUL if args.tiny else dict(sizes=MATMUL_SIZES)
    width = TINY_WIDTH if args.tiny else 1.0
    peak = matmul_flops_per_second(**matmul)
    models = {"with batch norm": build(False, width), "batch norm removed": build(True, width)}
    flops = {label: graph_flops(m, (SEGMENT,)) for label, m in models.items()}
    print(f"FLOPs per segment: {flops['with batch norm'] / 1e9:.3f} G "
          f"({flops['batch norm removed'] / 1e9:.3f} G without batch norm)")
    best = 0.0
    for batch in batches:
        for jit in (False, True):
            for label, model in models.items():
                rate = segments_per_second(model, batch, jit, args.steps)
                mfu = rate * flops[label] / peak
                if label == "with batch norm":
                    best = max(best, mfu)
                print(f"batch {batch:3d} {'XLA   ' if jit else 'oneDNN'} {label:20s} "
                      f"{rate:7.1f} segments/s  MFU {mfu:.3f}", flush=True)
    # The peak again after the models ran: on a shared machine the larger
    # of the two is the fairer denominator (an MFU near or above 1 means the
    # convolutions run as fast as TensorFlow's matrix product here).
    later = matmul_flops_per_second(**matmul)
    sizes = " and ".join(map(str, matmul["sizes"]))
    print(f"float32 matrix products ({sizes} square): {peak / 1e9:.1f} GFLOP/s before, "
          f"{later / 1e9:.1f} after; MFU above uses the first")
    best *= peak / max(peak, later)
    batch = max(batches)
    print(f"\nwhere the time goes (batch {batch}; each part timed on its own):")
    shares = {jit: layer_time_shares(models["with batch norm"], batch, args.steps, jit)
              for jit in (False, True)}
    totals = {jit: sum(seconds for _, seconds in rows) for jit, rows in shares.items()}
    print(f"  {'part':40s} {'oneDNN':>8s} {'XLA':>8s}")
    for (name, plain), (_, fused) in zip(shares[False], shares[True]):
        print(f"  {name:40s} {100 * plain / totals[False]:7.1f}% "
              f"{100 * fused / totals[True]:7.1f}%")
    print(f"  {'sum of the parts, ms per segment':40s} {1e3 * totals[False]:8.2f} "
          f"{1e3 * totals[True]:8.2f}")
    print(f"\nbest inference MFU of the rows above: {best:.3f} "
          "(bench_models.py prints the ratio line mfu_infer_samplecnn at batch 23)")
    print(f"ratio samplecnn_best_infer_mfu {best:.3f}")


if __name__ == "__main__":
    main()
