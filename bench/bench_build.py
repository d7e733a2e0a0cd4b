"""Build throughput, scaling and memory of build_mtt.

Measured in one run on the same synthetic clips (29.1 s MP3s, 16 kHz):
- floor: plain soundfile decode + mono mix + soxr resample to 22050 Hz of
  every clip, one process, nothing else (no segmenting, no int16, no
  serialization, no writing)
- the floor split over 2 processes (half the clips each, the processes
  started beforehand): what 2 processes can gain on this machine at all
- ours with 1 worker and with 2 workers: a complete build_mtt of the clips
Each is timed `--repeats` times, interleaved, and the best time is kept (the
machine may be shared). Prints the clip count and then

    ratio builder_floor VALUE   (ours, 1 worker, clips/s) / (floor, clips/s)
    ratio builder_2w VALUE      (ours, 2 workers, clips/s) / (ours, 1 worker)
    ratio floor_2p VALUE        (floor in 2 processes) / (floor in 1)
    ratio builder_2w_of_floor_2p VALUE   builder_2w / floor_2p

and with --memory the peak RSS of a 1-worker build of 4N clips over that of
N clips (should stay near 1: memory is flat in the number of clips).
With --beam instead: the Beam DirectRunner's clips/s beside the local
builder's, same clips, same run (1 worker each, then 2 each).

    python bench/bench_build.py [--clips 212] [--seconds 29.1] [--repeats 3] [--memory] [--beam]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile

from common import ratio_line, synthetic_data, timed


def floor(paths) -> int:
    """Decodes and resamples every file the plainest way; returns how many
    gave at least one 59049-sample segment (the clips a build keeps)."""
    import numpy as np
    import soundfile
    import soxr

    kept = 0
    saved = os.dup(2)  # the MP3 decoder's notes on the broken files: not for the reader
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)
    try:
        for path in paths:
            try:
                audio, rate = soundfile.read(path, dtype="float32", always_2d=True)
            except Exception:
                continue
            if len(audio) == 0:
                continue
            waveform = soxr.resample(audio.mean(axis=1), rate, 22050, quality="HQ")
            kept += len(np.asarray(waveform)) >= 59049
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    return kept


def build(data_dir: str, out_dir: str, workers: int):
    from tagger.config import BuildConfig
    from tagger.datasets.build import build as build_source
    from tagger.datasets.mtt import SOURCE, MttSettings

    shutil.rmtree(out_dir, ignore_errors=True)
    return build_source(SOURCE, MttSettings(), BuildConfig(
        data_dir=data_dir, out_dir=out_dir, workers=workers, progress=False))


def cpu_seconds() -> float:
    """CPU time the whole machine has spent busy (user + system, /proc/stat):
    the build's worker processes are children of multiprocessing's fork
    server, not of this process, so this process's rusage misses them. On a
    machine with nothing else running it is the build's CPU time."""
    with open("/proc/stat", encoding="ascii") as stat:
        user, nice, system = (int(v) for v in stat.readline().split()[1:4])
    return (user + nice + system) / os.sysconf("SC_CLK_TCK")


def beam_build(data_dir: str, out_dir: str, workers: int):
    from tagger.beam.build import BeamRun
    from tagger.config import BuildConfig
    from tagger.datasets.build import build as build_source
    from tagger.datasets.mtt import SOURCE, MttSettings

    config = BuildConfig(data_dir=data_dir, out_dir=out_dir, progress=False)
    options = ("--direct_num_workers=1",) if workers == 1 else (
        f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing")
    return build_source(SOURCE, MttSettings(), config, BeamRun("DirectRunner", options))


def beam_section(data_dir: str, work: str, seconds: float) -> None:
    """DirectRunner against the local builder on the same clips, same run."""
    # the multi-processing DirectRunner's worker processes import tagger too
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (root, os.environ.get("PYTHONPATH")) if p)
    def fresh(name):  # an empty out dir: a finished build would be reused
        return tempfile.mkdtemp(prefix=f"{name}_", dir=work)

    build(data_dir, fresh("warmup"), 1)
    beam_build(data_dir, fresh("warmup_beam"), 1)
    rates = {}
    for workers in (1, 2):
        info, local_s = timed(build, data_dir, fresh(f"local{workers}"), workers)
        _, beam_s = timed(beam_build, data_dir, fresh(f"beam{workers}"), workers)
        clips = sum(s["clips"] for s in info.splits.values())
        rates[workers] = (clips / local_s, clips / beam_s)
        print(f"{clips} clips of {seconds} s, {workers} worker(s): local "
              f"{clips / local_s:.1f} clips/s, Beam DirectRunner {clips / beam_s:.1f} clips/s")
    print(f"ratio beam_direct_over_local {rates[1][1] / rates[1][0]:.3f}")
    print(f"ratio beam_direct_2w_over_local_2w {rates[2][1] / rates[2][0]:.3f}")


