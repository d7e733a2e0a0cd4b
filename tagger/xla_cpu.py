"""XLA's own matrix products in a CPU program, where they were measured
faster than YNNPACK's, and its operations in an order for memory.

jaxlib 0.10's XLA hands each matrix product of a CPU program to YNNPACK.
On an AVX-512 CPU without AMX, the training forms' tall products (a
convolution's column patches times its kernel) ran at two thirds of the
speed of XLA's own there, and most families' JAX training steps took less
time with XLA's own (docs/jax.md, "XLA's own matrix products"). So a
process under JAX on such a CPU starts with `XLA_FLAGS=
--xla_cpu_experimental_ynn_fusion_type=reduce` (YNNPACK keeps the
reductions). Nothing is set where it was not measured (a CPU with AMX or
without AVX-512; another jaxlib series, whose XLA may not know the flag
and would stop the process), nor where XLA_FLAGS names the flag already.

jaxlib 0.10's XLA orders a CPU program's operations for running
independent ones at once, which keeps more buffers live: a training
step's temporary memory was up to a seventh larger (docs/jax.md,
"Nothing held that can be made again"). So on any CPU, with that jaxlib,
the process starts with `--xla_cpu_enable_concurrency_optimized_scheduler
=false` too, unless XLA_FLAGS names that flag.
"""

from __future__ import annotations

import os

FLAG = "--xla_cpu_experimental_ynn_fusion_type"
SETTING = f"{FLAG}=reduce"
SCHEDULER_FLAG = "--xla_cpu_enable_concurrency_optimized_scheduler"
SCHEDULER_SETTING = f"{SCHEDULER_FLAG}=false"
JAXLIB_SERIES = "0.10."  # the jaxlib versions whose XLA was measured with the settings


def settings_environment(environ, jaxlib: str | None, cpu_flags: set) -> dict | None:
    """`environ` with the settings that apply added to its XLA_FLAGS, or
    None where none does. None applies where `jaxlib` (its version; None:
    not installed) is not of JAXLIB_SERIES. SETTING applies on a CPU
    (`cpu_flags`, /proc/cpuinfo's words) with avx512f and without
    amx_tile, SCHEDULER_SETTING on any; neither where XLA_FLAGS names
    its flag already."""
    if jaxlib is None or not jaxlib.startswith(JAXLIB_SERIES):
        return None
    flags = environ.get("XLA_FLAGS", "")
    measured = "avx512f" in cpu_flags and "amx_tile" not in cpu_flags
    added = [setting for setting, flag, applies in ((SETTING, FLAG, measured),
                                                     (SCHEDULER_SETTING, SCHEDULER_FLAG, True))
             if applies and flag not in flags]
    if not added:
        return None
    return {**environ, "XLA_FLAGS": " ".join([flags, *added]).strip()}


def use_xla_settings() -> bool:
    """Sets `settings_environment`'s XLA_FLAGS in this process; whether it
    did. JAX reads XLA_FLAGS when it starts its first backend: call it
    before."""
    environ = settings_here(os.environ)
    if environ is None:
        return False
    os.environ["XLA_FLAGS"] = environ["XLA_FLAGS"]
    return True


def settings_here(environ) -> dict | None:
    """`settings_environment` of `environ` on this machine: its jaxlib and
    its CPU's flags."""
    from tagger.cpu_features import cpu_flags

    return settings_environment(environ, jaxlib_version(), cpu_flags())


def jaxlib_version() -> str | None:
    """The installed jaxlib's version, or None where none is."""
    from importlib import metadata

    try:
        return metadata.version("jaxlib")
    except metadata.PackageNotFoundError:
        return None


def in_effect(setting: str, environ=os.environ) -> bool:
    """Whether XLA_FLAGS in `environ` holds `setting` (SETTING,
    SCHEDULER_SETTING)."""
    return setting in environ.get("XLA_FLAGS", "").split()


def start_as_a_command() -> None:
    """This process set up as a command under JAX that may compute on the
    CPU starts: started again with glibc's malloc asking for huge pages
    (`host_memory.restart_with_huge_pages`), then XLA's settings where
    they apply (`use_xla_settings`)."""
    from tagger.host_memory import restart_with_huge_pages

    restart_with_huge_pages()
    use_xla_settings()
