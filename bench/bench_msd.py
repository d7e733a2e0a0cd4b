"""Scale and throughput of build_msd on the synthetic MSD.

Prints, measured in one run:
- planning a --split lastfm build (reading both SQLite files, top-k tags,
  the artist-level split, the clip columns, the build fingerprint and the
  shard jobs) at N and 4N metadata-only tracks, each in a fresh process:
  peak RSS, the bytes per track above the import baseline (planning holds
  its columns, a few hundred bytes per track: linear by design), the
  figure projected at 1,000,000 tracks, and the planning seconds
  (`ratio msd_plan_bytes_per_track_4n_over_n`: constant per track is ~1)
- a complete build_msd build (decode + write, 1 worker) of N' and 4N'
  tracks of short previews, each in a fresh process: peak RSS and its
  ratio (`ratio msd_build_rss_4n_over_n`: flat is ~1)
- with --audio: build_msd clips/s (1 worker) against the decode+resample
  floor on the same previews (`ratio msd_build_floor`, goal >= 0.7)
- with --leak: a k-NN tagger's macro ROC-AUC on track-level random splits
  (artists leak) against the artist-level split, same tracks
  (`ratio msd_leak_roc_auc`, goal >= 1.1: the leak the artist-level split
  avoids)
    python bench/bench_msd.py [--tracks 25000] [--build-tracks 50 [--build-seconds 10]]
        [--audio [--audio-tracks 60] [--audio-seconds 30]] [--leak [--leak-tracks 200]]
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


def build_peak(data_dir: str, out_dir: str) -> dict:
    """Peak RSS (MB), seconds and clips of a 1-worker build_msd of
    `data_dir` (--split lastfm, 10 clips per shard) in a fresh process."""
    code = ("import sys, json, time; sys.path.insert(0, '.');"
            "from bench_msd import peak_mb; from tagger.config import BuildConfig;"
            "from tagger.datasets.build import build;"
            "from tagger.datasets.msd.plan import SOURCE, MsdSettings;"
            "base = peak_mb(); t = time.perf_counter();"
            "info = build(SOURCE, MsdSettings(), BuildConfig(data_dir=sys.argv[1], "
            "out_dir=sys.argv[2], workers=1, clips_per_shard=10, progress=False));"
            "print(json.dumps({'seconds': time.perf_counter() - t, 'base_mb': base, "
            "'peak_mb': peak_mb(), 'clips': sum(s['clips'] for s in info.splits.values()),"
            " 'shards': sum(len(s['shards']) for s in info.splits.values())}))")
    done = subprocess.run([sys.executable, "-c", code, data_dir, out_dir], check=True,
                          capture_output=True, text=True, cwd=os.path.dirname(__file__),
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return json.loads(done.stdout.strip().splitlines()[-1])


def planning_section(work: str, n: int) -> None:
    small = measure(metadata(os.path.join(work, f"meta{n}"), n))
    large = measure(metadata(os.path.join(work, f"meta{4 * n}"), 4 * n))
    per_track = {}
    for tracks, m in ((n, small), (4 * n, large)):
        per_track[tracks] = (m["peak_mb"] - m["base_mb"]) * 2**20 / tracks
        print(f"planning {tracks} tracks: {m['clips']} clips in {m['shards']} shards, "
              f"{m['seconds']:.1f} s, peak RSS {m['peak_mb']:.0f} MB, imports "
              f"{m['base_mb']:.0f} MB: {per_track[tracks]:.0f} bytes per track above imports")
    million = large["base_mb"] + per_track[4 * n] * 1e6 / 2**20
    print(f"planning memory projected at 1,000,000 tracks: {million:.0f} MB "
          f"({per_track[4 * n]:.0f} bytes per track; linear by design: the plan is numpy "
          "columns, not Python objects)")
    print(ratio_line(f"planning bytes per track, {4 * n} / {n} tracks",
                     per_track[4 * n] / per_track[n], "<= 1.2 (a constant cost per track)"))
    print(ratio_line(f"planning seconds, {4 * n} / {n} tracks",
                     large["seconds"] / small["seconds"], "<= 4.5 (linear: 4)"))
    print(f"ratio msd_plan_bytes_per_track_4n_over_n {per_track[4 * n] / per_track[n]:.3f}")


def build_section(work: str, n: int, seconds: float) -> None:
    runs = {}
    for tracks in (n, 4 * n):
        data = metadata(os.path.join(work, f"build{tracks}_{seconds:g}s"), tracks, audio=True,
                        seconds=seconds)
        out = tempfile.mkdtemp(prefix="records_", dir=work)
        runs[tracks] = build_peak(data, out)
        m = runs[tracks]
        print(f"build_msd of {tracks} tracks ({seconds:g} s previews, 1 worker): {m['clips']} "
              f"clips in {m['shards']} shards, {m['seconds']:.1f} s, peak RSS "
              f"{m['peak_mb']:.0f} MB (at start {m['base_mb']:.0f} MB)")
    value = runs[4 * n]["peak_mb"] / runs[n]["peak_mb"]
    extra = runs[4 * n]["clips"] - runs[n]["clips"]
    grown = (runs[4 * n]["peak_mb"] - runs[n]["peak_mb"]) * 1024
    print(f"build peak RSS grew by {grown:.0f} KB for {extra} more clips "
          f"({grown / max(extra, 1):.1f} KB per clip)")
    print(ratio_line(f"build peak RSS, {4 * n} / {n} tracks", value, "<= 1.1 (flat: ~1)"))
    print(f"ratio msd_build_rss_4n_over_n {value:.3f}")


def audio_section(work: str, tracks: int, seconds: float) -> None:
    from tagger.audio import AudioDecodeError, load_audio
    from tagger.config import BuildConfig
    from tagger.datasets.build import build as build_source
    from tagger.datasets.msd.plan import SOURCE, MsdSettings, plan_msd

    data = metadata(os.path.join(work, f"audio{tracks}_{seconds:g}s"), tracks, audio=True,
                    seconds=seconds)
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
        return build_source(SOURCE, MsdSettings(), BuildConfig(
            data_dir=data, out_dir=os.path.join(work, out), workers=1, progress=False))

    build("warmup")
    decoded, floor_s = timed(floor)
    info, ours_s = timed(build, "out1")
    clips = sum(s["clips"] for s in info.splits.values())
    assert clips == decoded, (clips, decoded)
    print(f"{clips} previews: floor {clips / floor_s:.1f} clips/s, build_msd 1 worker "
          f"{clips / ours_s:.1f} clips/s")
    print(ratio_line("build_msd throughput, 1 worker / decode+resample floor",
                     floor_s / ours_s, ">= 0.7"))
    print(f"ratio msd_build_floor {floor_s / ours_s:.3f}")


def leak_section(work: str, tracks: int) -> None:
    from tagger.datasets.msd.leakage import leak_scores
    from tagger.datasets.msd.plan import MsdSettings, plan_msd

    data = metadata(os.path.join(work, f"leak{tracks}"), tracks, audio=True, seconds=2.0)
    artist, leaky = leak_scores(plan_msd(data, MsdSettings(), progress=False))
    print(f"k-NN tagger macro ROC-AUC: artist-level split {artist:.3f}, "
          f"track-level random splits {leaky:.3f}")
    print(ratio_line("ROC-AUC, artist-leaking / artist-level split", leaky / artist,
                     ">= 1.1 (the leak CALS avoids)"))
    print(f"ratio msd_leak_roc_auc {leaky / artist:.3f}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tracks", type=int, default=25000, help="N (default: 25000)")
    p.add_argument("--build-tracks", type=int, default=50,
                   help="N' of the complete builds (default: 50)")
    p.add_argument("--build-seconds", type=float, default=10.0,
                   help="preview length of the complete builds (default: 10)")
    p.add_argument("--audio", action="store_true", help="also measure clips/s on previews")
    p.add_argument("--audio-tracks", type=int, default=60)
    p.add_argument("--audio-seconds", type=float, default=30.0,
                   help="preview length of --audio (default: 30)")
    p.add_argument("--leak", action="store_true",
                   help="also score an artist-leaking split against the artist-level one")
    p.add_argument("--leak-tracks", type=int, default=200)
    p.add_argument("--work-dir", default=None, help="keep data here (default: a temp dir)")
    args = p.parse_args()
    work = args.work_dir or tempfile.mkdtemp(prefix="bench_msd_")
    planning_section(work, args.tracks)
    build_section(work, args.build_tracks, args.build_seconds)
    if args.audio:
        audio_section(work, args.audio_tracks, args.audio_seconds)
    if args.leak:
        leak_section(work, args.leak_tracks)


if __name__ == "__main__":
    main()
