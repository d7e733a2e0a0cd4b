"""A track tagged from N of its windows against all of them, on recorded
music per package, the library default chosen from it, and the speed it buys.

    python bench/bench_windows.py [--model MTT_musicnn] [--music-dir DIR] [--debs-dir DIR]
                                  [--packages PKG ...] [--files PATH ...]
                                  [--windows 1 2 4 6 8 10 12 16 24 32] [--scores FILE]
                                  [--package-goal 0.9] [--overall-goal 0.93] [--margin 0.02]
                                  [--decide-by tie-aware] [--tie 0.01]
                                  [--engines keras tflite-int8] [--speed-files 16]
                                  [--speed-minutes 4]

Lays out Debian's game soundtracks `--packages` (`tagger.demos.soundtracks`,
by default six: nexuiz, warzone2100, singularity, ufoai, planetblupi and
fretsonfire's sectoid songs, each song's stems mixed; fetched with apt-get
download into `--debs-dir` where missing) in `--music-dir`, one group per
package, or takes `--files`, whole recordings, one group per argument. Then:

1. quality: every window of every track scored once with the keras
   engine (`tag_files`, as tag.py scores them; kept in `--scores` where
   given, and read from it on a later run for the same model and
   unchanged files), and for each N of `--windows` and each edge rule
   the mean of the windows `window_choice.choose` picks from the track's
   length by its header (the windows tag.py --windows N reads by seeking:
   the same samples, tests/test_audio_spans.py; a subset of every
   window's grid, so no window is scored twice) against the mean of every
   window. The edge rules: `edges out` leaves the first and last
   `EDGES_OUT` seconds out where the track allows, `whole track` spreads
   the N windows over all of it (tag.py's: `window_choice.EDGE_SECONDS`);
   `inside` is every window of the edges-out span.
   Per track: the overlap of the top 5 tags (0 to 1 in steps of 0.2),
   plain and tie-aware (`agreement.tie_aware_top_k_overlap`: a tag of the
   N windows' top 5 matches where every window scores it within
   `--tie` of every window's fifth tag or above), and the Pearson
   correlation of the tags' scores. Tables: over all tracks (the mean, the
   lowest track, the share under 0.8) and per group. The first three
   tracks are also tagged with `tag_files(windows=8)` itself: its scores
   against every window's at the chosen windows (the largest difference);
2. the choice: for each edge rule and each overlap (plain, tie-aware), the
   smallest N whose mean overlap is at least `--package-goal` + `--margin`
   in every group and `--overall-goal` + `--margin` over all tracks, as it
   is for every larger N measured (a group's mean over a few tracks moves
   by a few hundredths from one N to the next); of the rules, the one
   with the smaller N (at equal N the higher overall overlap), by the
   overlap `--decide-by` (default tie-aware);
3. speed (`--speed-files` 0: left out): MP3s of `--speed-minutes` at
   44.1 kHz stereo (LAME through libsndfile), cut from the recordings of
   that length or more (in turn, where fewer), tagged with
   `tag_files(windows=N)` for each engine of `--engines` and each N, and
   with every window: files per hour on this machine's cores, the engine
   built and traced (and int8 calibrated on the same files, as tag.py
   does) before the clock starts.

Ratio lines: `windows_top5_of_all_<N>`, `windows_score_corr_of_all_<N>`
(tag.py's rule, plain overlap), `windows_top5_<rule>_<N>` and `windows_top5_ties_<rule>_<N>`
(rule: `edges_out`, `whole`), `windows_choice_<rule>` (the N chosen, 0 for
none), `windows_files_per_hour_<engine>_<N>` and `..._all` (every window).
The default for library jobs is `window_choice.LIBRARY_WINDOWS`
(docs/performance.md, "A track from N windows").

`--tiny` checks that the bench runs: an untrained package Musicnn at a
sixteenth of its filters, on tones written to files in two groups (its
figures mean nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from common import (
    add_soundtrack_flags,
    refuse_soundtracks_with_other_audio,
    untrained_pons_musicnn,
)

PACKAGES = ("nexuiz-music", "warzone2100-music", "singularity-music", "ufoai-music",
            "planetblupi-music-ogg", "fretsonfire-songs-sectoid")
WINDOWS = (1, 2, 4, 6, 8, 10, 12, 16, 24, 32)
RULES = ("edges_out", "whole")  # ratio-line names of the edge rules
EDGES_OUT = 10.0  # seconds the edges-out rule leaves out at each end
RULE_TITLES = {"edges_out": "edges out", "whole": "whole track"}
FIGURES = ("plain", "tie-aware")  # the overlaps measured, in `quality`'s order
LOW = 0.8  # a track whose overlap is under this is counted
SPEED_RATE = 44100  # Hz of the speed set's MP3s, stereo


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_soundtrack_flags(p)
    p.add_argument("--packages", nargs="+", default=None, metavar="PKG",
                   help="Debian soundtracks to measure on, one group each (default: the six "
                        "of the module's docstring)")
    p.add_argument("--files", nargs="+", default=None, metavar="PATH",
                   help="recordings (files or folders, one group each) instead of the "
                        "soundtracks")
    p.add_argument("--windows", type=int, nargs="+", default=list(WINDOWS))
    p.add_argument("--scores", default=None, metavar="FILE",
                   help="keep every window's scores here (.npz) and read them back on a "
                        "later run")
    p.add_argument("--package-goal", type=float, default=0.9,
                   help="the mean top-5 overlap every group must reach")
    p.add_argument("--overall-goal", type=float, default=0.93,
                   help="the mean top-5 overlap over all tracks must reach")
    p.add_argument("--margin", type=float, default=0.02,
                   help="added to both goals for the choice")
    p.add_argument("--decide-by", choices=FIGURES, default="tie-aware",
                   help="the overlap the choice is made on (both are printed)")
    p.add_argument("--tie", type=float, default=0.01,
                   help="every window's scores this close to its fifth tag's tie with it")
    p.add_argument("--engines", nargs="+", default=["keras", "tflite-int8"])
    p.add_argument("--speed-files", type=int, default=None,
                   help="(default 16; --tiny: 2; 0: no speed part)")
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
    if args.packages and (args.files or args.tiny):
        p.error(f"--packages names the soundtracks to measure on: leave it out with "
                f"{'--files' if args.files else '--tiny'}")
    if args.scores and args.tiny:
        p.error("--scores keeps the scores of recordings: leave it out with --tiny")
    args.packages = args.packages or list(PACKAGES)
    if any(n < 1 for n in args.windows) or (args.speed_files or 0) < 0:
        p.error("--windows takes positive counts, --speed-files 0 or more")
    args.model = args.model or "MTT_musicnn"
    if args.speed_files is None:
        args.speed_files = 2 if args.tiny else 16
    args.speed_minutes = args.speed_minutes or (0.25 if args.tiny else 4.0)
    return args


def recordings(args) -> dict:
    """{group: [paths]}: the soundtracks' by package, or `--files`' by argument."""
    from tagger.inference.inputs import find_audio

    if args.files:
        return {os.path.basename(os.path.normpath(given)) or given:
                list(find_audio([given], recursive=True).files) for given in args.files}
    from tagger.demos.soundtracks import music_folder, soundtrack_named

    music = args.music_dir or tempfile.mkdtemp(prefix="bench_windows_")
    wanted = [soundtrack_named(package) for package in args.packages]
    folders = music_folder(music, args.debs_dir or os.path.join(music, "debs"), wanted)
    return {s.package: list(find_audio([str(f)], recursive=True).files)
            for s, f in zip(wanted, folders)}


def tiny_recordings(folder) -> dict:
    """{group: [paths]}: tones gliding at different speeds in noise, 25 s
    each, as WAV, in two groups."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    groups = {}
    for i in range(3):
        t = np.arange(25 * 16000) / 16000
        audio = 0.3 * np.sin(2 * np.pi * (200 + 150 * i) * t * (1 + 0.01 * (i + 1) * t))
        path = os.path.join(folder, f"tiny{i}.wav")
        sf.write(path, (audio + 0.05 * rng.standard_normal(len(t))).astype("float32"), 16000)
        groups.setdefault(f"tones{i % 2}", []).append(path)
    return groups


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


