"""Scale and throughput of build_msd on the synthetic MSD.

Prints, measured in one run:
- peak RSS of planning a --split lastfm build (reading both SQLite files,
  top-k tags, the artist-level split, the clip columns, the build
  fingerprint and the shard jobs) at N and 4N metadata-only tracks, each
  in a fresh process, and their ratio (`ratio msd_rss_4n_over_n VALUE`)
- planning seconds at 4N / at N (linear is 4)
- with --audio: build_msd clips/s (1 worker) against the decode+resample
  floor on the same previews
- with --leak: a k-NN tagger's macro ROC-AUC on track-level random splits
  (artists leak) against the artist-level split, same tracks
    python bench/bench_msd.py [--tracks 25000] [--audio [--audio-tracks 60]]
        [--leak [--leak-tracks 200]]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from common import ratio_line, timed


def metadata(folder: str, tracks: int, audio: bool = False, seconds: float = 30.0) -> str:
    from tagger.datasets.synthetic_msd import generate

    if not os.path.exists(os.path.join(folder, "track_metadata.db")):
        generate(folder, tracks=tracks, seed=0, seconds=seconds, metadata_only=not audio,
                 progress=False, workers=1 if not audio else (os.cpu_count() or 1))
    return folder


def plan_only(data_dir: str) -> dict:
    """Plans a lastfm build without audio and prepares the writer's jobs."""
    from tagger.config import BuildConfig
    from tagger.datasets.msd.plan import MsdSettings, plan_msd
    from tagger.records.writer import _fingerprint, plan_shards

    audio = os.path.join(data_dir, "no_audio")
    os.makedirs(audio, exist_ok=True)
    plan = plan_msd(data_dir, MsdSettings(layout="7digital", audio_dir=audio,
                                          check_audio=False), progress=False)
    config = BuildConfig(data_dir=data_dir)
    _fingerprint(plan, config)
    jobs = plan_shards(plan, config.clips_per_shard)
    return {"clips": sum(len(c) for c in plan.splits.values()), "shards": len(jobs)}


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM), MB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def measure(data_dir: str) -> dict:
    """Peak RSS (MB), seconds and counts of `plan_only` in a fresh process."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the parent.
    code = ("import sys, json, time; sys.path.insert(0, '.');"
            "from bench_msd import plan_only, peak_mb; import tagger.records.writer;"
            "base = peak_mb(); t = time.perf_counter(); out = plan_only(sys.argv[1]);"
            "out['seconds'] = time.perf_counter() - t; out['base_mb'] = base;"
            "out['peak_mb'] = peak_mb(); print(json.dumps(out))")
    done = subprocess.run([sys.executable, "-c", code, data_dir], check=True,
                          capture_output=True, text=True, cwd=os.path.dirname(__file__),
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return json.loads(done.stdout.strip().splitlines()[-1])


def audio_section(work: str, tracks: int) -> None:
    from tagger.audio import AudioDecodeError, load_audio
    from tagger.config import BuildConfig
    from tagger.datasets.msd.plan import MsdSettings, build_msd, plan_msd

    data = metadata(os.path.join(work, f"audio{tracks}"), tracks, audio=True)
    plan = plan_msd(data, MsdSettings(), progress=False)

    def floor():
        decoded = 0
        for clips in plan.splits.values():
            for clip in clips:
                if clip.path in plan.known_broken:
                    continue
                try:
                    decoded += len(load_audio(os.path.join(plan.audio_root, clip.path),
                                              22050, quiet=True)) >= 59049
                except AudioDecodeError:
                    pass
        return decoded

    def build(out):
        return build_msd(BuildConfig(data_dir=data, out_dir=os.path.join(work, out),
                                     workers=1, progress=False), MsdSettings())

    build("warmup")
    decoded, floor_s = timed(floor)
    info, ours_s = timed(build, "out1")
    clips = sum(s["clips"] for s in info["splits"].values())
    assert clips == decoded, (clips, decoded)
    print(f"{clips} previews: floor {clips / floor_s:.1f} clips/s, build_msd 1 worker "
          f"{clips / ours_s:.1f} clips/s")
    print(ratio_line("build_msd throughput, 1 worker / decode+resample floor",
                     floor_s / ours_s, ">= 0.7"))


def leak_section(work: str, tracks: int) -> None:
    from tagger.datasets.msd.leakage import leak_scores
    from tagger.datasets.msd.plan import MsdSettings, plan_msd

    data = metadata(os.path.join(work, f"leak{tracks}"), tracks, audio=True, seconds=2.0)
    artist, leaky = leak_scores(plan_msd(data, MsdSettings(), progress=False))
    print(f"k-NN tagger macro ROC-AUC: artist-level split {artist:.3f}, "
          f"track-level random splits {leaky:.3f}")
    print(ratio_line("ROC-AUC, artist-leaking / artist-level split", leaky / artist,
                     ">= 1.1 (the leak CALS avoids)"))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tracks", type=int, default=25000, help="N (default: 25000)")
    p.add_argument("--audio", action="store_true", help="also measure clips/s on previews")
    p.add_argument("--audio-tracks", type=int, default=60)
    p.add_argument("--leak", action="store_true",
                   help="also score an artist-leaking split against the artist-level one")
    p.add_argument("--leak-tracks", type=int, default=200)
    p.add_argument("--work-dir", default=None, help="keep data here (default: a temp dir)")
    args = p.parse_args()
    work = args.work_dir or tempfile.mkdtemp(prefix="bench_msd_")
    n = args.tracks
    small = measure(metadata(os.path.join(work, f"meta{n}"), n))
    large = measure(metadata(os.path.join(work, f"meta{4 * n}"), 4 * n))
    for tracks, m in ((n, small), (4 * n, large)):
        print(f"{tracks} tracks: {m['clips']} clips planned in {m['shards']} shards, "
              f"{m['seconds']:.1f} s, peak RSS {m['peak_mb']:.0f} MB "
              f"(after imports {m['base_mb']:.0f} MB)")
    print(ratio_line(f"planning peak RSS, {4 * n} / {n} tracks",
                     large["peak_mb"] / small["peak_mb"], "<= 1.5 (flat: ~1)"))
    per_track = (large["peak_mb"] - small["peak_mb"]) * 2**20 / (3 * n)
    print(f"planning memory per track: {per_track:.0f} bytes "
          f"(x 1,000,000 tracks = {per_track * 1e6 / 2**30:.2f} GB)")
    print(ratio_line(f"planning seconds, {4 * n} / {n} tracks",
                     large["seconds"] / small["seconds"], "<= 4.5 (linear: 4)"))
    print(f"ratio msd_rss_4n_over_n {large['peak_mb'] / small['peak_mb']:.3f}")
    if args.audio:
        audio_section(work, args.audio_tracks)
    if args.leak:
        leak_section(work, args.leak_tracks)


if __name__ == "__main__":
    main()
