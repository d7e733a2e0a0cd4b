"""The auto engine: the fastest engine on this machine whose tags agree
with float32 Keras's, measured once per model and machine and kept in the
cache (tag.py's, the beets plugin's and tagger-serve's default `--engine`).

Each candidate of `CANDIDATES` that can run here (keras-bf16 where the CPU,
or the GPU, has bfloat16 units: `cpu_features.bfloat16_verdict`;
tflite-int8 where there is audio to calibrate it on; only engines giving
embeddings when they are asked for) is measured against the keras engine
on the same windows: its speed (the best of `ROUNDS` timed calls of
`TIMED_WINDOWS` windows, each engine in turn, after a call that builds and
traces it) and the top-5 overlap of its scores with keras's, window by
window (`top5_overlap`), on up to `WINDOWS` windows of the audio
to be tagged (`measurement_windows`: read by seeking, a few per file,
between the windows int8 calibration reads). The choice (`choose_engine`):
the fastest faster than keras whose overlap is `MIN_OVERLAP` or more, else
keras. One line says what was taken and why (`auto_line`).

A measurement is kept per engine in `<cache home>/engine-auto/<key>.json`
(`tagger.timing_cache`), keyed by the model file's fingerprint, the
machine (`timing_cache.machine_fields`: CPU
model and flags, cores, GPUs, TensorFlow's and Keras's versions),
ai-edge-litert's version and `CACHE_VERSION`; a later run reads it and
builds only the engine taken. A model that is not a local file is measured
on every run. Where nothing can be measured (no audio: tagger-serve before
any tag.py run on the model) only measurements in the cache count.
"""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np

from tagger import fileio, timing_cache

CANDIDATES = ("keras-bf16", "tflite-int8")  # measured against keras, the reference
REFERENCE = "keras"
MIN_OVERLAP = 0.98  # the top-5 overlap with keras's scores an engine must keep
WINDOWS = 32  # windows of the audio the overlap is measured on, at most
TIMED_WINDOWS = 16  # windows of a timed call
ROUNDS = 2
CACHE_VERSION = 1
FOLDER = "engine-auto"
VALUES = ("speed_of_keras", "realtime", "top5_overlap", "windows")


class Measurement(NamedTuple):
    """An engine against keras on one model and machine: its speed over
    keras's, its own real-time factor, the mean top-5 overlap of its scores
    with keras's over `windows` windows, and when it was measured (None:
    in this run)."""

    speed_of_keras: float
    realtime: float
    top5_overlap: float
    windows: int
    measured: str | None = None


def choose_engine(measurements: dict) -> str:
    """The name of the fastest engine of `measurements` ({name:
    Measurement}) that is faster than keras and keeps a top-5 overlap of
    MIN_OVERLAP or more; REFERENCE where none does."""
    good = [(m.speed_of_keras, name) for name, m in measurements.items()
            if m.top5_overlap >= MIN_OVERLAP and m.speed_of_keras > 1]
    return max(good)[1] if good else REFERENCE


def auto_line(chosen: str, measurements: dict, left_out: dict, cpu: str,
              kept: bool = True) -> str:
    """The one line saying which engine auto took, and why: `measurements`
    ({name: Measurement}), `left_out` ({name: why it was not measured}),
    the CPU's name, and whether new measurements were `kept` in the cache."""
    def figures(name):
        m = measurements[name]
        return f"{m.speed_of_keras:.2f}x keras's speed, top-5 overlap {m.top5_overlap:.3f}"

    if chosen != REFERENCE:
        why = figures(chosen)
    elif measurements:
        why = (f"no engine faster with a top-5 overlap of {MIN_OVERLAP} or more: "
               + "; ".join(f"{name} {figures(name)}" for name in measurements))
    else:
        why = "no other engine measured"
    when = [f"on {t}, read from the cache"
            for t in sorted({m.measured for m in measurements.values() if m.measured})]
    if any(m.measured is None for m in measurements.values()):
        when.insert(0, "at the start" + (" and cached" if kept else ""))
    measured = f", measured on {cpu} {' and '.join(when)}" if when else ""
    skipped = "".join(f"; {name} not measured: {why}" for name, why in sorted(left_out.items()))
    return f"engine auto: {chosen} ({why}){measured}{skipped}"


def cache_fields(engine: str, model_path: str) -> dict:
    """The key of `engine`'s measurement on the model file `model_path`
    (see the module docstring)."""
    from tagger.inference.engine.pace_cache import engine_fields

    return {"cache_version": CACHE_VERSION, **engine_fields(engine, model_path)}


