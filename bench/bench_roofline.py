"""What a GPU can give each family's training step, on paper: the roofline.

For each family's first bench case (the batch bench_models.py trains), the
FLOPs and bytes moved by one training step (the gradient of the mean BCE:
`accelerator_jax.train_step_cost`, XLA's cost analysis of the program
compiled for the CPU, after fusion), its arithmetic intensity in bfloat16,
and the roofline bound on an NVIDIA H200: a step takes at least its FLOPs
over the datasheet's bfloat16 dense peak (`H200_FLOPS`) and at least its
bytes over the memory's bandwidth (`H200_BYTES_PER_S`). The bytes are
the float32 program's count halved: this CPU's compiler computes bfloat16
in float32, so its count of a bfloat16 program does not show the halving
the GPU's does. A step whose intensity is below the ridge (the peak over
the bandwidth, in FLOP per byte) is bound by memory bandwidth, and its MFU
cannot pass intensity / ridge.

    python bench/bench_roofline.py [--families samplecnn,transformer] [--tiny]

Each family ends with `ratio roofline_bound_<family>`: the highest MFU its
step can reach on the H200 (the GPU goal of a family is a fraction of this
bound, not of the peak). bench_gpu_jax.py prints the measured steps per
second over the bound at each batch it scans. `--tiny` builds each family
at the tests' size (default family: samplecnn): a check that it runs.
"""

from __future__ import annotations

import argparse
import importlib.util
import os

if __name__ == "__main__":  # a script: Keras on JAX (imported, the caller's Keras is)
    os.environ["KERAS_BACKEND"] = "jax"

from typing import NamedTuple  # noqa: E402

from common import bench_model, random_batch, tiny_case  # noqa: E402

from tagger.models import FAMILIES  # noqa: E402

# The H200's datasheet: bfloat16 dense tensor-core FLOP/s and HBM3e bytes/s.
H200_FLOPS = 989e12
H200_BYTES_PER_S = 4.8e12
BF16_BYTES_OF_F32 = 0.5


class Bound(NamedTuple):
    """A training step on the roofline: its FLOPs, bytes (bfloat16), the
    arithmetic intensity, the least seconds a step takes and the highest
    MFU it allows."""

    flops: float
    bytes: float

    @property
    def intensity(self) -> float:
        return self.flops / self.bytes

    @property
    def seconds(self) -> float:
        return max(self.flops / H200_FLOPS, self.bytes / H200_BYTES_PER_S)

    @property
    def mfu(self) -> float:
        return self.flops / self.seconds / H200_FLOPS

    @property
    def limit(self) -> str:
        return "compute" if self.flops / H200_FLOPS >= self.bytes / H200_BYTES_PER_S else "memory"


def step_bound(family: str, case) -> Bound:
    """The roofline bound of `family`'s `case` (a BenchCase) on the H200."""
    import accelerator_jax

    model = bench_model(family, case)
    flops, f32_bytes = accelerator_jax.train_step_cost(model, random_batch(family, case))
    return Bound(flops, f32_bytes * BF16_BYTES_OF_F32)


def describe(label: str, batch: int, bound: Bound) -> str:
    return (f"{label}, batch {batch}: {bound.flops / 1e9:.1f} GFLOP, {bound.bytes / 1e9:.2f} GB "
            f"in bfloat16, {bound.intensity:.1f} FLOP/byte (ridge "
            f"{H200_FLOPS / H200_BYTES_PER_S:.0f}); at most {1 / bound.seconds:.1f} steps/s, "
            f"MFU at most {bound.mfu:.3f}: {bound.limit}-bound")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--families", default=None,
                   help="comma-separated (default: every family; with --tiny, samplecnn)")
    p.add_argument("--tiny", action="store_true", help="each family at the tests' size")
    args = p.parse_args(argv)
    if importlib.util.find_spec("jax") is None:
        p.error("needs JAX: pip install -r requirements-jax.txt")
    families = (args.families.split(",") if args.families
                else ["samplecnn"] if args.tiny else list(FAMILIES))
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        p.error(f"not a family: {', '.join(unknown)}")
    print(f"H200: {H200_FLOPS / 1e12:.0f} TFLOP/s bfloat16 dense, "
          f"{H200_BYTES_PER_S / 1e12:.1f} TB/s", flush=True)
    for family in families:
        case = tiny_case(family) if args.tiny else FAMILIES[family].bench[0]
        bound = step_bound(family, case)
        print(describe(case.label, case.batch_size, bound))
        print(f"ratio roofline_bound_{family} {bound.mfu:.4f}", flush=True)


if __name__ == "__main__":
    main()
