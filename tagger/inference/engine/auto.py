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
window (`top5_overlap`: of all the tags, for a tagger of fewer than 5), on
up to `WINDOWS` windows of the audio
to be tagged (`measurement_windows`: read by seeking, a few per file,
between the windows int8 calibration reads). The choice (`choose_engine`):
the fastest faster than keras whose overlap is `MIN_OVERLAP` or more, else
keras. One line says what was taken and why, and on how many windows of
how many files it was measured (`auto_line`).

A measurement is kept per engine in `<cache home>/engine-auto/<key>.json`
(`tagger.timing_cache`), keyed by the model file's fingerprint, the
machine (`timing_cache.machine_fields`: CPU
model and flags, cores, GPUs, TensorFlow's and Keras's versions),
ai-edge-litert's version and `CACHE_VERSION`; a later run reads it and
builds only the engine taken. Only a measurement that can stand for the
model on this machine is kept (`Measurement.cacheable`: `KEPT_WINDOWS`
windows or more from `KEPT_FILES` files or more, timed `TIMED_WINDOWS`
windows a call); a smaller one serves its own run only, and the line says
so. A run whose audio gives more (as many windows or more from more files)
than a kept measurement measures again and keeps its own. An entry
without the files and the batch (written before they were kept), or not
cacheable, counts as none. A model that is not a local file is measured
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
KEPT_WINDOWS = WINDOWS  # a measurement is cached only from this many windows or more
KEPT_FILES = 2  # ... of this many files or more, timed TIMED_WINDOWS windows a call
TOP_TAGS = 5  # the tags whose overlap is measured, as many as tag.py lists
ROUNDS = 2
CACHE_VERSION = 1
FOLDER = "engine-auto"
VALUES = ("speed_of_keras", "realtime", "top5_overlap", "windows", "files", "batch")


class Measurement(NamedTuple):
    """An engine against keras on one model and machine: its speed over
    keras's, its own real-time factor, the mean top-5 overlap of its scores
    with keras's over `windows` windows of `files` files, timed `batch`
    windows a call, and when it was measured (None: in this run)."""

    speed_of_keras: float
    realtime: float
    top5_overlap: float
    windows: int
    files: int
    batch: int
    measured: str | None = None

    def cacheable(self) -> bool:
        """Whether it was measured on enough audio to be kept for the model
        and machine: KEPT_WINDOWS windows or more of KEPT_FILES files or
        more, timed TIMED_WINDOWS windows a call."""
        return (self.windows >= KEPT_WINDOWS and self.files >= KEPT_FILES
                and self.batch == TIMED_WINDOWS)

    def audio(self) -> str:
        """What it was measured on, as the line says it: `32 windows of 3 files`."""
        return f"{_count(self.windows, 'window')} of {_count(self.files, 'file')}"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def more_audio(windows: int, files: int, kept: Measurement) -> bool:
    """Whether `windows` windows of `files` files are more audio than the
    `kept` measurement's: no fewer of either, more of one."""
    return (windows >= kept.windows and files >= kept.files
            and (windows, files) != (kept.windows, kept.files))


def unkept_reason() -> str:
    """Why a measurement too small to be cached is not, as the line says it."""
    return (f"a measurement is cached from {KEPT_WINDOWS} windows of {KEPT_FILES} files or "
            f"more, timed {TIMED_WINDOWS} a call")


def choose_engine(measurements: dict) -> str:
    """The name of the fastest engine of `measurements` ({name:
    Measurement}) that is faster than keras and keeps a top-5 overlap of
    MIN_OVERLAP or more; REFERENCE where none does."""
    good = [(m.speed_of_keras, name) for name, m in measurements.items()
            if m.top5_overlap >= MIN_OVERLAP and m.speed_of_keras > 1]
    return max(good)[1] if good else REFERENCE


def auto_line(chosen: str, measurements: dict, left_out: dict, cpu: str,
              unkept: str | None = None) -> str:
    """The one line saying which engine auto took, and why: `measurements`
    ({name: Measurement}), `left_out` ({name: why it was not measured}),
    the CPU's name, and why this run's measurements were not kept in the
    cache (`unkept`; None: they were)."""
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
    at_start = " and cached" if unkept is None else f", for this run only ({unkept})"
    when = [f"over {audio} at the start{at_start}" if not measured
            else f"over {audio} on {measured}, read from the cache"
            for measured, audio in sorted({(m.measured or "", m.audio())
                                           for m in measurements.values()})]
    measured = f", measured on {cpu} {' and '.join(when)}" if when else ""
    skipped = "".join(f"; {name} not measured: {why}" for name, why in sorted(left_out.items()))
    return f"engine auto: {chosen} ({why}){measured}{skipped}"


def cache_fields(engine: str, model_path: str) -> dict:
    """The key of `engine`'s measurement on the model file `model_path`
    (see the module docstring)."""
    from tagger.inference.engine.pace_cache import engine_fields

    return {"cache_version": CACHE_VERSION, **engine_fields(engine, model_path)}


