"""Every bench prints the machine it ran on: CPU model and SIMD features."""

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.checks import HANG_S

ROOT = Path(__file__).parents[1]

_SPEC = importlib.util.spec_from_file_location(
    "bench_common", ROOT / "bench" / "common.py")
common = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(common)


def test_machine_line_names_the_model_and_the_simd_features(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\n"
                       "flags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni amx_int8\n\n"
                       "processor\t: 1\nmodel name\t: Test CPU 9000\nflags\t\t: fpu\n")
    line = common.machine_line(str(cpuinfo))
    assert line.startswith("CPU: Test CPU 9000, ")
    assert line.endswith("SIMD: avx2 fma avx512f avx512_vnni amx_int8")
    assert common.machine_line(str(tmp_path / "missing")).startswith("CPU: unknown CPU")


@pytest.mark.slow
def test_a_bench_with_workers_prints_the_machine_once(tmp_path):
    """The workers' fork server loads the bench's main module (and so
    bench/common.py) too: the line is printed by the bench's own process
    only."""
    program = tmp_path / "bench_program.py"
    program.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT / "bench")!r})
        import common

        def main():
            from tagger.parallel import ordered_map
            assert list(ordered_map(abs, [-1, -2, -3], 2)) == [1, 2, 3]

        if __name__ == "__main__":
            main()
    """))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT),
                                                        os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(program)], env=env, capture_output=True,
                          text=True, timeout=HANG_S)
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stdout.splitlines() if line.startswith("CPU: ")] == [
        common.machine_line()]
