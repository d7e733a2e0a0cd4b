"""Every bench prints the machine it ran on: CPU model and SIMD features."""

import importlib.util
from pathlib import Path

_SPEC = importlib.util.spec_from_file_location(
    "bench_common", Path(__file__).parents[1] / "bench" / "common.py")
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