def measurement_windows(paths, sample_rate: int, window: int,
                        limit: int = WINDOWS) -> np.ndarray:
    """Up to `limit` windows (n, window) float32 of the audio files `paths`,
    in order, `ceil(limit / len(paths))` per file at most: of the 2k windows
    `window_choice` spreads over a file, every second from the first, so
    none is one of the k that int8 calibration reads
    (`quantize.calibration_windows`) in a file long enough. Files that
    cannot be decoded are passed over; (0, window) where none decodes."""
    from tagger.audio import AudioDecodeError, WindowStream
    from tagger.inference.window_choice import read_chosen

    paths = list(paths)
    per_file = max(1, -(-limit // max(1, len(paths))))
    chosen = []
    for path in paths:
        try:
            windows = [samples for _, samples in WindowStream(
                read_chosen(path, sample_rate, window, window, 0, 2 * per_file))]
        except AudioDecodeError:
            continue
        chosen.extend(windows[::2][:limit - len(chosen)])
        if len(chosen) >= limit:
            break
    return np.stack(chosen).astype(np.float32) if chosen else np.zeros((0, window), np.float32)


def measure(predictors: dict, reference, windows: np.ndarray,
            rounds: int = ROUNDS) -> dict:
    """{name: Measurement} of each of `predictors` ({name: Predictor})
    against `reference` (the keras engine's) on `windows` (n, window):
    speeds from calls of the first TIMED_WINDOWS windows, each in turn."""
    timed = windows[:TIMED_WINDOWS]
    scorers = {REFERENCE: reference, **predictors}
    best = dict.fromkeys(scorers, float("inf"))
    scores = {}
    for name, scorer in scorers.items():
        scorer(timed)  # built, traced, compiled
        scores[name] = np.concatenate([scorer(windows[i:i + TIMED_WINDOWS])[0]
                                       for i in range(0, len(windows), TIMED_WINDOWS)])
    for _ in range(rounds):
        for name, scorer in scorers.items():
            start = time.perf_counter()
            scorer(timed)
            best[name] = min(best[name], time.perf_counter() - start)
    seconds = len(timed) * reference.window_samples / reference.sample_rate
    return {name: Measurement(best[REFERENCE] / best[name], seconds / best[name],
                              top5_overlap(scores[name], scores[REFERENCE]), len(windows))
            for name in predictors}


def top5_overlap(scores: np.ndarray, reference: np.ndarray) -> float:
    """The mean over windows (rows of both) of the share of the reference's
    5 best tags among the 5 best of `scores`, as tag.py lists them
    (`outputs.selected_indices`)."""
    from tagger.inference.outputs import selected_indices

    return float(np.mean([len(set(selected_indices(a, 5)) & set(selected_indices(b, 5))) / 5
                          for a, b in zip(scores, reference)]))


def candidates(options, audio: bool, engines) -> tuple[list, dict]:
    """(the engines of CANDIDATES to consider here, {engine: why it is left
    out}) for a caller's `options`, `audio` telling whether there are
    files to calibrate on; `engines`: the registry (`registry.ENGINES`)."""
    from tagger import cpu_features

    wanted, left_out = [], {}
    for name in CANDIDATES:
        if options.embeddings and not engines.get(name).embeddings:
            continue  # asked for embeddings: not a choice at all
        if name == "keras-bf16":
            fast, why = cpu_features.bfloat16_verdict(cpu_features.gpu_capability())
            if not fast:
                left_out[name] = why
                continue
        if name == "tflite-int8" and not audio:
            left_out[name] = "no audio to calibrate it on"
            continue
        wanted.append(name)
    return wanted, left_out


def make_predictor(model, info, options, engines):
    """The factory of the auto engine, given the registry of the others
    (`engines`, `registry.ENGINES`): the chosen engine's predictor, its
    `note` the line saying which (`auto_line`) before the engine's own."""
    from tagger.cpu_features import cpu_model_and_flags

    def make(name, *args):
        return engines.get(name).make(*args)

    reference = make(REFERENCE, model, info, options)
    audio = list(options.calibration_audio())
    names, left_out = candidates(options, bool(audio), engines)
    kept = options.model_path is not None and fileio.is_local(options.model_path)
    fields = {name: cache_fields(name, options.model_path) for name in names} if kept else {}
    measurements = {}
    for name in fields:
        found = timing_cache.read_timing(FOLDER, fields[name], VALUES)
        if found is not None:
            values, when = found
            measurements[name] = Measurement(**{**values, "windows": int(values["windows"])},
                                             measured=when)
    built, warnings = {}, []
    missing = [name for name in names if name not in measurements]
    windows = (measurement_windows(audio, reference.sample_rate, reference.window_samples)
               if missing else None)
    for name in missing:
        if not len(windows):
            left_out[name] = ("none of the audio could be decoded to measure it on" if audio
                              else "no audio to measure it on (a run of tag.py --engine auto "
                                   "on some music measures it)")
            continue
        try:
            built[name] = make(name, model, info, options)
        except Exception as error:  # an engine that cannot run here is not taken
            left_out[name] = f"it cannot run here: {str(error).splitlines()[0]}"
    if built:
        fresh = measure(built, reference, windows)
        measurements.update(fresh)
        for name, m in fresh.items() if kept else ():
            warning = timing_cache.keep_timing(
                FOLDER, fields[name], {key: float(getattr(m, key)) for key in VALUES},
                f"the measurement of {name}")
            warnings += [warning] if warning else []
    built[REFERENCE] = reference
    while (chosen := choose_engine(measurements)) not in built:  # measured before: build it
        try:
            built[chosen] = make(chosen, model, info, options)
        except Exception as error:  # then the next best
            left_out[chosen] = f"it cannot run here: {str(error).splitlines()[0]}"
            del measurements[chosen]
    predictor = built[chosen]
    line = auto_line(chosen, measurements, left_out, cpu_model_and_flags()[0], kept)
    predictor.note = "\n".join(part for part in (line, predictor.note, *warnings) if part)
    return predictor
