"""A track tagged from N of its windows against all of them, on recorded
music, and the speed it buys.

    python bench/bench_windows.py [--model MTT_musicnn] [--music-dir DIR] [--debs-dir DIR]
                                  [--files PATH ...] [--windows 1 2 4 8 16 32]
                                  [--engines keras tflite-int8] [--speed-files 16]
                                  [--speed-minutes 4]

Lays out Debian's game soundtracks (`tagger.demos.soundtracks`: nexuiz,
warzone2100 and asc music, fetched with apt-get download into
`--debs-dir` where missing) in `--music-dir`, or takes `--files`, whole
recordings. Then:

1. quality: every window of every track scored once with the keras
   engine (`tag_files`, as tag.py scores them), and for each of
   `--windows` N the mean of the windows `window_choice.choose` picks from
   the track's length by its header (the windows tag.py --windows N reads
   by seeking: the same samples, tests/test_audio_spans.py), against the
   mean of every window: per track, the overlap of the top 5 tags (0 to 1
   in steps of 0.2) and the Pearson correlation of the tags' scores; the
   mean over tracks. The first three tracks are also tagged with
   `tag_files(windows=8)` itself: its scores against every window's at the
   chosen windows (the largest difference is printed);
2. speed: `--speed-files` MP3s of `--speed-minutes` at 44.1 kHz stereo
   (LAME through libsndfile), cut from the recordings of that length or
   more (in turn, where fewer), tagged with `tag_files(windows=N)` for each
   engine of `--engines` and each N, and with every window: files per
   hour on this machine's cores, the engine built and traced (and int8
   calibrated on the same files, as tag.py does) before the clock starts.

Ratio lines: `windows_top5_of_all_<N>`, `windows_score_corr_of_all_<N>`,
`windows_files_per_hour_<engine>_<N>` and `..._all` (every window). The
default for library jobs (`window_choice.LIBRARY_WINDOWS`) is the smallest
N whose top-5 overlap is 0.9 or more here (docs/performance.md).

`--tiny` checks that the bench runs: an untrained package Musicnn at a
sixteenth of its filters, on tones written to files (its figures mean
nothing).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from common import (
    add_soundtrack_flags,
    refuse_soundtracks_with_other_audio,
    untrained_pons_musicnn,
)

PACKAGES = ("nexuiz-music", "warzone2100-music", "asc-music")
SPEED_RATE = 44100  # Hz of the speed set's MP3s, stereo


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_soundtrack_flags(p)
    p.add_argument("--files", nargs="+", default=None, metavar="PATH",
                   help="recordings (files or folders) instead of the soundtracks")
    p.add_argument("--windows", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    p.add_argument("--engines", nargs="+", default=["keras", "tflite-int8"])
    p.add_argument("--speed-files", type=int, default=None, help="(default 16; --tiny: 2)")
    p.add_argument("--speed-minutes", type=float, default=None,
                   help="length of each speed file (default 4; --tiny: 0.25)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--tiny", action="store_true",
                   help="an untrained tiny model on generated audio: checks that the bench "
                        "runs (its figures mean nothing)")
    args = p.parse_args(argv)
    refuse_soundtracks_with_other_audio(p, args)
    if args.tiny and (args.model or args.files):
        p.error("--tiny runs an untrained tiny model on generated audio: leave out --model "
                "and --files")
    if any(n < 1 for n in args.windows) or (args.speed_files or 1) < 1:
        p.error("--windows and --speed-files take positive counts")
    args.model = args.model or "MTT_musicnn"
    args.speed_files = args.speed_files or (2 if args.tiny else 16)
    args.speed_minutes = args.speed_minutes or (0.25 if args.tiny else 4.0)
    return args


def recordings(args) -> list:
    from tagger.inference.inputs import find_audio

    if args.files:
        return list(find_audio(args.files, recursive=True).files)
    from tagger.demos.soundtracks import SOUNDTRACKS, music_folder

    music = args.music_dir or tempfile.mkdtemp(prefix="bench_windows_")
    wanted = [s for s in SOUNDTRACKS if s.package in PACKAGES]
    folders = music_folder(music, args.debs_dir or os.path.join(music, "debs"), wanted)
    return list(find_audio([str(f) for f in folders], recursive=True).files)


def tiny_recordings(folder) -> list:
    """Tones gliding at different speeds in noise, 25 s each, as WAV."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    paths = []
    for i in range(3):
        t = np.arange(25 * 16000) / 16000
        audio = 0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t * (1 + 0.01 * (i + 1) * t))
        path = os.path.join(folder, f"tiny{i}.wav")
        sf.write(path, (audio + 0.05 * rng.standard_normal(len(t))).astype("float32"), 16000)
        paths.append(path)
    return paths


