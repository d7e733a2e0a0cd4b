"""Quantised and bfloat16 engines against float32 on recorded music,
window by window.

    python bench/bench_int8.py [--model MTT_musicnn] [--music-dir DIR] [--debs-dir DIR]
                               [--files PATH ...]
                               [--calibration-files 8] [--check-files 16]
                               [--engines tflite-int8 keras-bf16 tflite-dynamic tflite-fp16]

Lays out Debian's game soundtracks (`tagger.demos.soundtracks`: nexuiz,
warzone2100 and asc music, fetched with apt-get download into
`--debs-dir` where missing) in `--music-dir`, then for each of `--engines`
scores every window of the check files with it and with the float32 keras
engine, as tag.py does. int8 measures its ranges on other recordings than
it is checked on: `--calibration-files` tracks of warzone2100's soundtrack
(Opus), as tag.py's calibration draws its windows from the files it
tags (up to 32, spread over them); the check files are nexuiz's (Vorbis) and
asc's (MP3) tracks, the first `--check-files` in name order. `--files`
takes recordings of one's own instead: the first `--calibration-files`
calibrate, the next `--check-files` are checked.

Per engine: the top-5 tags of each window against float32's (their
overlap, 0 to 1 in steps of 0.2: the mean over windows, the share of
windows with all five, the lowest), and the score differences (largest,
mean, 99th percentile), and the time it took to score the check files
against keras's. Ratio lines: `int8_top5_overlap_<engine>` (goal >= 0.9
for tflite-int8, >= 0.95 for keras-bf16), `int8_max_score_difference_<engine>`
and `int8_speed_of_keras_<engine>` (keras's time / the engine's, decoding
included, as tag.py runs).

`--tiny` checks that the bench runs: an untrained package Musicnn at a
sixteenth of its filters, on tones and noise written to files, or on
`--files` (2 calibration and 2 check files unless the counts are given; its
figures mean nothing).
"""

from __future__ import annotations

import argparse
import os
import tempfile

from common import (
    add_soundtrack_flags,
    refuse_soundtracks_with_other_audio,
    timed,
    untrained_pons_musicnn,
)

CALIBRATION_PACKAGE = "warzone2100-music"
CHECK_PACKAGES = ("nexuiz-music", "asc-music")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_soundtrack_flags(p)
    p.add_argument("--files", nargs="+", default=None, metavar="PATH",
                   help="recorded music instead of the soundtracks: the first "
                        "--calibration-files calibrate int8, the next --check-files are checked")
    p.add_argument("--calibration-files", type=int, default=None,
                   help="(default: 8; --tiny: 2)")
    p.add_argument("--check-files", type=int, default=None, help="(default: 16; --tiny: 2)")
    p.add_argument("--engines", nargs="+",
                   default=["tflite-int8", "keras-bf16", "tflite-dynamic", "tflite-fp16"])
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--tiny", action="store_true",
                   help="an untrained tiny model on generated audio, or on --files: checks "
                        "that the bench runs (its figures mean nothing)")
    args = p.parse_args(argv)
    refuse_soundtracks_with_other_audio(p, args)
    if args.tiny and args.model:
        p.error("--tiny runs an untrained tiny model: leave out --model")
    if args.tiny and not args.files and (args.calibration_files or args.check_files):
        p.error("--tiny's generated audio is 2 calibration and 2 check files: count files "
                "with --files only")
    if any(count is not None and count < 1 for count in (args.calibration_files,
                                                          args.check_files)):
        p.error("--calibration-files and --check-files take positive counts")
    args.model = args.model or "MTT_musicnn"
    args.calibration_files = args.calibration_files or (2 if args.tiny else 8)
    args.check_files = args.check_files or (2 if args.tiny else 16)
    return args


def soundtrack_files(args):
    """(calibration files, check files) from the Debian soundtracks."""
    from tagger.audio import is_audio_name
    from tagger.demos.soundtracks import SOUNDTRACKS, music_folder

    music = args.music_dir or tempfile.mkdtemp(prefix="bench_int8_")
    wanted = [s for s in SOUNDTRACKS if s.package in (CALIBRATION_PACKAGE, *CHECK_PACKAGES)]
    folders = music_folder(music, args.debs_dir or os.path.join(music, "debs"), wanted)

    def audio(folder):
        return sorted(str(p) for p in folder.rglob("*") if is_audio_name(p.name))

    by_package = {folder.name: audio(folder) for folder in folders}
    check = sorted(p for package in CHECK_PACKAGES for p in by_package[package])
    return by_package[CALIBRATION_PACKAGE][:args.calibration_files], check[:args.check_files]


