"""The line a run in mixed bfloat16 prints: why bfloat16, or a warning where
this machine's CPU or GPU computes it slower than float32."""

import pytest
import tensorflow as tf

from tagger import cpu_features
from tagger.training.backend_tf import TensorFlowBackend

DEFAULT = TensorFlowBackend("default")


def precision_line(precision, backend):
    return backend.precision_line(precision)


@pytest.fixture
def cpu_only(monkeypatch):
    """A machine without a GPU; `flags(set)` gives its CPU those flags."""
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])
    return lambda flags: monkeypatch.setattr(cpu_features, "cpu_flags", lambda: set(flags))


def test_a_cpu_with_amx_says_its_matrix_units(cpu_only):
    cpu_only({"avx512f", "avx512_bf16", "amx_tile", "amx_bf16"})
    assert precision_line("bfloat16", DEFAULT) == (
        "mixed bfloat16: this CPU has AMX-BF16 matrix units")


def test_a_cpu_with_avx512_bf16_alone_says_so(cpu_only):
    cpu_only({"avx512f", "avx512_bf16"})
    assert precision_line("bfloat16", DEFAULT) == (
        "mixed bfloat16: this CPU has AVX-512 BF16 instructions")


def test_a_cpu_without_bf16_units_gets_a_warning(cpu_only):
    cpu_only({"avx2", "fma", "avx512f", "amx_int8"})
    line = precision_line("bfloat16", DEFAULT)
    assert line == ("warning: mixed bfloat16 will be slower than float32 here: this CPU "
                    "has neither AMX-BF16 matrix units nor AVX-512 BF16 instructions; the run "
                    "goes on in bfloat16 as asked (--mixed-precision off trains faster)")
    assert "\n" not in line


def test_other_precisions_print_nothing(cpu_only):
    cpu_only(set())
    assert precision_line("off", DEFAULT) is None
    assert precision_line("float16", DEFAULT) is None


@pytest.mark.parametrize("capability, line", [
    ((8, 0), "mixed bfloat16: this GPU (compute capability 8.0) has bfloat16 tensor cores"),
    ((7, 5), "warning: mixed bfloat16 will be slower than float32 here: this GPU (compute "
             "capability 7.5) has no bfloat16 tensor cores (they start at 8.0); the run goes "
             "on in bfloat16 as asked (--mixed-precision off trains faster)")])
def test_a_gpu_is_judged_by_its_compute_capability(monkeypatch, capability, line):
    monkeypatch.setattr(cpu_features, "cpu_flags", lambda: {"amx_bf16"})  # not the CPU's
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["GPU:0"])
    monkeypatch.setattr(tf.config.experimental, "get_device_details",
                        lambda device: {"compute_capability": capability})
    assert precision_line("bfloat16", DEFAULT) == line


def test_cpu_model_and_flags_read_the_first_processor(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\n"
                       "flags\t\t: fpu avx512f avx512_bf16 amx_bf16\n\n"
                       "processor\t: 1\nmodel name\t: Other\nflags\t\t: fpu\n")
    assert cpu_features.cpu_model_and_flags(str(cpuinfo)) == (
        "Test CPU 9000", {"fpu", "avx512f", "avx512_bf16", "amx_bf16"})
    assert cpu_features.bf16_units({"avx512_bf16", "amx_bf16"}) == [
        "AMX-BF16 matrix units", "AVX-512 BF16 instructions"]
    assert cpu_features.cpu_model_and_flags(str(tmp_path / "missing")) == ("unknown CPU", set())