class EveryWindow:
    """Every window's scores of recordings, (windows, tags) each, with each
    file's length by its header (samples at the model's rate), kept in an
    .npz `path` where given: an entry is read back for the same `model`
    label and file (path, size, modification time)."""

    def __init__(self, path: str | None, model: str):
        import numpy as np

        self.path, self.model, self.found = path, model, {}
        if path and os.path.exists(path):
            with np.load(path) as data:
                index = json.loads(str(data["index"]))
                if index["model"] == model:
                    self.found = {tuple(key): (data[f"s{i}"], length)
                                  for i, (key, length) in enumerate(index["files"])}

    @staticmethod
    def key(path: str) -> tuple:
        stat = os.stat(path)
        return path, stat.st_size, stat.st_mtime_ns

    def get(self, path: str):
        """(scores, length) kept for `path`, else None."""
        return self.found.get(self.key(path))

    def put(self, path: str, scores, length: int) -> None:
        self.found[self.key(path)] = (scores, int(length))

    def save(self) -> None:
        import numpy as np

        if not self.path:
            return
        items = list(self.found.items())
        index = {"model": self.model, "files": [[list(key), length]
                                                for key, (_, length) in items]}
        arrays = {f"s{i}": scores for i, (_, (scores, _)) in enumerate(items)}
        part = self.path + ".part.npz"
        np.savez(part, index=json.dumps(index), **arrays)
        os.replace(part, self.path)


