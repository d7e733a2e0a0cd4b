"""Tagging a library into a results database: is memory flat in the number
of files, and does the per-file work hide behind the model?

    python bench/bench_library.py [--files 200] [--factor 10] [--seconds 0.5]
                                  [--block se] [--width 0.25] [--work-dir DIR]

Makes (once) a folder of `--files * --factor` short WAV files (a tone each,
shorter than one model window: each is one zero-padded window) and a second
folder holding the first `--files` of them, and saves an untrained
sample-level CNN. Each folder is tagged by `tag(TagConfig(..., db=...))`
in a fresh process (so each peak RSS is its own), after a warm-up run on
two files in that process. Prints:

- peak RSS of the N-file run and of the 10N-file run, and their ratio
  (`ratio library_rss_10n_n`, goal <= 1.1: nothing per file is kept);
- files per second end to end (walk, decode, model, one row per file into
  SQLite, commits), from the first result to the last, against the model
  alone scoring the same number of windows in batches of the same size
  (`ratio library_e2e_model`, goal >= 0.9 on files this short, where the
  per-file costs weigh most); and the same with the run's start-up (model
  load, tracing) counted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

from common import ratio_line, saved_untrained_samplecnn


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--files", type=int, default=200, help="N (default 200)")
    p.add_argument("--factor", type=int, default=10, help="the larger run has N x this")
    p.add_argument("--seconds", type=float, default=0.5, help="length of each file")
    p.add_argument("--block", default="se")
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--work-dir", default=None, help="keep the files here (default: a temp dir)")
    p.add_argument("--child", nargs=3, metavar=("MODEL", "FOLDER", "DB"),
                   help=argparse.SUPPRESS)
    return p.parse_args(argv)


def make_files(folder: str, count: int, seconds: float, first: int = 0) -> None:
    import numpy as np
    import soundfile as sf

    os.makedirs(folder, exist_ok=True)
    rate = 22050
    t = np.arange(int(seconds * rate)) / rate
    for i in range(first, count):
        path = os.path.join(folder, f"{i:06d}.wav")
        if not os.path.exists(path):
            x = 0.3 * np.sin(2 * np.pi * (110 + i % 800) * t)
            sf.write(path, x.astype(np.float32), rate, subtype="PCM_16")


def child(args) -> None:
    """One measured run in this process: prints a JSON line."""
    from tagger import runtime
    runtime.quiet_tensorflow()
    import numpy as np

    from tagger.inference.engine.keras import KerasPredictor
    from tagger.inference.tag.config import TagConfig
    from tagger.inference.tag.run import tag
    from tagger.models.saved import load_tagger

    model_path, folder, db = args.child
    warm = os.path.join(os.path.dirname(db), "warm")
    make_files(warm, 2, args.seconds)
    common = dict(model=model_path, batch_size=args.batch_size, workers=args.workers,
                  progress=False)
    tag(TagConfig(inputs=(warm,), db=db + ".warm", rescan=True, **common))
    import tagger.inference.engine.tagging as tagging

    stamps, plain = [], tagging.tag_files

    def timed_files(*a, **k):  # when each result arrives: the steady state's rate
        for result in plain(*a, **k):
            stamps.append(time.perf_counter())
            yield result

    tagging.tag_files = timed_files
    start = time.perf_counter()
    summary = tag(TagConfig(inputs=(folder,), db=db, rescan=True, **common))
    seconds = time.perf_counter() - start
    steady = (len(stamps) - 1) / (stamps[-1] - stamps[0])  # files/s after the start-up
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model, info = load_tagger(model_path)
    predictor = KerasPredictor(model, info)
    windows = np.zeros((summary.db_written, predictor.window_samples), np.float32)
    predictor(windows[:args.batch_size])  # compiled
    begin = time.perf_counter()
    for i in range(0, len(windows), args.batch_size):
        predictor(windows[i:i + args.batch_size])
    model_seconds = time.perf_counter() - begin
    print(json.dumps(dict(files=summary.db_written, seconds=seconds, rss_mb=rss_kb / 1024,
                          model_seconds=model_seconds, steady=steady)), flush=True)


def main():
    args = parse_args()
    if args.child:
        return child(args)
    work = args.work_dir or tempfile.mkdtemp(prefix="bench_library_")
    small, large = args.files, args.files * args.factor
    make_files(os.path.join(work, "large"), large, args.seconds)
    make_files(os.path.join(work, "small"), small, args.seconds)
    model = saved_untrained_samplecnn(os.path.join(work, "model.keras"), args.block,
                                      args.width)
    figures = {}
    for name, _count in (("small", small), ("large", large)):
        db = os.path.join(work, f"{name}.sqlite")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.remove(db + suffix)
        command = [sys.executable, os.path.abspath(__file__), "--child", model,
                   os.path.join(work, name), db, "--seconds", str(args.seconds),
                   "--batch-size", str(args.batch_size), "--workers", str(args.workers)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        figures[name] = json.loads(done.stdout.strip().splitlines()[-1])
        f = figures[name]
        print(f"{f['files']:6d} files: {f['seconds']:.1f} s end to end with start-up "
              f"({f['files'] / f['seconds']:.1f} files/s; {f['steady']:.1f} files/s once "
              f"started), model alone {f['files'] / f['model_seconds']:.1f} files/s; "
              f"peak RSS {f['rss_mb']:.0f} MB")
    rss = figures["large"]["rss_mb"] / figures["small"]["rss_mb"]
    model_rate = figures["large"]["files"] / figures["large"]["model_seconds"]
    e2e = figures["large"]["steady"] / model_rate
    with_start = figures["large"]["model_seconds"] / figures["large"]["seconds"]
    print(ratio_line(f"peak RSS, {large} files / {small} files", rss, "<= 1.1"))
    print(ratio_line("files/s once started / model alone (short files)", e2e, ">= 0.9"))
    print(ratio_line("the same with the start-up (model load, tracing)", with_start, "-"))
    print(f"ratio library_rss_10n_n {rss:.3f}")
    print(f"ratio library_e2e_model {e2e:.3f}")


if __name__ == "__main__":
    main()