def speed_files(tracks, folder, count: int, minutes: float) -> list:
    """`count` MP3s of `minutes` at 44.1 kHz stereo in `folder`, cut from the
    start of the tracks that long (in turn; all tracks where none is), made once."""
    import numpy as np
    import soundfile as sf

    from tagger.audio import file_info, load_audio

    os.makedirs(folder, exist_ok=True)
    seconds = minutes * 60
    long_enough = [p for p in tracks if (file_info(p).frames or 0) >= seconds
                   * file_info(p).sample_rate] or list(tracks)
    paths = []
    for i in range(count):
        path = os.path.join(folder, f"speed{i:03d}_{minutes:g}min.mp3")
        if not os.path.exists(path):
            audio = load_audio(long_enough[i % len(long_enough)], SPEED_RATE)
            audio = np.resize(audio, int(seconds * SPEED_RATE))  # repeated where short
            stereo = np.stack([audio, np.roll(audio, 17)], axis=1)
            sf.write(path + ".part", stereo, SPEED_RATE, format="MP3",
                     subtype="MPEG_LAYER_III")
            os.replace(path + ".part", path)
        paths.append(path)
    return paths


def quality(keras, tracks, windows, batch_size):
    """{N: (mean top-5 overlap, mean Pearson)} over `tracks`, and the
    largest difference of tag_files(windows=8)'s scores from every window's."""
    import numpy as np

    from tagger.audio_spans import SpanReader
    from tagger.evaluation.agreement import top_k_overlap
    from tagger.inference.engine.tagging import tag_files
    from tagger.inference.window_choice import choose
    from tagger.runtime import native_stderr_silenced

    with native_stderr_silenced():
        every = {r.path: r for r in tag_files(keras, tracks, batch_size=batch_size) if r.ok}
        checked = list(every)[:3]
        largest = 0.0
        for r in tag_files(keras, checked, batch_size=batch_size, windows=8):
            picked = every[r.path].scores if r.chosen is None else every[r.path].scores[r.chosen]
            largest = max(largest, float(np.abs(r.scores - picked).max()))
    lengths = {}
    for path, result in every.items():
        with SpanReader(path, keras.sample_rate) as reader:
            lengths[path] = reader.length or result.samples
    hop = next(iter(every.values())).hop_samples
    edge = next(iter(every.values())).edge_padding
    found = {}
    for n in windows:
        overlaps, correlations = [], []
        for path, result in every.items():
            picks = choose(lengths[path], n, keras.window_samples, hop, edge, keras.sample_rate)
            mean = result.scores.mean(axis=0)
            some = mean if picks is None else result.scores[picks].mean(axis=0)
            overlaps.append(float(top_k_overlap(some[None], mean[None], 5)[0]))
            correlations.append(float(np.corrcoef(some, mean)[0, 1]) if some.std() > 0
                                and mean.std() > 0 else 1.0)
        found[n] = (float(np.mean(overlaps)), float(np.mean(correlations)))
    minutes = np.mean([r.duration for r in every.values()]) / 60
    windows_each = np.mean([r.windows for r in every.values()])
    return found, largest, (len(every), minutes, windows_each)


