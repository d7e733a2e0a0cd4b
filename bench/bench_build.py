"""Build throughput, scaling and memory of build_mtt.

Prints, measured in one run on the same files:
- ours (1 worker, clips/s) / floor (soundfile decode + soxr resample only)
- ours with 2 workers / ours with 1 worker
- peak RSS of a build of 4N clips / peak RSS of a build of N clips
With --beam instead: the Beam DirectRunner's clips/s beside the local
builder's, same clips, same run (1 worker each, then 2 each).
    python bench/bench_build.py [--clips 100] [--seconds 29.1] [--beam]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from common import ratio_line, synthetic_data, timed


def floor(plan) -> tuple:
    from tagger.audio import AudioDecodeError, load_audio
    from tagger.config import join_path

    decoded = 0
    for split in plan.splits.values():
        for clip in split:
            try:
                audio = load_audio(join_path(plan.audio_root, clip.path), 22050, quiet=True)
                decoded += len(audio) >= 59049  # the build skips clips under one segment
            except AudioDecodeError:
                pass
    return decoded


def build(data_dir: str, out_dir: str, workers: int):
    from tagger.config import BuildConfig
    from tagger.datasets.mtt import build_mtt

    return build_mtt(BuildConfig(data_dir=data_dir, out_dir=out_dir, workers=workers,
                                 progress=False))


def beam_build(data_dir: str, out_dir: str, workers: int):
    from tagger.beam.build import run_beam_build
    from tagger.beam.flags import BeamRun
    from tagger.config import BuildConfig
    from tagger.datasets.mtt import plan_from_config

    config = BuildConfig(data_dir=data_dir, out_dir=out_dir, progress=False)
    options = ("--direct_num_workers=1",) if workers == 1 else (
        f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing")
    return run_beam_build(plan_from_config(config), config, BeamRun("DirectRunner", options))


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
        clips = sum(s["clips"] for s in info["splits"].values())
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
    p.add_argument("--clips", type=int, default=100)
    p.add_argument("--seconds", type=float, default=29.1)
    p.add_argument("--work-dir", default=None, help="keep data here (default: a temp dir)")
    p.add_argument("--beam", action="store_true",
                   help="compare the Beam DirectRunner with the local builder instead")
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from tagger.datasets.mtt import plan_mtt

    work = args.work_dir or tempfile.mkdtemp(prefix="bench_build_")
    small = synthetic_data(os.path.join(work, f"data{args.clips}"), args.clips, args.seconds)
    if args.beam:
        return beam_section(small, work, args.seconds)
    large = synthetic_data(os.path.join(work, f"data{4 * args.clips}"), 4 * args.clips,
                           args.seconds)
    plan = plan_mtt(small)
    build(small, os.path.join(work, "warmup"), 1)  # imports and first-call costs
    decoded, floor_s = timed(floor, plan)
    info1, ours1_s = timed(build, small, os.path.join(work, "out1"), 1)
    _, ours2_s = timed(build, small, os.path.join(work, "out2"), 2)
    clips = sum(s["clips"] for s in info1["splits"].values())
    assert clips == decoded, (clips, decoded)
    rss_small = peak_rss_mb(small, os.path.join(work, "rss_small"))
    rss_large = peak_rss_mb(large, os.path.join(work, "rss_large"))
    print(f"{clips} clips of {args.seconds} s; floor {clips / floor_s:.1f} clips/s, "
          f"ours 1 worker {clips / ours1_s:.1f} clips/s, 2 workers {clips / ours2_s:.1f} clips/s")
    print(ratio_line("build throughput, 1 worker / decode+resample floor",
                     floor_s / ours1_s, ">= 0.7"))
    print(ratio_line("scaling, 2 workers / 1 worker", ours1_s / ours2_s, ">= 1.7"))
    print(f"peak RSS: {args.clips} clips {rss_small:.0f} MB, {4 * args.clips} clips "
          f"{rss_large:.0f} MB")
    print(ratio_line(f"peak RSS, {4 * args.clips} clips / {args.clips} clips",
                     rss_large / rss_small, "<= 1.1"))


if __name__ == "__main__":
    main()