def every_window(keras, tracks, batch_size, kept: EveryWindow):
    """{path: (scores (windows, tags), length)} for `tracks` (read from
    `kept`, else scored and kept), and the largest difference of
    tag_files(windows=8)'s scores from every window's at its windows."""
    import numpy as np

    from tagger.audio_spans import SpanReader
    from tagger.inference.engine.tagging import tag_files
    from tagger.runtime import native_stderr_silenced

    missing = [path for path in tracks if kept.get(path) is None]
    with native_stderr_silenced():
        for done, r in enumerate(tag_files(keras, missing, batch_size=batch_size), 1):
            if r.ok:
                with SpanReader(r.path, keras.sample_rate) as reader:
                    kept.put(r.path, r.scores, reader.length or r.samples)
            else:
                print(f"  skipped {r.path}: {r.error}", flush=True)
            if done % 10 == 0:
                kept.save()
                print(f"  every window: {done} of {len(missing)} tracks scored (load average "
                      f"{os.getloadavg()[0]:.1f})", flush=True)
        kept.save()
        every = {path: kept.get(path) for path in tracks if kept.get(path) is not None}
        largest = 0.0
        for r in tag_files(keras, list(every)[:3], batch_size=batch_size, windows=8):
            scores = every[r.path][0]
            picked = scores if r.chosen is None else scores[r.chosen]
            largest = max(largest, float(np.abs(r.scores - picked).max()))
    return every, largest


