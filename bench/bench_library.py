"""Tagging a whole library into a results database: files per hour, memory
over the run, and a run killed midway that resumes to the same rows.

    python bench/bench_library.py [--files 1000] [--minutes 3 5] [--songs 24]
                                  [--model MTT_musicnn] [--engine keras]
                                  [--windows N|all] [--stage-files 24]
                                  [--kill-at 0.3] [--work-dir DIR]

Makes (once) `--songs` songs of `--minutes` each (drawn between the two,
seeded) from the synthetic generator's music (`render_clip` of its clips'
attributes, at 16 kHz), resampled to 44.1 kHz stereo and encoded as MP3
(libsndfile's LAME), and a library folder of `--files` MP3s, copies of the
songs in turn (what decoding and tagging a file cost does not depend on
whether another file holds the same music). Then, each in a process of
its own, as a user runs it:

1. `tag.py MODEL LIBRARY --recursive --db A.sqlite --engine ENGINE
   --no-progress` (with `--windows N` where given; tag.py's default for
   --db otherwise: `window_choice.LIBRARY_WINDOWS`), its
   resident memory (VmRSS) and the rows written so far read every
   `--sample-seconds`: files per hour from the first row to the last
   (and counting the start-up), and the memory at each tenth of the files;
2. the same into B.sqlite, killed (SIGKILL) once `--kill-at` of the files
   have their row, then run again: it skips the files B holds and tags the
   rest. B then holds the same rows as A: every file once, the same
   size, time, duration, windows and scores (within 1e-5: a window's
   batch mates differ between the runs);
3. where a file's time goes: each stage a library job runs per file,
   timed alone on one thread over the first `--stage-files` files of the
   library, as tag.py runs it in this mode: the walk (listing, the
   path's checks, its stat), open (the descriptor and the decoder's header:
   rate and length), probe (a second open for the file's rate, without
   --windows only), decode (with --windows: seek, decode and resample the
   chosen windows; else the whole file), model (the engine on those
   windows, in batches of 32 across files), database (the up-to-date
   query, the row and its commit); and tags read (mutagen; what
   --write-tags and the beets plugin add, not this run's). Each stage's
   share of their sum, and the sum against the run's time per file.

Ratio lines: `library_files_per_hour`, `library_rss_end_over_tenth` (the
memory at the last sample over that when a tenth of the files were done;
goal <= 1.1: nothing per file is kept), `library_resume_same_rows` (1
when B holds A's rows, else 0) and `library_stage_share_<stage>` for the
stages this run's tag.py runs. `--width W` tags with an untrained package
Musicnn at W of its filters instead of `--model` (the suite's tiny run).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

from common import synthetic_song, untrained_pons_musicnn

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBRARY_RATE = 44100  # Hz of the library's MP3s, stereo
COLUMNS = "path, size, mtime_ns, duration, sample_rate, windows, padded, scores"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=1000)
    p.add_argument("--minutes", type=float, nargs=2, default=[3.0, 5.0],
                   metavar=("SHORTEST", "LONGEST"), help="length of each song")
    p.add_argument("--songs", type=int, default=24, help="distinct songs in the library")
    p.add_argument("--model", default="MTT_musicnn",
                   help="a pretrained name or a saved model, as tag.py takes them")
    p.add_argument("--width", type=float, default=None,
                   help="tag with an untrained package Musicnn at this width instead")
    p.add_argument("--engine", default="keras", help="tag.py --engine")
    p.add_argument("--windows", default=None, metavar="N",
                   help="tag.py --windows (N, or all; default: tag.py's default for --db)")
    p.add_argument("--stage-files", type=int, default=24,
                   help="files of the library whose stages are timed one by one")
    p.add_argument("--kill-at", type=float, default=0.3,
                   help="the share of the files with a row when run B is killed")
    p.add_argument("--sample-seconds", type=float, default=2.0)
    p.add_argument("--work-dir", default=None,
                   help="keep the songs and the library here (default: a temp dir)")
    return p.parse_args(argv)


def make_songs(folder: str, count: int, minutes) -> list:
    """`count` synthetic songs as 44.1 kHz stereo MP3s in `folder`, made once."""
    import numpy as np
    import soundfile as sf

    os.makedirs(folder, exist_ok=True)
    lengths = np.random.default_rng(0).uniform(*minutes, count) * 60
    paths = []
    for i, seconds in enumerate(lengths):
        path = os.path.join(folder, f"song{i:03d}.mp3")
        if not os.path.exists(path):
            sf.write(path + ".part", synthetic_song(float(seconds), i, LIBRARY_RATE),
                     LIBRARY_RATE, format="MP3", subtype="MPEG_LAYER_III")
            os.replace(path + ".part", path)
        paths.append(path)
    return paths


def make_library(folder: str, songs: list, files: int) -> None:
    """`files` copies of `songs` in turn in `folder`, made once."""
    os.makedirs(folder, exist_ok=True)
    for i in range(files):
        path = os.path.join(folder, f"{i // 100:02d}", f"track{i:05d}.mp3")
        if not os.path.exists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            shutil.copyfile(songs[i % len(songs)], path + ".part")
            os.replace(path + ".part", path)


def rows_in(db: str) -> int:
    """Rows of the files table of `db` so far (0 before it exists)."""
    if not os.path.exists(db):
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as connection:
            return connection.execute("SELECT count(*) FROM files").fetchone()[0]
    except sqlite3.Error:  # the table is not there yet
        return 0


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def run_tag(model: str, library: str, db: str, engine: str, log: str, sample_seconds: float,
            kill_at: int | None = None, windows: str | None = None):
    """Runs tag.py into `db`; [(seconds since start, rows, RSS MB)] sampled
    while it runs, and whether it was killed (at `kill_at` rows)."""
    command = [sys.executable, os.path.join(ROOT, "tag.py"), model, library, "--recursive",
               "--db", db, "--engine", engine, "--no-progress"]
    if windows is not None:
        command += ["--windows", windows]
    samples, killed = [], False
    start = time.perf_counter()
    with open(log, "a") as err:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT)
        while process.poll() is None:
            time.sleep(sample_seconds)
            rows, memory = rows_in(db), rss_mb(process.pid)
            if memory is not None:
                samples.append((time.perf_counter() - start, rows, memory))
            if kill_at is not None and rows >= kill_at and process.poll() is None:
                process.send_signal(signal.SIGKILL)
                killed = True
        process.wait()
    if not killed and process.returncode != 0:
        raise SystemExit(f"tag.py exited with {process.returncode}; see {log}")
    samples.append((time.perf_counter() - start, rows_in(db), None))
    return samples, killed


def rows_of(db: str) -> dict:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as connection:
        return {row[0]: row[1:] for row in
                connection.execute(f"SELECT {COLUMNS} FROM files ORDER BY path")}


def same_rows(a: dict, b: dict) -> tuple[bool, float]:
    """(whether `b` holds `a`'s rows, the largest score difference)."""
    import numpy as np

    if a.keys() != b.keys():
        return False, float("inf")
    largest = 0.0
    for path, row in a.items():
        other = b[path]
        if row[:-1] != other[:-1]:
            return False, float("inf")
        scores = np.frombuffer(row[-1], np.float32)
        again = np.frombuffer(other[-1], np.float32)
        if scores.shape != again.shape:
            return False, float("inf")
        largest = max(largest, float(np.abs(scores - again).max()))
    return largest <= 1e-5, largest


def stage_shares(args, model: str, library: str, work: str, run_seconds: float) -> dict:
    """Times each stage of a library job on the first `--stage-files` files
    (see the module's docstring) and prints them; {stage: share of their
    sum} of the stages this run's tag.py runs."""
    import mutagen
    import numpy as np

    from tagger import runtime
    from tagger.audio import audio_windows, file_info
    from tagger.audio_spans import SpanReader
    from tagger.inference.engine.registry import EngineOptions, make_predictor
    from tagger.inference.engine.tagging import FileResult
    from tagger.inference.inputs import iter_audio
    from tagger.inference.library.results_db import ResultsWriter
    from tagger.inference.window_choice import (
        LIBRARY_WINDOWS,
        read_chosen,
        windows_count,
    )
    from tagger.models.saved import load_tagger
    from tagger.pretrained.store import resolve_model

    runtime.quiet_tensorflow()
    windows = LIBRARY_WINDOWS if args.windows is None else windows_count(args.windows) or None
    times = dict.fromkeys(("walk", "open", "probe", "decode", "model", "database",
                           "tags_read"), 0.0)

    def timed(stage, fn, *a, **k):
        start = time.perf_counter()
        value = fn(*a, **k)
        times[stage] += time.perf_counter() - start
        return value

    start = time.perf_counter()
    files = []
    for path, problem in iter_audio([library], recursive=True):
        if problem is None:
            os.stat(path)
            files.append(path)
        if len(files) == args.stage_files:
            break
    times["walk"] = time.perf_counter() - start
    model_path = resolve_model(model, progress=False)
    predictor = make_predictor(args.engine, *load_tagger(model_path),
                               EngineOptions(calibration_audio=lambda: files,
                                             model_path=model_path))
    hop = predictor.hop_samples or predictor.window_samples
    edge = predictor.edge_padding or 0
    window = predictor.window_samples
    results, scored, rate = [], [], predictor.sample_rate
    for path in files:
        timed("tags_read", mutagen.File, path)
        if windows:
            timed("open", lambda p: SpanReader(p, rate).close(), path)
            read = timed("decode", lambda p: list(read_chosen(p, rate, window, hop, edge,
                                                              windows)), path)
        else:
            timed("probe", file_info, path)
            read = timed("decode", lambda p: list(audio_windows(p, rate, window, hop,
                                                                edge_padding=edge)), path)
        scored.append(np.stack([samples for _, samples in read]))
        results.append((path, len(read), os.stat(path)))
    if windows:
        times["decode"] -= times["open"]  # read_chosen opens the file too
    batch = np.concatenate(scored)
    predictor(batch[:32])  # built and traced
    start = time.perf_counter()
    scores = np.concatenate([predictor(batch[i:i + 32])[0] for i in range(0, len(batch), 32)])
    times["model"] = time.perf_counter() - start
    db = os.path.join(work, "stages.sqlite")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(db + suffix):
            os.remove(db + suffix)
    start = time.perf_counter()
    writer = ResultsWriter(db, model_path, predictor.tag_names, predictor.sample_rate,
                           window, embeddings=False, windows=windows)
    row = 0
    for path, count, stat in results:
        writer.current_scores(path)
        writer.add(FileResult(index=0, path=path, windows=count, samples=count * hop,
                              sample_rate=predictor.sample_rate, window_samples=window,
                              hop_samples=hop, clip_scores=scores[row:row + count].mean(0),
                              read_stat=stat))
        row += count
    writer.close()
    times["database"] = time.perf_counter() - start
    ran = [s for s in ("walk", "open", "probe", "decode", "model", "database")
           if times[s] > 0]
    total = sum(times[s] for s in ran)
    what = {"walk": "listing, the path's checks, its stat",
            "open": "the descriptor, the decoder's header: rate and length",
            "probe": "a second open, for the file's rate",
            "decode": (f"seek, decode and resample the {windows} chosen windows" if windows
                       else "decode and resample the whole file"),
            "model": f"--engine {args.engine}, in batches of 32 across files",
            "database": "the up-to-date query, the row, its commit",
            "tags_read": "mutagen; --write-tags and the beets plugin read them, not this run"}
    count = len(files)
    print(f"where a file's time goes ({count} files of the library, each stage alone on one "
          f"thread, --windows {windows or 'all'}): {total / count * 1000:.1f} ms of stages "
          f"per file; the run took {run_seconds * 1000:.1f} ms per file on "
          f"{os.cpu_count()} cores", flush=True)
    for stage in (*ran, "tags_read"):
        share = f"{times[stage] / total:6.1%}" if stage in ran else "   (not in this run)"
        print(f"  {stage:10s} {times[stage] / count * 1000:8.2f} ms {share}  ({what[stage]})")
    return {stage: times[stage] / total for stage in ran}


def main():
    args = parse_args()
    work = args.work_dir or tempfile.mkdtemp(prefix="bench_library_")
    songs = make_songs(os.path.join(work, "songs"), args.songs, args.minutes)
    library = os.path.join(work, f"library{args.files}")
    make_library(library, songs, args.files)
    model = args.model
    if args.width is not None:
        model = os.path.join(work, f"pons_musicnn_{args.width}.keras")
        if not os.path.exists(model):
            from tagger.models.saved import save_tagger

            save_tagger(*untrained_pons_musicnn(args.width), model)
    print(f"library: {args.files} MP3s ({LIBRARY_RATE} Hz stereo), copies of {len(songs)} "
          f"songs of {args.minutes[0]:g} to {args.minutes[1]:g} minutes; model {model}, "
          f"--engine {args.engine}; {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f} (other processes share the machine)", flush=True)
    dbs = {name: os.path.join(work, f"{name}.sqlite") for name in ("A", "B")}
    for db in dbs.values():
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.remove(db + suffix)
    log = os.path.join(work, "tag.log")

    samples, _ = run_tag(model, library, dbs["A"], args.engine, log, args.sample_seconds,
                         windows=args.windows)
    tagged = [(t, rows) for t, rows, _ in samples if rows]
    total = samples[-1][0]
    first, last = tagged[0], tagged[-1]
    with_start = last[1] / total * 3600
    steady = ((last[1] - first[1]) / (last[0] - first[0]) * 3600 if last[1] > first[1]
              else with_start)  # every row came at once: a library too small to tell
    print(f"A: {last[1]} files in {total:.0f} s: {with_start:.0f} files per hour "
          f"with the start-up, {steady:.0f} from the first row to the last", flush=True)
    memory = [(rows, mb) for _, rows, mb in samples if mb is not None]
    tenth = next((mb for rows, mb in memory if rows >= args.files / 10), memory[0][1])
    marks = []
    for share in range(1, 11):
        done = [mb for rows, mb in memory if rows <= args.files * share / 10]
        if done:
            marks.append(f"{share * 10}%: {done[-1]:.0f}")
    print(f"resident memory (MB) at the files done: {', '.join(marks)}; largest "
          f"{max(mb for _, mb in memory):.0f}", flush=True)

    kill_at = max(1, int(args.files * args.kill_at))
    _, killed = run_tag(model, library, dbs["B"], args.engine, log, args.sample_seconds / 4,
                        kill_at=kill_at, windows=args.windows)
    at_kill = rows_in(dbs["B"])
    again, _ = run_tag(model, library, dbs["B"], args.engine, log, args.sample_seconds,
                       windows=args.windows)
    same, largest = same_rows(rows_of(dbs["A"]), rows_of(dbs["B"]))
    print(f"B: {'killed (SIGKILL)' if killed else 'finished before the kill'} with "
          f"{at_kill} rows, run again: {rows_in(dbs['B']) - at_kill} more in "
          f"{again[-1][0]:.0f} s; B {'holds' if same else 'does NOT hold'} A's rows "
          f"(largest score difference {largest:.1e})", flush=True)
    shares = stage_shares(args, model, library, work, 3600 / steady)
    print(f"ratio library_files_per_hour {steady:.0f}")
    print(f"ratio library_rss_end_over_tenth {memory[-1][1] / tenth:.3f}")
    print(f"ratio library_resume_same_rows {1.0 if same else 0.0:.1f}")
    for stage, share in shares.items():
        print(f"ratio library_stage_share_{stage} {share:.4f}")


if __name__ == "__main__":
    main()