def given_files(args):
    """(calibration files, check files) from `--files`."""
    from tagger.inference.inputs import find_audio

    files = find_audio(args.files, recursive=True).files
    if len(files) <= args.calibration_files:
        raise SystemExit(f"bench_int8.py: --files holds {len(files)} audio file(s); the first "
                         f"{args.calibration_files} calibrate, and at least one more is checked")
    calibration = files[:args.calibration_files]
    return calibration, files[len(calibration):][:args.check_files]


def tiny_files(folder):
    """(calibration files, check files): tones in noise, written as WAV."""
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    paths = []
    for i in range(4):
        t = np.arange(int(8 * 16000)) / 16000
        tone = 0.3 * np.sin(2 * np.pi * (200 + 300 * i) * t * (1 + 0.2 * t))
        path = os.path.join(folder, f"tiny{i}.wav")
        sf.write(path, (tone + 0.05 * rng.standard_normal(len(t))).astype("float32"), 16000)
        paths.append(path)
    return paths[:2], paths[2:]


def window_scores(predictor, files, batch_size):
    """{path: (windows, tags)} of `files`, as tag.py scores them."""
    from tagger.inference.engine.tagging import tag_files
    from tagger.runtime import native_stderr_silenced

    with native_stderr_silenced():
        return {r.path: r.scores for r in tag_files(predictor, files, batch_size=batch_size)
                if r.ok}


def main(argv=None):
    args = parse_args(argv)
    from tagger import runtime
    runtime.quiet_tensorflow()
    import numpy as np

    from tagger.evaluation.agreement import top_k_overlap
    from tagger.inference.engine.registry import EngineOptions, make_predictor
    from tagger.runtime import native_stderr_silenced

    if args.tiny:
        model, info = untrained_pons_musicnn(1 / 16)
        calibration, check = (given_files(args) if args.files
                              else tiny_files(tempfile.mkdtemp(prefix="bench_int8_")))
        label = "untrained tiny pons_musicnn"
    else:
        from tagger.models.saved import load_tagger
        from tagger.pretrained.store import resolve_model

        model, info = load_tagger(resolve_model(args.model, progress=False))
        calibration, check = given_files(args) if args.files else soundtrack_files(args)
        label = args.model
    keras = make_predictor("keras", model, info)
    window_scores(keras, check[:1], args.batch_size)  # built and traced
    reference, seconds = timed(window_scores, keras, check, args.batch_size)
    windows = sum(len(s) for s in reference.values())
    print(f"{label}: {len(check)} check files, {windows} windows of "
          f"{keras.window_samples / keras.sample_rate:.2f} s ({seconds:.0f} s with keras); "
          f"calibrated on {len(calibration)} other files: "
          f"{', '.join(os.path.basename(p) for p in calibration)}")
    for engine in args.engines:
        with native_stderr_silenced():
            predictor = make_predictor(engine, model, info,
                                       EngineOptions(calibration_audio=lambda: calibration))
        window_scores(predictor, check[:1], args.batch_size)  # built and traced
        scores, engine_seconds = timed(window_scores, predictor, check, args.batch_size)
        a = np.concatenate([scores[p] for p in sorted(reference)])
        b = np.concatenate([reference[p] for p in sorted(reference)])
        overlap = top_k_overlap(a, b, 5)  # (windows,)
        difference = np.abs(a - b)
        per_file, start = [], 0
        for path in sorted(reference):
            count = len(reference[path])
            per_file.append(overlap[start:start + count].mean())
            start += count
        print(f"-- {engine}: top-5 overlap per window {overlap.mean():.3f} (all five "
              f"{np.mean(overlap == 1):.3f} of windows, lowest {overlap.min():.1f}; per file "
              f"{min(per_file):.3f} to {max(per_file):.3f}); score differences: largest "
              f"{difference.max():.4f}, mean {difference.mean():.5f}, 99th percentile "
              f"{np.percentile(difference, 99):.4f}; {engine_seconds:.1f} s, "
              f"{seconds / engine_seconds:.2f}x keras's speed")
        name = engine.replace("-", "_")
        print(f"ratio int8_top5_overlap_{name} {overlap.mean():.3f}")
        print(f"ratio int8_max_score_difference_{name} {difference.max():.4f}")
        print(f"ratio int8_speed_of_keras_{name} {seconds / engine_seconds:.3f}")


if __name__ == "__main__":
    main()