def kept_measurement(fields: dict) -> Measurement | None:
    """The measurement the cache keeps under `fields` (`cache_fields`),
    where it can stand for the model and machine (`Measurement.cacheable`);
    else None, for an entry of an earlier format (without the files and
    the batch) too."""
    found = timing_cache.read_timing(FOLDER, fields, VALUES)
    if found is None:
        return None
    values, when = found
    counts = {name: int(values[name]) for name in ("windows", "files", "batch")}
    measurement = Measurement(**{**values, **counts}, measured=when)
    return measurement if measurement.cacheable() else None


def files_measured(paths: int, limit: int = WINDOWS) -> int:
    """The files a measurement on `paths` files of the audio reads its
    `limit` windows from where each is long enough (`measurement_windows`:
    `ceil(limit / paths)` a file): the most a measurement of them can
    count, so a kept one of as many is not measured again."""
    per_file = max(1, -(-limit // max(1, paths)))
    return min(paths, -(-limit // per_file))


def measurement_windows(paths, sample_rate: int, window: int,
                        limit: int = WINDOWS) -> tuple[np.ndarray, int]:
    """(up to `limit` windows (n, window) float32 of the audio files `paths`,
    the number of files they come from), in order, `ceil(limit /
    len(paths))` per file at most: of the 2k windows `window_choice`
    spreads over a file, every second from the first, so none is one of
    the k that int8 calibration reads (`quantize.calibration_windows`) in a
    file long enough. Files that cannot be decoded are passed over; (0,
    window) windows of 0 files where none decodes."""
    from tagger.audio import AudioDecodeError, WindowStream
    from tagger.inference.window_choice import read_chosen

    paths = list(paths)
    per_file = max(1, -(-limit // max(1, len(paths))))
    chosen, files = [], 0
    for path in paths:
        try:
            windows = [samples for _, samples in WindowStream(
                read_chosen(path, sample_rate, window, window, 0, 2 * per_file))]
        except AudioDecodeError:
            continue
        files += bool(windows)
        chosen.extend(windows[::2][:limit - len(chosen)])
        if len(chosen) >= limit:
            break
    if not chosen:
        return np.zeros((0, window), np.float32), 0
    return np.stack(chosen).astype(np.float32), files


def measure(predictors: dict, reference, windows: np.ndarray, files: int,
            rounds: int = ROUNDS) -> dict:
    """{name: Measurement} of each of `predictors` ({name: Predictor})
    against `reference` (the keras engine's) on `windows` (n, window) of
    `files` files: speeds from calls of the first TIMED_WINDOWS windows,
    each in turn."""
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
                              top5_overlap(scores[name], scores[REFERENCE]), len(windows),
                              files, len(timed))
            for name in predictors}


def top5_overlap(scores: np.ndarray, reference: np.ndarray) -> float:
    """The mean over windows (rows of both) of the share of the reference's
    TOP_TAGS best tags among the TOP_TAGS best of `scores`, as tag.py lists
    them (`outputs.selected_indices`); of every tag, for a tagger of fewer."""
    from tagger.inference.outputs import selected_indices

    top = min(TOP_TAGS, np.shape(reference)[-1])
    return float(np.mean([len(set(selected_indices(a, top)) & set(selected_indices(b, top)))
                          / top for a, b in zip(scores, reference)]))


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
    measurements = {name: found for name in fields
                    if (found := kept_measurement(fields[name])) is not None}
    built, warnings = {}, []
    most_files = files_measured(len(audio))
    unsure = [name for name in names
              if name not in measurements or measurements[name].files < most_files]
    windows, files = (measurement_windows(audio, reference.sample_rate,
                                          reference.window_samples) if unsure else (None, 0))
    for name in unsure:
        if name in measurements and not more_audio(len(windows), files, measurements[name]):
            continue  # the kept measurement stands
        if not len(windows):
            left_out[name] = ("none of the audio could be decoded to measure it on" if audio
                              else "no audio to measure it on (a run of tag.py --engine auto "
                                   "on some music measures it)")
            continue
        try:
            built[name] = make(name, model, info, options)
        except Exception as error:  # an engine that cannot run here is not taken
            measurements.pop(name, None)
            left_out[name] = f"it cannot run here: {str(error).splitlines()[0]}"
    unkept = None if kept else "the model is not a local file"
    if built:
        fresh = measure(built, reference, windows, files)
        measurements.update(fresh)
        if unkept is None and not all(m.cacheable() for m in fresh.values()):
            unkept = unkept_reason()
        for name, m in fresh.items() if unkept is None else ():
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
    predictor.engine = chosen
    line = auto_line(chosen, measurements, left_out, cpu_model_and_flags()[0], unkept)
    predictor.note = "\n".join(part for part in (line, predictor.note, *warnings) if part)
    return predictor