def peak_rss_mb(data_dir: str, out_dir: str) -> float:
    """Peak resident memory of a 1-worker build in a fresh process."""
    code = ("import sys, resource, json; sys.path.insert(0, '.');"
            "from bench_build import build; build(sys.argv[1], sys.argv[2], 1);"
            "print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))")
    out = subprocess.run([sys.executable, "-c", code, data_dir, out_dir], check=True,
                         capture_output=True, text=True, cwd=os.path.dirname(__file__),
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return json.loads(out.stdout.strip().splitlines()[-1]) / 1024


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=212,
                   help="rows of the synthetic dataset; the default 212 gives 200 or more "
                        "decodable clips beside its broken files (default: 212)")
    p.add_argument("--seconds", type=float, default=29.1, help="clip length (default: 29.1)")
    p.add_argument("--repeats", type=int, default=3, help="timings of each (default: 3)")
    p.add_argument("--memory", action="store_true",
                   help="also compare peak RSS of builds of N and 4N clips")
    p.add_argument("--work-dir", default=None, metavar="PATH",
                   help="keep data here (default: a temp dir)")
    p.add_argument("--beam", action="store_true",
                   help="compare the Beam DirectRunner with the local builder instead")
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from tagger.config import join_path
    from tagger.datasets.mtt import plan_mtt

    work = args.work_dir or tempfile.mkdtemp(prefix="bench_build_")
    data = synthetic_data(os.path.join(work, f"data{args.clips}"), args.clips, args.seconds)
    if args.beam:
        return beam_section(data, work, args.seconds)
    plan = plan_mtt(data)
    paths = [join_path(plan.audio_root, c.path) for clips in plan.splits.values()
             for c in clips if c.path not in plan.known_broken]
    for workers in (1, 2):  # imports, first-call costs, the workers' fork server
        build(data, os.path.join(work, f"warmup{workers}"), workers)
    halves = [paths[0::2], paths[1::2]]
    from tagger.host_memory import keep_freed_heap

    # the floor's processes keep freed heap memory too, as the build's workers do
    floor_pool = multiprocessing.get_context("forkserver").Pool(2, keep_freed_heap)
    floor_pool.map(floor, [half[:2] for half in halves])  # started and imported
    times = {"floor": [], "floor2": [], "1": [], "2": []}
    cpu = {"floor": [], "floor2": [], "1": [], "2": []}
    for _ in range(args.repeats):
        before = cpu_seconds()
        kept, seconds = timed(floor, paths)
        cpu["floor"].append(cpu_seconds() - before)
        times["floor"].append(seconds)
        before = cpu_seconds()
        _, seconds = timed(floor_pool.map, floor, halves)
        cpu["floor2"].append(cpu_seconds() - before)
        times["floor2"].append(seconds)
        for workers in (1, 2):
            out = os.path.join(work, f"out{workers}")
            shutil.rmtree(out, ignore_errors=True)  # the last run's output: not the build's work
            before = cpu_seconds()
            info, seconds = timed(build, data, out, workers)
            cpu[str(workers)].append(cpu_seconds() - before)
            times[str(workers)].append(seconds)
    floor_pool.close()
    clips = sum(s["clips"] for s in info.splits.values())
    assert clips == kept, (clips, kept)
    best = {k: min(v) for k, v in times.items()}
    rate = {k: clips / v for k, v in best.items()}
    print(f"{clips} clips of {args.seconds} s (best of {args.repeats}): floor "
          f"{rate['floor']:.1f} clips/s, ours 1 worker {rate['1']:.1f} clips/s, "
          f"2 workers {rate['2']:.1f} clips/s; {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"CPU seconds (the whole machine's, best of {args.repeats}; steadier "
          f"than wall time on a shared machine): floor {min(cpu['floor']):.2f}, in 2 "
          f"processes {min(cpu['floor2']):.2f}; build with 1 worker {min(cpu['1']):.2f}, "
          f"with 2 workers {min(cpu['2']):.2f} (where 2 processes cost more CPU than "
          "1 on the floor too, the machine's cores slow each other down)")
    print(ratio_line("CPU time, floor / build with 1 worker",
                     min(cpu["floor"]) / min(cpu["1"]), ">= 0.9"))
    print(ratio_line("build throughput, 1 worker / decode+resample floor",
                     rate["1"] / rate["floor"], ">= 0.9"))
    print(ratio_line("scaling, 2 workers / 1 worker", rate["2"] / rate["1"], ">= 1.8"))
    print(ratio_line("the floor's own scaling, 2 processes / 1", rate["floor2"] / rate["floor"],
                     "what this machine allows"))
    if args.memory:
        large = synthetic_data(os.path.join(work, f"data{4 * args.clips}"), 4 * args.clips,
                               args.seconds)
        rss_small = peak_rss_mb(data, os.path.join(work, "rss_small"))
        rss_large = peak_rss_mb(large, os.path.join(work, "rss_large"))
        print(f"peak RSS: {args.clips} clips {rss_small:.0f} MB, {4 * args.clips} clips "
              f"{rss_large:.0f} MB")
        print(ratio_line(f"peak RSS, {4 * args.clips} clips / {args.clips} clips",
                         rss_large / rss_small, "<= 1.1"))
    print(f"ratio builder_floor {rate['1'] / rate['floor']:.3f}")
    print(f"ratio builder_2w {rate['2'] / rate['1']:.3f}")
    print(f"ratio floor_2p {rate['floor2'] / rate['floor']:.3f}")
    print(f"ratio builder_2w_of_floor_2p "
          f"{(rate['2'] / rate['1']) / (rate['floor2'] / rate['floor']):.3f}")


if __name__ == "__main__":
    main()
