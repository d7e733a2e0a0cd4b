"""Where the time of one training step goes, family by family.

For each family (bench_models' default list; `--families` to pick) at its
first bench case: the training step of the project (`make_train_function`,
SGD with Nesterov momentum, without XLA, whose compiled clusters hide the
layers' names) is run under TensorFlow's profiler for `--steps` steps, and
the trace's op events (`<scope>/<op>:<OpType>`) are grouped by the Keras
layer that made them (of the step's `training_model` form), read from the
op's name scope, into kinds: the front
end (the log-mel layer), convolution, batch norm, pooling, dense,
attention, activation (ReLU and the like, also where a layer applies its
own), the other layers (reshapes, concatenations, additions, dropout), the
loss, the optimiser's update and other ops; each kind's forward and
backward (`gradient_tape/`) time per step. Device time is the time during
which some op runs (the union of the op events, on whichever thread); host
overhead is the step's wall time less it. The input pipeline is timed on
its own: `reader.train_dataset` batches of the family's window, read from
records of synthetic audio built at its sample rate and segment length.

Prints a table per family, then `ratio profile_<family>_<kind>_share`
(each kind's op time over all op time; only the kinds that ran),
`ratio profile_<family>_host_share` (host overhead over step time) and
`ratio profile_<family>_input_share` (a batch's reading over step time).
`--tiny` profiles each family at the size the tests build it (batches of
2, a few short clips): it checks that the bench runs; its figures mean
nothing. `--precision bfloat16` profiles the step in mixed bfloat16 (as
`train.py --mixed-precision bfloat16` trains), its ratio names
`profile_<family>_bf16_...`.
    python bench/profile_training.py [--families musicnn,samplecnn] [--steps 5]
                                     [--precision bfloat16] [--tiny]
"""

from __future__ import annotations

import argparse
import collections
import glob
import os
import re
import tempfile
import time

from bench_models import DEFAULT_FAMILIES, PRECISIONS
from common import bench_model, random_batch, synthetic_data, tiny_case

OP_EVENT = re.compile(r"^([\w./-]+):(_?[A-Z]\w*)$")  # "model/conv/Conv2D:Conv2D"
ACTIVATION_OPS = {"Relu", "ReluGrad", "Relu6", "Relu6Grad", "Elu", "EluGrad", "Selu",
                  "SeluGrad", "Sigmoid", "SigmoidGrad", "Tanh", "TanhGrad", "Softplus",
                  "SoftplusGrad", "Gelu", "Erf", "LeakyRelu", "LeakyReluGrad"}
# Keras layer class names -> kind, the first match in order
LAYER_KINDS = (("LogMel", "front_end"), ("STFT", "front_end"), ("Attention", "attention"),
               ("Transformer", "attention"), ("Encoder", "attention"), ("Conv", "convolution"),
               ("NormedStem", "convolution"),
               ("BatchNorm", "batch_norm"), ("NormalizedImage", "batch_norm"),
               ("NormThenMax", "batch_norm"),
               ("Pool", "pooling"), ("Dense", "dense"),
               ("ReLU", "activation"), ("Activation", "activation"),
               ("Softmax", "activation"))
KINDS = ("front_end", "convolution", "batch_norm", "pooling", "dense", "attention",
         "activation", "other_layers", "loss", "optimiser", "other")
TINY_CLIPS, TINY_SECONDS = 12, 7.0
CLIPS, SECONDS = 24, 12.0


def layer_kind(layer) -> str:
    name = type(layer).__name__
    return next((kind for part, kind in LAYER_KINDS if part in name), "other_layers")


def op_kind(scope: str, op_type: str, model, optimiser_scope: str, kinds: dict) -> tuple:
    """(kind, layer name or '', backward) of the op `scope:op_type`."""
    backward = scope.startswith("gradient_tape/")
    parts = scope.removeprefix("gradient_tape/").split("/")
    if re.fullmatch(rf"{re.escape(model.name)}(_\d+)?", parts[0]) and len(parts) > 1:
        layer = parts[1] if parts[1] in kinds else re.sub(r"_\d+$", "", parts[1])
        if layer in kinds:
            kind = "activation" if op_type in ACTIVATION_OPS else kinds[layer]
            return kind, layer, backward
    if parts[0].lower().startswith(optimiser_scope) or op_type.startswith("ResourceApply"):
        return "optimiser", "", False
    if "loss" in parts[0] or "crossentropy" in parts[0]:
        return "loss", "", backward
    return "other", "", backward