def files_per_hour(predictor, files, windows, batch_size) -> float:
    from tagger.inference.engine.tagging import tag_files
    from tagger.runtime import native_stderr_silenced

    with native_stderr_silenced():
        start = time.perf_counter()
        done = sum(r.ok for r in tag_files(predictor, files, batch_size=batch_size,
                                           windows=windows))
        seconds = time.perf_counter() - start
    return done / seconds * 3600


def main(argv=None):
    args = parse_args(argv)
    from tagger import runtime
    runtime.quiet_tensorflow()
    import numpy as np

    from tagger.inference.common import available_cores
    from tagger.inference.engine.registry import EngineOptions, make_predictor
    from tagger.inference.window_choice import LIBRARY_WINDOWS
    from tagger.runtime import native_stderr_silenced

    work = tempfile.mkdtemp(prefix="bench_windows_")
    if args.tiny:
        model, info = untrained_pons_musicnn(1 / 16)
        tracks, label = tiny_recordings(work), "untrained tiny pons_musicnn"
        speed_folder = os.path.join(work, "speed")
    else:
        from tagger.models.saved import load_tagger
        from tagger.pretrained.store import resolve_model

        model, info = load_tagger(resolve_model(args.model, progress=False))
        tracks, label = recordings(args), args.model
        speed_folder = os.path.join(args.music_dir or work, "speed")
    keras = make_predictor("keras", model, info)
    print(f"{label}: {len(tracks)} recordings; {available_cores()} cores, load average "
          f"{os.getloadavg()[0]:.1f} at the start (other processes share the machine)",
          flush=True)
    found, largest, (count, minutes, windows_each) = quality(keras, tracks, args.windows,
                                                            args.batch_size)
    print(f"quality: {count} tracks of {minutes:.1f} minutes on average, {windows_each:.0f} "
          f"windows each; tag_files(windows=8) on 3 of them gives every window's scores at "
          f"the chosen windows within {largest:.1e}", flush=True)
    print("| N | top-5 overlap with every window | Pearson of the tag scores |")
    print("|---|---|---|")
    for n, (overlap, correlation) in found.items():
        print(f"| {n} | {overlap:.3f} | {correlation:.4f} |")
    enough = [n for n in sorted(found) if found[n][0] >= 0.9]
    print(f"smallest N with a top-5 overlap of 0.9 or more: "
          f"{enough[0] if enough else 'none measured'} (the library default is "
          f"{LIBRARY_WINDOWS})", flush=True)

    files = speed_files(tracks, speed_folder, args.speed_files, args.speed_minutes)
    print(f"speed: {len(files)} MP3s of {args.speed_minutes:g} minutes, {SPEED_RATE} Hz "
          f"stereo", flush=True)
    speeds = {}
    for engine in args.engines:
        with native_stderr_silenced():
            predictor = make_predictor(engine, model, info,
                                       EngineOptions(calibration_audio=lambda: files))
        for size in (args.batch_size, 1):  # traced for full batches, then for any size
            predictor(np.zeros((size, predictor.window_samples), np.float32))
        for n in [*args.windows, None]:
            speeds[engine, n] = files_per_hour(predictor, files, n, args.batch_size)
            print(f"  {engine}, {n or 'every'} window{'s' if n not in (1, None) else ''}: "
                  f"{speeds[engine, n]:.0f} files per hour (load average "
                  f"{os.getloadavg()[0]:.1f})", flush=True)
    for n, (overlap, correlation) in found.items():
        print(f"ratio windows_top5_of_all_{n} {overlap:.3f}")
        print(f"ratio windows_score_corr_of_all_{n} {correlation:.4f}")
    for (engine, n), value in speeds.items():
        print(f"ratio windows_files_per_hour_{engine.replace('-', '_')}_{n or 'all'} "
              f"{value:.0f}")


if __name__ == "__main__":
    main()
