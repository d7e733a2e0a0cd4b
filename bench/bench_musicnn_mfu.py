"""How far MTT_musicnn's inference FLOP utilisation goes on this machine, and
where its time goes.

The keras engine's model (tag.py's default) runs the tagger's inference
form (`tagger.models.inference_graph`). Each row is model FLOP/s (its
FLOPs counted from the saved model's frozen graph, log-mel front end
included) divided by the FLOP/s of a large float32 matrix product measured
in the same run:
  - the saved graph and its inference form, at batch sizes 1, 8 and 32,
    with TensorFlow's oneDNN kernels, and the inference form with XLA;
  - the time and FLOPs of each part of both, each timed on its own (a
    model from the part's input tensors to its output): the log-mel front
    end, the two timbral and three temporal filter branches (convolution,
    batch norm, max over frequency), and the mid and back end; both
    counted with the saved graph's FLOPs (the polyphase form's zero
    weights are not work).
Ends with `ratio musicnn_best_infer_mfu VALUE`, the best inference MFU of
the rows. `--tiny` uses an untrained package Musicnn at 1/16 of its
filters and small matrix products: it checks that the bench runs; its
figures mean nothing.
    python bench/bench_musicnn_mfu.py [--model MTT_musicnn] [--batches 1,8,32]
                                      [--steps 5] [--tiny]
"""

from __future__ import annotations

import argparse
import os
import time

from common import untrained_pons_musicnn
from flops import MATMUL_SIZES, graph_flops, matmul_flops_per_second

TINY_MATMUL = dict(sizes=(256,), repeats=2)
BRANCHES = ("timbral1", "timbral2", "temporal1", "temporal2", "temporal3")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="MTT_musicnn")
    p.add_argument("--batches", default="1,8,32")
    p.add_argument("--steps", type=int, default=5, help="timed calls per row (the best kept)")
    p.add_argument("--tiny", action="store_true")
    return p.parse_args()


def best_seconds(fn, x, steps):
    fn(x)  # traced, compiled
    best = float("inf")
    for _ in range(steps):
        start = time.perf_counter()
        out = fn(x)
        (out[0] if isinstance(out, (list, tuple)) else out).numpy()
        best = min(best, time.perf_counter() - start)
    return best


def with_outputs(model):
    """(a functional copy of `model` calling the same layers, {layer name:
    that layer's output tensor in the copy}): the tensors of a rewritten
    model whose layers the saved model shares (their `output` is the saved
    graph's)."""
    import keras

    outputs = {}

    def call(layer, *args, **kwargs):
        outputs[layer.name] = layer(*args, **kwargs)
        return outputs[layer.name]

    copy = keras.models.clone_model(model, clone_function=lambda layer: layer,
                                    call_function=call)
    return copy, outputs


def parts(model, fast, fast_outputs):
    """{part: (input tensor, output tensor)} of `model` (the saved graph)
    and of its inference form `fast` (`with_outputs`' copy and tensors)."""
    def named(graph, name):
        return fast_outputs[name] if graph is fast else graph.get_layer(name).output

    found = {}
    for label, graph in (("saved", model), ("inference", fast)):
        image = named(graph, "input_bn")
        found[(label, "log-mel front end")] = (graph.input, named(graph, "log_mel"))
        for branch in BRANCHES:
            found[(label, branch)] = (image, named(graph, f"{branch}_squeeze"))
        found[(label, "mid and back end")] = (named(graph, "front_end"), graph.output)
    return found


def main():
    args = parse_args()
    from tagger import runtime
    runtime.quiet_tensorflow()
    import keras
    import numpy as np
    import tensorflow as tf

    from tagger.models.inference_graph import inference_model

    if args.tiny:
        model, _ = untrained_pons_musicnn(1 / 16)
        args.batches, args.steps = "1,2", 1
    else:
        from tagger.models.saved import load_tagger
        from tagger.pretrained.store import resolve_model

        model, _ = load_tagger(resolve_model(args.model, progress=False))
    fast, fast_outputs = with_outputs(inference_model(model))
    window = model.input.shape[1]
    matmul = TINY_MATMUL if args.tiny else dict(sizes=MATMUL_SIZES)
    peak = matmul_flops_per_second(**matmul)
    flops = graph_flops(model, (window,))
    print(f"{'untrained tiny pons_musicnn' if args.tiny else args.model}: "
          f"{flops / 1e9:.3f} GFLOP per window of {window} samples; float32 matrix products "
          f"{peak / 1e9:.1f} GFLOP/s; load average {os.getloadavg()[0]:.1f}", flush=True)
    rng = np.random.default_rng(0)
    best = 0.0
    for batch in (int(b) for b in args.batches.split(",")):
        x = (0.1 * rng.standard_normal((batch, window))).astype("float32")
        rows = (("saved graph, oneDNN", model, None), ("inference form, oneDNN", fast, None),
                ("inference form, XLA", fast, True))
        for label, graph, jit in rows:
            call = tf.function(lambda v, graph=graph: graph(v, training=False),
                               jit_compile=jit)
            seconds = best_seconds(call, x, args.steps)
            mfu = batch * flops / seconds / peak
            best = max(best, mfu)
            print(f"batch {batch:3d}  {label:24s} {batch / seconds:7.1f} windows/s  "
                  f"MFU {mfu:.3f}", flush=True)
    batch = int(args.batches.split(",")[-1])
    x = (0.1 * rng.standard_normal((batch, window))).astype("float32")
    inputs, useful = {}, {}
    for (label, part), (source, target) in parts(model, fast, fast_outputs).items():
        sub = keras.Model(source, target)
        graph = model if label == "saved" else fast
        if source is graph.input:
            value = x
        else:
            if source.name not in inputs:
                inputs[source.name] = np.asarray(keras.Model(graph.input, source)(x))
            value = inputs[source.name]
        seconds = best_seconds(tf.function(lambda v, sub=sub: sub(v, training=False)), value,
                               args.steps)
        if label == "saved":  # the useful work: the saved graph's (the other's zeros left out)
            useful[part] = graph_flops(sub, tuple(source.shape[1:]))
        part_flops = useful[part]
        print(f"{label:9s} {part:18s} {seconds / batch * 1e3:7.2f} ms per window  "
              f"{part_flops / 1e9:6.3f} GFLOP  MFU {batch * part_flops / seconds / peak:.3f}",
              flush=True)
    again = matmul_flops_per_second(**matmul)
    print(f"matrix products at the end: {again / 1e9:.1f} GFLOP/s")
    print(f"ratio musicnn_best_infer_mfu {best:.3f}")


if __name__ == "__main__":
    main()
