"""XLA's own matrix products in a CPU program, where they were measured
faster than YNNPACK's.

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
"""

from __future__ import annotations

import os

FLAG = "--xla_cpu_experimental_ynn_fusion_type"
SETTING = f"{FLAG}=reduce"
JAXLIB_SERIES = "0.10."  # the jaxlib versions whose XLA was measured with SETTING


def products_environment(environ, jaxlib: str | None, cpu_flags: set) -> dict | None:
    """`environ` with SETTING added to its XLA_FLAGS, or None where it
    does not apply: `jaxlib` (its version; None: not installed) not of
    JAXLIB_SERIES, a CPU (`cpu_flags`, /proc/cpuinfo's words) without
    avx512f or with amx_tile, or XLA_FLAGS naming FLAG already."""
    if jaxlib is None or not jaxlib.startswith(JAXLIB_SERIES):
        return None
    if "avx512f" not in cpu_flags or "amx_tile" in cpu_flags:
        return None
    flags = environ.get("XLA_FLAGS", "")
    if FLAG in flags:
        return None
    return {**environ, "XLA_FLAGS": f"{flags} {SETTING}".strip()}


def use_xla_products() -> bool:
    """Sets `products_environment`'s XLA_FLAGS in this process; whether it
    did. JAX reads XLA_FLAGS when it starts its first backend: call it
    before."""
    environ = products_here(os.environ)
    if environ is None:
        return False
    os.environ["XLA_FLAGS"] = environ["XLA_FLAGS"]
    return True


def products_here(environ) -> dict | None:
    """`products_environment` of `environ` on this machine: its jaxlib and
    its CPU's flags."""
    from tagger.cpu_features import cpu_flags

    return products_environment(environ, jaxlib_version(), cpu_flags())


def jaxlib_version() -> str | None:
    """The installed jaxlib's version, or None where none is."""
    from importlib import metadata

    try:
        return metadata.version("jaxlib")
    except metadata.PackageNotFoundError:
        return None


def xla_products_in_effect(environ=os.environ) -> bool:
    """Whether XLA_FLAGS in `environ` holds SETTING."""
    return SETTING in environ.get("XLA_FLAGS", "").split()


def start_as_a_command() -> None:
    """This process set up as a command under JAX that may compute on the
    CPU starts: started again with glibc's malloc asking for huge pages
    (`host_memory.restart_with_huge_pages`), then XLA's own matrix
    products where they apply (`use_xla_products`)."""
    from tagger.host_memory import restart_with_huge_pages

    restart_with_huge_pages()
    use_xla_products()
