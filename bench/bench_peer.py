"""Our training step against the original implementation's, on the same CPU.

For each family whose original code is public in Won et al. 2020's zoo
(minzwon/sota-music-tagging-models, `training/model.py`: FCN, Musicnn,
CRNN, the sample-level CNN and its SE form, the Short-chunk CNN and ResNet,
CNNSA, the Harmonic CNN), the original's PyTorch training step (its
solver's: BCE on the sigmoid scores, Adam at 1e-4 with weight decay 1e-4,
`model.train()`) and ours (bench_models.py's: train.py's step under
TensorFlow, with and without XLA as `--xla auto` chooses, and under Keras's
JAX backend), timed in turns on the same batch and input length, float32,
each measurement in a process of its own. The trainable counts are asserted
equal before anything is timed.

    python bench/bench_peer.py --peer-dir CLONE [--families fcn,short_cnn]
                               [--backends tensorflow,jax] [--steps 3] [--rounds 3]
                               [--peer-compile] [--tiny]

`--peer-dir`: a folder holding the original's `model.py` (and the
`modules.py` and `attention_modules.py` it imports), or a clone of the
repository (its `training/` folder is used). Its code is run, never copied
here. Where torchaudio is not installed, the three transforms the models
build come from bench/torchaudio_standin.py. `--peer-compile` times the
original under torch.compile instead of eagerly. `--tiny` builds each
family at the tests' size (the peer gets the same `n_channels`): with a
stand-in of the original's interface it checks that the bench runs.

Each family ends with `ratio peer_train_<family>_<backend>`: our training
steps per second over the original's (median over the rounds; goal >= 1),
`<backend>` `tf` or `jax`.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import math
import os
import statistics
import subprocess
import sys
import time
from typing import NamedTuple

from common import bench_model, random_batch, tf_steps_per_second, tiny_case

from tagger.models import FAMILIES
from tagger.xla_cpu import start_as_a_command


class Peer(NamedTuple):
    """The original's class in `model.py` and the arguments its solver
    builds it with."""

    name: str
    kwargs: dict


PEERS = {
    "fcn": Peer("FCN", {}),
    "musicnn": Peer("Musicnn", {"dataset": "mtat"}),
    "crnn": Peer("CRNN", {}),
    "sample_level": Peer("SampleCNN", {}),
    "sample_level_se": Peer("SampleCNNSE", {}),
    "short_cnn": Peer("ShortChunkCNN", {}),
    "short_res": Peer("ShortChunkCNN_Res", {}),
    "cnnsa": Peer("CNNSA", {}),
    "hcnn": Peer("HarmonicCNN", {}),
}
BACKENDS = {"tensorflow": "tf", "jax": "jax"}


def case_of(family: str, tiny: bool):
    return tiny_case(family) if tiny else FAMILIES[family].bench[0]


def peer_module_dir(peer_dir: str) -> str:
    """The folder holding the original's model.py: `peer_dir` itself or its
    `training/` (a clone); a clear error where neither has it."""
    for folder in (os.path.join(peer_dir, "training"), peer_dir):
        if os.path.isfile(os.path.join(folder, "model.py")):
            return os.path.abspath(folder)
    raise SystemExit(f"bench_peer.py: no model.py in {peer_dir} or {peer_dir}/training: "
                     "--peer-dir takes the original's code (a clone of "
                     "minzwon/sota-music-tagging-models, or a folder of its training/ files)")


def peer_model(family: str, peer_dir: str, tiny: bool):
    """The original's model of `family` (its class in `peer_dir`'s model.py),
    built as its solver builds it; with `tiny`, with our tiny case's
    `n_channels` where its class takes one."""
    import torchaudio_standin

    print(f"  {torchaudio_standin.install()}", file=sys.stderr)
    sys.path.insert(0, peer_module_dir(peer_dir))
    import model as peer_models

    peer = PEERS[family]
    cls = getattr(peer_models, peer.name, None)
    if cls is None:
        raise SystemExit(f"bench_peer.py: {peer_module_dir(peer_dir)}/model.py has no class "
                         f"{peer.name} (family {family})")
    kwargs = dict(peer.kwargs)
    arguments = inspect.signature(cls).parameters
    if tiny and "n_channels" in arguments:
        kwargs["n_channels"] = case_of(family, tiny).model_args["n_channels"]
    return cls(**kwargs)


def peer_steps_per_second(family: str, peer_dir: str, steps: int, tiny: bool,
                          compile_: bool) -> dict:
    """{"trainable", "steps_per_s"} of the original's training step on our
    bench batch: a first step, then `steps` timed (0: the count alone)."""
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(os.cpu_count())
    model = peer_model(family, peer_dir, tiny)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if not steps:
        return {"trainable": trainable, "steps_per_s": None}
    model.train()
    x, y = (torch.from_numpy(array) for array in random_batch(family, case_of(family, tiny)))
    optimizer = torch.optim.Adam(model.parameters(), 1e-4, weight_decay=1e-4)
    loss_of = torch.nn.BCELoss()
    forward = torch.compile(model) if compile_ else model

    def step():
        loss = loss_of(forward(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()  # the first step allocates (and with --peer-compile, compiles)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return {"trainable": trainable, "steps_per_s": steps / (time.perf_counter() - start)}


def our_steps_per_second(family: str, steps: int, tiny: bool, jit: bool) -> dict:
    """{"trainable", "steps_per_s"} of our training step (bench_models.py's)
    under the Keras backend this process was started with (`steps` 0: the
    count alone)."""
    from tagger import backends

    backends.quiet_tensorflow_for_keras()
    case = case_of(family, tiny)
    model = bench_model(family, case)
    trainable = sum(math.prod(weight.shape) for weight in model.trainable_weights)
    if not steps:
        return {"trainable": trainable, "steps_per_s": None}
    batch = random_batch(family, case)
    if backends.current() == "jax":
        import accelerator_jax
        rate = accelerator_jax.steps_per_second(model, batch, steps)
    else:
        rate = tf_steps_per_second(model, batch, steps, jit)
    return {"trainable": trainable, "steps_per_s": rate}


def measure(kind: str, family: str, args, steps: int | None = None) -> dict:
    """One measurement in a process of its own: `kind` "peer", "tensorflow",
    "tensorflow_xla" or "jax", `steps` timed (default: --steps; 0: the
    trainable count alone)."""
    steps = args.steps if steps is None else steps
    argv = [sys.executable, __file__, "--one", kind, family, "--steps", str(steps),
            "--peer-dir", args.peer_dir]
    argv += ["--tiny"] * args.tiny + ["--peer-compile"] * args.peer_compile
    backend = "jax" if kind == "jax" else "tensorflow"
    env = dict(os.environ, KERAS_BACKEND=backend)
    done = subprocess.run(argv, stdout=subprocess.PIPE, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"bench_peer.py: the {kind} measurement of {family} failed "
                         f"(exit {done.returncode})")
    return json.loads(done.stdout.splitlines()[-1])


def measure_family(family: str, args) -> dict:
    """{kind: [steps/s of each round]} of `family`, the kinds in turns each
    round; the trainable counts checked equal first, before anything is
    timed (a SystemExit if not)."""
    kinds = ["peer"]
    for backend in args.backends:
        kinds += {"tensorflow": ["tensorflow", "tensorflow_xla"] if args.xla
                  else ["tensorflow"], "jax": ["jax"]}[backend]
    counts = {kind: measure(kind, family, args, 0)["trainable"]
              for kind in ("peer", kinds[1])}
    if len(set(counts.values())) != 1:
        raise SystemExit(f"bench_peer.py: {family}'s trainable counts differ: {counts}")
    rates = {kind: [] for kind in kinds}
    for round_ in range(args.rounds):
        for kind in kinds:
            rates[kind].append(measure(kind, family, args)["steps_per_s"])
        print(f"{family} round {round_ + 1}: {counts['peer']:,} trainable; steps/s "
              + ", ".join(f"{kind} {rates[kind][-1]:.3f}" for kind in kinds), flush=True)
    return rates


def ratio_lines(family: str, rates: dict, backends) -> list[str]:
    """`ratio peer_train_<family>_<tf|jax>` lines: our median steps/s (under
    TensorFlow the faster of with and without XLA, as `--xla auto` picks)
    over the original's."""
    theirs = statistics.median(rates["peer"])
    lines = []
    for backend in backends:
        kinds = [kind for kind in rates if kind.startswith(backend)]
        ours = max(statistics.median(rates[kind]) for kind in kinds)
        lines.append(f"ratio peer_train_{family}_{BACKENDS[backend]} {ours / theirs:.3f}")
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer-dir", required=True,
                   help="the original's code: a clone or a folder holding its model.py")
    p.add_argument("--families", default=",".join(PEERS),
                   help=f"comma-separated, of {', '.join(PEERS)} (default: all)")
    p.add_argument("--backends", default="tensorflow,jax",
                   help="comma-separated Keras backends of ours: tensorflow, jax")
    p.add_argument("--steps", type=int, default=3, help="timed steps per measurement")
    p.add_argument("--rounds", type=int, default=3, help="measurements of each, in turns")
    p.add_argument("--no-xla", dest="xla", action="store_false",
                   help="time our TensorFlow step without XLA only")
    p.add_argument("--peer-compile", action="store_true",
                   help="time the original under torch.compile")
    p.add_argument("--tiny", action="store_true", help="each family at the tests' size")
    p.add_argument("--one", nargs=2, metavar=("KIND", "FAMILY"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.families = args.families.split(",")
    args.backends = args.backends.split(",")
    unknown = sorted({*args.families} - set(PEERS)) + sorted({*args.backends} - set(BACKENDS))
    if unknown:
        p.error(f"not a family or backend of this bench: {', '.join(unknown)}")
    if (args.steps < 1 and not args.one) or args.rounds < 1:
        p.error("--steps and --rounds take a positive number")
    missing = [name for name in ("torch", *(["jax"] if "jax" in args.backends else []))
               if importlib.util.find_spec(name) is None]
    if missing and not args.one:
        p.error(f"needs {' and '.join(missing)}: pip install -r requirements-torch.txt"
                + (" -r requirements-jax.txt" if "jax" in missing else ""))
    if not args.xla and "tensorflow" not in args.backends:
        p.error("--no-xla applies to the tensorflow backend, which --backends leaves out")
    if args.one:
        kind, family = args.one
        if kind == "jax" and argv is None:  # as a command under JAX starts
            start_as_a_command()
        figures = (peer_steps_per_second(family, args.peer_dir, args.steps, args.tiny,
                                         args.peer_compile) if kind == "peer"
                   else our_steps_per_second(family, args.steps, args.tiny,
                                             kind == "tensorflow_xla"))
        print(json.dumps(figures))
        return
    peer_module_dir(args.peer_dir)  # a wrong folder fails before anything runs
    print(f"peer: {os.path.abspath(args.peer_dir)}"
          + (", under torch.compile" if args.peer_compile else ", eager"), flush=True)
    for family in args.families:
        for line in ratio_lines(family, measure_family(family, args), args.backends):
            print(line, flush=True)


if __name__ == "__main__":
    main()
