"""Build throughput, scaling and memory of build_mtt.

Prints, measured in one run on the same files:
- ours (1 worker, clips/s) / floor (soundfile decode + soxr resample only)
- ours with 2 workers / ours with 1 worker
- peak RSS of a build of 4N clips / peak RSS of a build of N clips
    python bench/bench_build.py [--clips 100] [--seconds 29.1]
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
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from tagger.datasets.mtt import plan_mtt

    work = args.work_dir or tempfile.mkdtemp(prefix="bench_build_")
    small = synthetic_data(os.path.join(work, f"data{args.clips}"), args.clips, args.seconds)
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