def quality(every, groups, windows, geometry, tie):
    """{(rule, N): {path: (plain overlap, tie-aware overlap, Pearson)}} of
    the N windows each rule picks against every window (see the module's
    docstring; N "inside": every window of the edges-out span)."""
    import numpy as np

    from tagger.evaluation.agreement import tie_aware_top_k_overlap, top_k_overlap
    from tagger.inference.window_choice import choose, windows_inside

    window, hop, edge, rate = geometry
    edges = {"edges_out": EDGES_OUT, "whole": 0.0}
    found = {}
    for rule in RULES:
        for n in [*windows, *(["inside"] if rule == "edges_out" else [])]:
            found[rule, n] = {}
            for path, (scores, length) in every.items():
                if n == "inside":
                    first, end = windows_inside(length, window, hop, edge,
                                                int(EDGES_OUT * rate))
                    picks = np.arange(first, end) if end > first else None
                else:
                    picks = choose(length, n, window, hop, edge, rate, edges[rule])
                mean = scores.mean(axis=0)
                some = mean if picks is None else scores[picks].mean(axis=0)
                plain = float(top_k_overlap(some[None], mean[None], 5)[0])
                tied = float(tie_aware_top_k_overlap(some[None], mean[None], 5, tie)[0])
                pearson = (float(np.corrcoef(some, mean)[0, 1]) if some.std() > 0
                           and mean.std() > 0 else 1.0)
                found[rule, n][path] = (plain, tied, pearson)
    return found


def summary(per_track: dict, paths=None):
    """(mean plain, mean tie-aware, mean Pearson, lowest plain, share of
    tracks under LOW) over `paths` (default: all)."""
    import numpy as np

    rows = np.array([per_track[p] for p in (paths if paths is not None else per_track)
                     if p in per_track])
    return (*rows.mean(axis=0), rows[:, 0].min(), float((rows[:, 0] < LOW).mean()))


def meets(found, groups, rule, n, goals, figure) -> bool:
    """Whether N windows under `rule` reach `goals` (every group's, all
    tracks') in `figure` (0: plain, 1: tie-aware)."""
    package_goal, overall_goal = goals
    slack = 1e-9  # the means are sums of fifths: 0.92 is 0.92
    return (summary(found[rule, n])[figure] >= overall_goal - slack
            and all(summary(found[rule, n], paths)[figure] >= package_goal - slack
                    for paths in groups.values()))


def choice(found, groups, windows, goals, figure):
    """{rule: the smallest N that reaches `goals` in `figure`, as does every
    larger N measured (or None)} and the rule chosen (None where no rule
    reaches them): see the module's docstring."""
    ordered = sorted(windows)
    chosen = {}
    for rule in RULES:
        passing = [meets(found, groups, rule, n, goals, figure) for n in ordered]
        chosen[rule] = next((n for i, n in enumerate(ordered) if all(passing[i:])), None)
    met = [rule for rule in RULES if chosen[rule] is not None]
    best = min(met, key=lambda rule: (chosen[rule],
                                      -summary(found[rule, chosen[rule]])[figure]),
               default=None)
    return chosen, best


