"""tagger/xla_cpu.py: XLA's own matrix products where they were measured
faster, its operations in an order for memory, and what the settings are
relied on to do."""

import os
import subprocess
import sys

import pytest

from tagger import xla_cpu
from tagger.xla_cpu import (
    FLAG,
    SCHEDULER_FLAG,
    SCHEDULER_SETTING,
    SETTING,
    in_effect,
    settings_environment,
)

AVX512 = {"avx2", "fma", "avx512f", "avx512_bf16"}
BOTH = f"{SETTING} {SCHEDULER_SETTING}"


@pytest.mark.parametrize("environ, jaxlib, flags, xla_flags", [
    ({}, "0.10.2", AVX512, BOTH),
    ({"PATH": "/bin", "XLA_FLAGS": "--xla_dump_to=/tmp/d"}, "0.10.2", AVX512,
     f"--xla_dump_to=/tmp/d {BOTH}"),
    ({}, "0.11.2", AVX512, None),  # another series: its XLA may not know the flags
    ({}, None, AVX512, None),  # no jaxlib
    ({}, "0.10.2", {"avx2", "fma"}, SCHEDULER_SETTING),  # products not measured without
    ({}, "0.10.2", AVX512 | {"amx_tile", "amx_bf16"}, SCHEDULER_SETTING),  # AVX-512, nor AMX
    ({"XLA_FLAGS": f"{FLAG}=individual_dot,reduce"}, "0.10.2", AVX512,  # the user's
     f"{FLAG}=individual_dot,reduce {SCHEDULER_SETTING}"),
    ({"XLA_FLAGS": f"{SCHEDULER_FLAG}=true"}, "0.10.2", AVX512,
     f"{SCHEDULER_FLAG}=true {SETTING}"),
    ({"XLA_FLAGS": f"{FLAG}=reduce {SCHEDULER_FLAG}=true"}, "0.10.2", AVX512, None),
])
def test_xla_settings_are_asked_for_where_they_apply(environ, jaxlib, flags, xla_flags):
    changed = settings_environment(environ, jaxlib, flags)
    if xla_flags is None:
        assert changed is None
        return
    assert changed == {**environ, "XLA_FLAGS": xla_flags}
    for setting in (SETTING, SCHEDULER_SETTING):
        assert in_effect(setting, changed) == (setting in xla_flags.split())
        assert not in_effect(setting, environ)


PRODUCT = """
import jax, jax.numpy as jnp
a = jnp.ones((512, 256)); b = jnp.ones((256, 128))
print(jax.jit(lambda a, b: a @ b).lower(a, b).compile().as_text())
"""


def compiled_product(xla_flags: str | None) -> str:
    """The compiled CPU program of one matrix product, in a JAX process
    started with `xla_flags` (None: XLA_FLAGS unset)."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAX_PLATFORMS"] = "cpu"
    if xla_flags is not None:
        env["XLA_FLAGS"] = xla_flags
    done = subprocess.run([sys.executable, "-c", PRODUCT], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
@pytest.mark.skipif(not (xla_cpu.jaxlib_version() or "").startswith(xla_cpu.JAXLIB_SERIES),
                    reason=f"the setting is measured with jaxlib {xla_cpu.JAXLIB_SERIES}x")
def test_the_setting_takes_the_products_from_ynnpack():
    """What the setting relies on: XLA takes the flag (an unknown one would
    stop the process) and compiles a product as its own dot, where by
    default (on the kind of CPU it is made for) it is a YNNPACK fusion."""
    if in_effect(SETTING, xla_cpu.settings_here({}) or {}):
        assert "__ynn_fusion" in compiled_product(None)
    own = compiled_product(f"{SETTING} {SCHEDULER_SETTING}")  # flags XLA knows, both
    assert "__ynn_fusion" not in own and " dot(" in own
