"""What this machine's CPU is, for figures that depend on it (the
benchmarks' first line, tag.py's remembered engine timings). Imports no
TensorFlow."""

from __future__ import annotations


def cpu_model_and_flags(cpuinfo: str = "/proc/cpuinfo") -> tuple[str, frozenset]:
    """(the CPU's model name, its feature flags) from `cpuinfo`'s first
    processor; "unknown CPU" and no flags where it cannot be read."""
    model, flags = "", frozenset()
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and not model:
                    model = value.strip()
                elif key.strip() == "flags" and not flags:
                    flags = frozenset(value.split())
    except OSError:
        pass
    return model or "unknown CPU", flags
