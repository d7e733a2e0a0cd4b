"""Filling the stores of a model's outputs over records (a teacher's
targets for distillation, a body's embeddings for train.py --from)
against tag.py's keras engine on the same audio: do they run at tag.py's
speed?

    python bench/bench_stores.py [--model MTT_musicnn] [--clips 40] [--seconds 29.1]
                                 [--batch-size 32] [--rounds 3] [--tiny]

Builds (once) records of synthetic MagnaTagATune-layout clips at 22050 Hz
(raw int16, as build_mtt.py writes them) and fills, for `--model` (a
pretrained name or a saved tagger; MTT_musicnn by default, 16 kHz: every
clip is resampled), both stores of every split, anew each round
(`teacher_targets.split_targets`, `pretrained_body.split_embeddings`: the
records read, each clip resampled and cut into the model's windows, the
windows scored, the rows written as .npz). Against it, bench_tag.py's
keras figure "model only": the same windows, cut beforehand, scored
`--batch-size` at a time by the keras engine's predictor. Model only, not
end to end, because the stores read records, not audio files: tag.py's
end-to-end figure includes decoding MP3s that a store never does, and the
model alone is the most a store can reach. Each fill is paired with the
model-only time just before and after it (the machine may be shared); the
ratio printed is the median over `--rounds` rounds (one untimed fill of
each first: tracing, page cache):

    ratio store_fill_of_tag_keras_targets X      (targets' audio/s) / (model only's)
    ratio store_fill_of_tag_keras_embeddings X   (embeddings' audio/s) / (model only's)

`--tiny`: 10 clips of 6 s (the generator's broken ones among them) and an
untrained package Musicnn (16 kHz) at 1/16 of its filters, for the tests.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

from common import model_only, synthetic_data, untrained_pons_musicnn


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="MTT_musicnn",
                   help="a pretrained name or a saved tagger, as train.py --from takes it")
    p.add_argument("--work-dir", default=None,
                   help="keep the synthetic clips and records here (default: a temp dir)")
    p.add_argument("--clips", type=int, default=40)
    p.add_argument("--seconds", type=float, default=29.1)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--tiny", action="store_true",
                   help="10 clips of 6 s, an untrained Musicnn at 1/16 width, 1 round")
    args = p.parse_args(argv)
    if args.tiny:
        args.clips, args.seconds, args.rounds = 10, 6.0, 1
    return args


def records(work: str, clips: int, seconds: float) -> str:
    """Raw int16 records at 22050 Hz of `clips` synthetic clips, built once."""
    from tagger.config import BuildConfig
    from tagger.datasets.build import build
    from tagger.datasets.mtt import SOURCE, MttSettings

    source = synthetic_data(os.path.join(work, "data"), clips, seconds)
    out = os.path.join(work, "records")
    if not os.path.exists(os.path.join(out, "dataset_info.json")):
        build(SOURCE, MttSettings(), BuildConfig(data_dir=source, out_dir=out, workers=1,
                                                 progress=False))
    return out


def tiny_model(work: str) -> str:
    """An untrained package Musicnn at 1/16 of its filters, saved once."""
    from tagger.models.saved import save_tagger

    path = os.path.join(work, "tiny_musicnn.keras")
    if not os.path.exists(path):
        save_tagger(*untrained_pons_musicnn(1 / 16), path)
    return path


def windows_of(predictor, data_dir: str, info, splits):
    """Every window the stores score, cut beforehand: (windows, window_samples)."""
    import numpy as np

    from tagger.records import reader
    from tagger.training.clip_batches import clip_windows

    out = []
    for split in splits:
        for clip in reader.clip_dataset(data_dir, split, info,
                                        with_tags=False).as_numpy_iterator():
            out.append(clip_windows(predictor, clip["segments"].reshape(-1),
                                    info.sample_rate)[1])
    return np.concatenate(out)


def main(argv=None):
    args = parse_args(argv)
    from tagger import runtime
    runtime.quiet_tensorflow()
    import numpy as np

    from tagger.evaluation.against import TARGETS_DIR
    from tagger.inference.common import available_cores
    from tagger.inference.engine.registry import make_predictor
    from tagger.records.info import load_info
    from tagger.training.pretrained_body import EMBEDDINGS_DIR, Body, split_embeddings
    from tagger.training.teacher_targets import Teacher, split_targets

    work = args.work_dir or tempfile.mkdtemp(prefix="bench_stores_")
    data_dir = records(work, args.clips, args.seconds)
    info = load_info(data_dir)
    splits = sorted(info.splits)
    model = tiny_model(work) if args.tiny else args.model
    teacher, body = Teacher(model, progress=False), Body(model, progress=False)
    predictor = make_predictor("keras", *body.loaded())  # tag.py --engine keras
    windows = windows_of(predictor, data_dir, info, splits)
    audio = sum(info.splits[s]["segments"] for s in splits) * info.segment_length / (
        info.sample_rate)

    def fill(kind):
        """Seconds to fill the store of `kind` for every split, anew."""
        shutil.rmtree(os.path.join(data_dir, TARGETS_DIR), ignore_errors=True)
        shutil.rmtree(os.path.join(data_dir, EMBEDDINGS_DIR), ignore_errors=True)
        start = time.perf_counter()
        for split in splits:
            if kind == "targets":
                split_targets(teacher, data_dir, info, split, log=lambda line: None)
            else:
                split_embeddings(body, data_dir, info, split, log=lambda line: None)
        return time.perf_counter() - start

    kinds = ("targets", "embeddings")
    for kind in kinds:  # tracing, page cache
        fill(kind)
    for size in {args.batch_size, len(windows) % args.batch_size} - {0}:
        predictor(windows[:size])  # every batch shape traced
    print(f"{model}: {sum(info.splits[s]['clips'] for s in splits)} clips of "
          f"{args.seconds} s at {info.sample_rate} Hz ({audio:.0f} s of audio in "
          f"{', '.join(splits)}), {len(windows)} windows of {predictor.window_samples} "
          f"samples at {predictor.sample_rate} Hz, batch {args.batch_size}; "
          f"{available_cores()} cores usable, load average {os.getloadavg()[0]:.1f}")
    seconds = {kind: [] for kind in kinds}
    ratios = {kind: [] for kind in kinds}
    model_seconds = []
    for _ in range(args.rounds):
        before = model_only(predictor, windows, args.batch_size)
        for kind in kinds:
            filled = fill(kind)
            after = model_only(predictor, windows, args.batch_size)
            seconds[kind].append(filled)
            ratios[kind].append((before + after) / 2 / filled)
            model_seconds.append((before + after) / 2)
            before = after
    model_rate = audio / float(np.median(model_seconds))
    print(f"tag.py's keras engine, model only: {model_rate:7.1f} s of audio/s "
          f"({len(windows) / float(np.median(model_seconds)):.1f} windows/s)")
    for kind in kinds:
        rate = audio / float(np.median(seconds[kind]))
        print(f"{kind} store filled:            {rate:7.1f} s of audio/s "
              f"({', '.join(f'{s:.2f}' for s in seconds[kind])} s per round)")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    for kind in kinds:
        print(f"ratio store_fill_of_tag_keras_{kind} {float(np.median(ratios[kind])):.3f}")


if __name__ == "__main__":
    main()