def op_events(logdir: str):
    """[(name, start_ps, end_ps)] of the op events of the trace in `logdir`."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    path = sorted(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True))[-1]
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    events = []
    for plane in space.planes:
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            if line.name.startswith("tf_data"):
                continue  # the input pipeline is timed on its own
            for event in line.events:
                start = line.timestamp_ns * 1000 + event.offset_ps
                events.append((names.get(event.metadata_id, ""), start,
                               start + event.duration_ps))
    return [e for e in events if OP_EVENT.match(e[0])]


def busy_seconds(events) -> float:
    """Seconds during which at least one of `events` runs (their union)."""
    total, end = 0, None
    for _, start, stop in sorted(events, key=lambda e: e[1]):
        if end is None or start > end:
            total += stop - start
            end = stop
        elif stop > end:
            total += stop - end
            end = stop
    return total / 1e12


def records_for(spec, work: str, tiny: bool) -> str:
    """Raw int16 records of synthetic clips at the family's sample rate and
    segment length, built once per pair in `work`."""
    from tagger.config import AudioConfig, BuildConfig
    from tagger.datasets.build import build
    from tagger.datasets.mtt import SOURCE, MttSettings

    pre = spec.preprocessor
    out = os.path.join(work, f"records_{pre.sample_rate}_{pre.segment_length}")
    if not os.path.exists(out):
        clips, seconds = (TINY_CLIPS, TINY_SECONDS) if tiny else (CLIPS, SECONDS)
        seconds = max(seconds, 2.2 * pre.segments * pre.segment_length / pre.sample_rate)
        source = synthetic_data(os.path.join(work, f"audio_{seconds:g}"), clips, seconds)
        build(SOURCE, MttSettings(), BuildConfig(
            data_dir=source, out_dir=out, workers=os.cpu_count(), progress=False,
            audio=AudioConfig(pre.sample_rate, pre.segment_length)))
    return out


def input_seconds(data_dir: str, batch: int, window_segments: int, batches: int) -> float:
    """Seconds per training batch read from the records, the mean of
    `batches` read one after another (more than the reader prefetches)."""
    from tagger.records import reader

    it = iter(reader.train_dataset(data_dir, batch, window_segments=window_segments,
                                   seed=0, as_stored=True))
    next(it)  # the pipeline started
    start = time.perf_counter()
    for _ in range(batches):
        next(it)
    return (time.perf_counter() - start) / batches


def profile(family: str, steps: int, tiny: bool, work: str, policy: str = "float32") -> dict:
    """{kind: [forward, backward] seconds per step}, {layer: seconds per
    step}, {op type: seconds per step} of the ops of no layer, step seconds,
    device seconds, input seconds of `family`."""
    import keras
    import tensorflow as tf

    from tagger.models import FAMILIES
    from tagger.models.training_graph import training_model
    from tagger.training.trainer import make_train_function

    spec = FAMILIES[family]
    case = tiny_case(family) if tiny else spec.bench[0]
    pre, batch = spec.preprocessor, case.batch_size
    keras.utils.set_random_seed(0)
    model = bench_model(family, case, policy)
    optimiser = keras.optimizers.SGD(1e-3, momentum=0.9, nesterov=True)
    step = make_train_function(model, optimiser, tf.distribute.get_strategy(), batch)
    x, y = random_batch(family, case)
    iterator = iter(tf.data.Dataset.from_tensors((x, y)).repeat())
    float(step(iterator, 1))  # traced
    float(step(iterator, 1))
    logdir = tempfile.mkdtemp(dir=work, prefix=f"trace_{family}_")
    tf.profiler.experimental.start(logdir)
    start = time.perf_counter()
    for _ in range(steps):
        float(step(iterator, 1))
    step_seconds = (time.perf_counter() - start) / steps
    tf.profiler.experimental.stop()
    events = op_events(logdir)
    # the layers the step runs: the model's and those of its training form
    kinds = {layer.name: layer_kind(layer) for layer in training_model(model).layers}
    by_kind = collections.defaultdict(lambda: [0.0, 0.0])
    by_layer, unscoped = collections.Counter(), collections.Counter()
    for name, begin, end in events:
        scope, op_type = OP_EVENT.match(name).groups()
        kind, layer, backward = op_kind(scope, op_type, model, optimiser.name.lower(), kinds)
        seconds = (end - begin) / 1e12 / steps
        by_kind[kind][backward] += seconds
        if layer:
            by_layer[layer] += seconds
        elif kind == "other":
            unscoped[op_type] += seconds
    data = records_for(spec, work, tiny)
    read = input_seconds(data, batch, pre.segments, 2 if tiny else 20)
    keras.backend.clear_session()
    return dict(batch=batch, label=case.label, by_kind=by_kind, by_layer=by_layer,
                unscoped=unscoped,
                step=step_seconds, device=busy_seconds(events) / steps, input=read)


def report(family: str, figures: dict, top: int) -> None:
    step, by_kind = figures["step"], figures["by_kind"]
    ops = sum(sum(pair) for pair in by_kind.values())
    host = max(step - figures["device"], 0.0)
    print(f"\n{figures['label']}, batch {figures['batch']}: step {step * 1e3:.1f} ms, "
          f"ops {ops * 1e3:.1f} ms on {figures['device'] * 1e3:.1f} ms of device time, "
          f"host overhead {host * 1e3:.1f} ms")
    print(f"  {'kind':14s} {'forward ms':>10s} {'backward ms':>11s} {'share':>6s}")
    for kind in KINDS:
        forward, backward = by_kind.get(kind, (0.0, 0.0))
        if forward + backward > 0:
            print(f"  {kind:14s} {forward * 1e3:10.2f} {backward * 1e3:11.2f} "
                  f"{(forward + backward) / ops:6.3f}")
    print(f"  input pipeline: {figures['input'] * 1e3:.2f} ms a batch read from records "
          f"({figures['input'] / step:.3f} of the step, on threads of its own)")
    layers = ", ".join(f"{name} {seconds * 1e3:.1f}"
                       for name, seconds in figures["by_layer"].most_common(top))
    print(f"  slowest layers (ms, forward + backward): {layers}")
    other = ", ".join(f"{name} {seconds * 1e3:.1f}"
                      for name, seconds in figures["unscoped"].most_common(3))
    print(f"  slowest op types of 'other' (ms): {other}")
    for kind in KINDS:
        total = sum(by_kind.get(kind, (0.0, 0.0)))
        if total > 0:
            print(f"ratio profile_{family}_{kind}_share {total / ops:.4g}")
    print(f"ratio profile_{family}_host_share {max(host / step, 1e-6):.4g}")
    print(f"ratio profile_{family}_input_share {figures['input'] / step:.4g}", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--families", default=",".join(DEFAULT_FAMILIES),
                   help=f"comma-separated families (default: {','.join(DEFAULT_FAMILIES)})")
    p.add_argument("--steps", type=int, default=5, help="profiled steps per family")
    p.add_argument("--top", type=int, default=8, help="slowest layers listed per family")
    p.add_argument("--precision", choices=tuple(PRECISIONS), default="float32",
                   help="the layers' compute type (default: float32)")
    p.add_argument("--tiny", action="store_true",
                   help="each family at the tests' size: checks that the bench runs (its "
                        "figures mean nothing)")
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from tagger.models import FAMILY_NAMES

    families = args.families.split(",")
    unknown = sorted(set(families) - set(FAMILY_NAMES))
    if unknown:
        p.error(f"unknown families {', '.join(unknown)}; valid: {', '.join(FAMILY_NAMES)}")
    with tempfile.TemporaryDirectory(prefix="profile_training_") as work:
        for family in families:
            name = family if args.precision == "float32" else f"{family}_bf16"
            report(name, profile(family, args.steps, args.tiny, work,
                                 PRECISIONS[args.precision]), args.top)


if __name__ == "__main__":
    main()
