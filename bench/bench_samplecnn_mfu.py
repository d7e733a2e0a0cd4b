"""How far the sample-level CNN's inference FLOP utilisation goes on this
machine, and what holds it there.

SE+multi at paper size, inference only. Each row is model FLOP/s divided by
the FLOP/s of a large float32 matrix product measured in the same run:
  - batch sizes (more work per call amortises per-op overhead);
  - XLA (`jit_compile`) against TensorFlow's oneDNN kernels;
  - the same network without its batch-norm layers: the most that folding
    batch norm into the convolutions could give;
  - the time share of each layer kind (stem, block convolutions, the rest),
    from timing truncated models, to show where the time goes.
    python bench/bench_samplecnn_mfu.py [--batches 1,8,23,64] [--steps 5]
"""

from __future__ import annotations

import argparse
import os
import time

from common import ratio_line  # noqa: F401  (puts the repository on sys.path)
from flops import graph_flops, matmul_flops_per_second

SEGMENT = 59049


def build(without_batch_norm: bool):
    """SE+multi at paper size; optionally with every BatchNormalization
    replaced by the identity (same convolutions, same FLOPs less the
    element-wise normalisation)."""
    import keras

    import tagger.models.samplecnn as samplecnn
    from tagger.models import build_model

    if not without_batch_norm:
        return build_model("samplecnn", block="se", multi=True, num_tags=50,
                           input_length=SEGMENT)

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
        return build_model("samplecnn", block="se", multi=True, num_tags=50,
                           input_length=SEGMENT)
    finally:
        samplecnn.keras = keras


def segments_per_second(model, batch: int, jit: bool, steps: int) -> float:
    import numpy as np
    import tensorflow as tf

    x = (0.1 * np.random.default_rng(0).standard_normal((batch, SEGMENT))).astype("float32")
    predict = tf.function(lambda v: model(v, training=False), jit_compile=jit or None)
    predict(x).numpy()
    best = float("inf")
    for _ in range(steps):
        start = time.perf_counter()
        predict(x).numpy()
        best = min(best, time.perf_counter() - start)
    return batch / best


def layer_time_shares(model, batch: int, steps: int) -> list[tuple[str, float]]:
    """Seconds per segment up to the end of the stem and of each block
    (truncated models), as increments: where the inference time goes."""
    import keras

    ends = ["stem_relu"] + [layer.name for layer in model.layers
                            if layer.name.endswith("_se_scale")]
    previous, shares = 0.0, []
    for name in ends:
        truncated = keras.Model(model.input, model.get_layer(name).output)
        seconds = 1.0 / segments_per_second(truncated, batch, False, steps)
        shares.append((name.removesuffix("_se_scale").removesuffix("_relu"),
                        seconds - previous))
        previous = seconds
    total = 1.0 / segments_per_second(model, batch, False, steps)
    shares.append(("head (global pooling, dense layers)", total - previous))
    return shares


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batches", default="1,8,23,64", help="batch sizes (default: 1,8,23,64)")
    p.add_argument("--steps", type=int, default=5, help="timed calls per row (default: 5)")
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    batches = [int(b) for b in args.batches.split(",")]
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    peak = matmul_flops_per_second()
    models = {"with batch norm": build(False), "batch norm removed": build(True)}
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
    # of the two is the fairer denominator (an MFU above 1 means the load
    # changed between the measurements; rerun on an idle machine).
    later = matmul_flops_per_second()
    print(f"float32 matrix product (2048 x 2048): {peak / 1e9:.1f} GFLOP/s before, "
          f"{later / 1e9:.1f} after; MFU above uses the first")
    best *= peak / max(peak, later)
    batch = max(batches)
    shares = layer_time_shares(models["with batch norm"], batch, args.steps)
    total = sum(seconds for _, seconds in shares)
    print(f"\nwhere the time goes (batch {batch}, oneDNN):")
    for name, seconds in shares:
        print(f"  {name:40s} {100 * seconds / total:5.1f}%")
    print()
    print(f"ratio mfu_infer_samplecnn {best:.3f}")


if __name__ == "__main__":
    main()