def print_quality(found, groups, windows, goals, margin, tie, decide_by):
    """The tables of overlaps and the choice; returns `choice`'s answer for
    the figure `decide_by`."""
    print(f"| edge rule | N | top-5 overlap with every window (tie-aware, {tie:g}) | "
          f"Pearson | lowest track | tracks under {LOW} |")
    print("|---|---|---|---|---|---|")
    for rule, n in found:
        plain, tied, pearson, lowest, under = summary(found[rule, n])
        print(f"| {RULE_TITLES[rule]} | {n} | {plain:.3f} ({tied:.3f}) | {pearson:.4f} | "
              f"{lowest:.1f} | {under:.0%} |")
    names = list(groups)
    for rule in RULES:
        print(f"per group, {RULE_TITLES[rule]}: plain (tie-aware) top-5 overlap")
        print("| N | " + " | ".join(f"{g} ({len(groups[g])})" for g in names)
              + " | all |")
        print("|---|" + "---|" * (len(names) + 1))
        for n in [k for r, k in found if r == rule]:
            cells = [summary(found[rule, n], groups[g])[:2] for g in names]
            cells.append(summary(found[rule, n])[:2])
            print(f"| {n} | " + " | ".join(f"{a:.3f} ({b:.3f})" for a, b in cells) + " |")
    goals = (goals[0] + margin, goals[1] + margin)
    answers = {}
    for figure, name in enumerate(FIGURES):
        answers[name] = choice(found, groups, windows, goals, figure)
        for rule in RULES:
            print(f"smallest N, {RULE_TITLES[rule]}, {name} overlap, with every group's "
                  f">= {goals[0]:.2f} and all tracks' >= {goals[1]:.2f}, as with every larger "
                  f"N measured: {answers[name][0][rule] or 'none measured'}")
    chosen, best = answers[decide_by]
    print(f"choice by the {decide_by} overlap: "
          f"{'none' if best is None else f'N = {chosen[best]}, {RULE_TITLES[best]}'}",
          flush=True)
    return chosen, best


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
    from tagger.inference.window_choice import EDGE_SECONDS, LIBRARY_WINDOWS
    from tagger.runtime import native_stderr_silenced

    work = tempfile.mkdtemp(prefix="bench_windows_")
    if args.tiny:
        model, info = untrained_pons_musicnn(1 / 16)
        groups, label = tiny_recordings(work), "untrained tiny pons_musicnn"
        speed_folder = os.path.join(work, "speed")
    else:
        from tagger.models.saved import load_tagger
        from tagger.pretrained.store import resolve_model

        model, info = load_tagger(resolve_model(args.model, progress=False))
        groups, label = recordings(args), args.model
        speed_folder = os.path.join(args.music_dir or work, "speed")
    tracks = [path for paths in groups.values() for path in paths]
    keras = make_predictor("keras", model, info)
    print(f"{label}: {len(tracks)} recordings ("
          + ", ".join(f"{g} {len(p)}" for g, p in groups.items())
          + f"); {available_cores()} cores, load average {os.getloadavg()[0]:.1f} at the start "
          f"(other processes share the machine)", flush=True)
    every, largest = every_window(keras, tracks, args.batch_size,
                                  EveryWindow(args.scores, label))
    groups = {g: [p for p in paths if p in every] for g, paths in groups.items()}
    geometry = (keras.window_samples, keras.hop_samples or keras.window_samples,
                getattr(keras, "edge_padding", 0) or 0, keras.sample_rate)
    minutes = np.mean([length for _, length in every.values()]) / keras.sample_rate / 60
    windows_each = np.mean([len(scores) for scores, _ in every.values()])
    print(f"quality: {len(every)} tracks of {minutes:.1f} minutes on average, "
          f"{windows_each:.0f} windows each; tag_files(windows=8) on 3 of them gives every "
          f"window's scores at the chosen windows within {largest:.1e}", flush=True)
    found = quality(every, groups, args.windows, geometry, args.tie)
    chosen, _ = print_quality(found, groups, args.windows,
                              (args.package_goal, args.overall_goal), args.margin, args.tie,
                              args.decide_by)
    print(f"(the library default is {LIBRARY_WINDOWS})", flush=True)

    speeds = {}
    if args.speed_files:
        files = speed_files(tracks, speed_folder, args.speed_files, args.speed_minutes)
        print(f"speed: {len(files)} MP3s of {args.speed_minutes:g} minutes, {SPEED_RATE} Hz "
              f"stereo", flush=True)
    for engine in args.engines if args.speed_files else ():
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
    rule = {EDGES_OUT: "edges_out", 0.0: "whole"}[EDGE_SECONDS]  # tag.py's
    for n in args.windows:
        plain, _, pearson, _, _ = summary(found[rule, n])
        print(f"ratio windows_top5_of_all_{n} {plain:.3f}")
        print(f"ratio windows_score_corr_of_all_{n} {pearson:.4f}")
    for (rule, n), per_track in found.items():
        plain, tied, _, _, _ = summary(per_track)
        print(f"ratio windows_top5_{rule}_{n} {plain:.3f}")
        print(f"ratio windows_top5_ties_{rule}_{n} {tied:.3f}")
    for rule in RULES:
        print(f"ratio windows_choice_{rule} {chosen[rule] or 0}")
    for (engine, n), value in speeds.items():
        print(f"ratio windows_files_per_hour_{engine.replace('-', '_')}_{n or 'all'} "
              f"{value:.0f}")


if __name__ == "__main__":
    main()
