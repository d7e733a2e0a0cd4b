"""What this machine's CPU offers, read from /proc/cpuinfo, and whether it
(or a GPU) computes bfloat16 faster than float32: shared by train.py's
run and the benches."""

from __future__ import annotations

import os

CPUINFO = "/proc/cpuinfo"

# The bfloat16 units of a CPU, fastest first: (/proc/cpuinfo flag, name).
BF16_UNITS = (("amx_bf16", "AMX-BF16 matrix units"),
              ("avx512_bf16", "AVX-512 BF16 instructions"))
GPU_BF16_CAPABILITY = (8, 0)  # NVIDIA's bfloat16 tensor cores start with Ampere


def cpu_model_and_flags(cpuinfo: str = CPUINFO) -> tuple[str, set]:
    """(model name, set of feature flags) of the first processor in
    `cpuinfo`; ("unknown CPU", empty set) where it cannot be read."""
    model, flags = "unknown CPU", set()
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model == "unknown CPU":
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model, flags


def available_cores() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def cpu_flags() -> set:
    """This CPU's feature flags (/proc/cpuinfo's names)."""
    return cpu_model_and_flags()[1]


def bf16_units(flags: set | None = None) -> list[str]:
    """The names of the bfloat16 units among `flags` (this CPU's by
    default), fastest first; empty where it has none."""
    flags = cpu_flags() if flags is None else flags
    return [name for flag, name in BF16_UNITS if flag in flags]


def gpu_capability() -> tuple | None:
    """The compute capability (major, minor) of the first GPU the backend
    computes on (TensorFlow's, or JAX's under JAX), where the work runs;
    an empty tuple where it does not report one; None where there is no
    GPU (the work runs on the CPU)."""
    from tagger import backends

    if backends.current() == "jax":
        import jax

        gpus = [device for device in jax.devices() if device.platform == "gpu"]
        if not gpus:
            return None
        text = str(getattr(gpus[0], "compute_capability", "") or "")  # "8.6" on CUDA
        try:
            return tuple(int(part) for part in text.split(".")) if text else ()
        except ValueError:
            return ()
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    details = tf.config.experimental.get_device_details(gpus[0]) or {}
    return tuple(details.get("compute_capability") or ())


def bfloat16_verdict(gpu_capability: tuple | None = None) -> tuple[bool, str]:
    """(whether bfloat16 computes faster than float32 here, why): on the
    GPU of compute capability `gpu_capability` where one is given (an empty
    tuple: a GPU that does not say), else on this CPU."""
    if gpu_capability is not None:
        if not gpu_capability:
            return True, "this GPU does not report its compute capability"
        capability = ".".join(map(str, gpu_capability))
        if tuple(gpu_capability) >= GPU_BF16_CAPABILITY:
            return True, f"this GPU (compute capability {capability}) has bfloat16 tensor cores"
        return False, (f"this GPU (compute capability {capability}) has no bfloat16 tensor "
                       "cores (they start at 8.0)")
    units = bf16_units()
    if units:
        return True, f"this CPU has {units[0]}"
    return False, "this CPU has neither AMX-BF16 matrix units nor AVX-512 BF16 instructions"


def bfloat16_line(gpu_capability: tuple | None = None) -> str:
    """The one line a run in mixed bfloat16 prints: which precision and
    why, or a warning where bfloat16 will be slower than float32."""
    fast, why = bfloat16_verdict(gpu_capability)
    if fast:
        return f"mixed bfloat16: {why}"
    return (f"warning: mixed bfloat16 will be slower than float32 here: {why}; "
            "the run goes on in bfloat16 as asked (--mixed-precision off trains faster)")
