"""tag.py's pipeline against the model alone, for the tagger people run
and the sample-level CNN: x real time, FLOP utilisation, decoding hidden?

    python bench/bench_tag.py [--models MTT_musicnn samplecnn] [--clips 40]
                              [--seconds 29.1] [--width 1.0] [--batch-size 32]
                              [--workers auto] [--files PATH ...]
                              [--engines keras xla keras-bf16 tflite tflite-fp16
                                         tflite-dynamic tflite-int8]

Makes (once) a folder of synthetic MagnaTagATune-layout MP3s (or takes
`--files`, e.g. recorded music) and tags it, in one process, with each of
`--models`: a pretrained name or a saved model, as tag.py takes them (by
default MTT_musicnn, the musicnn package's log-mel tagger at 16 kHz,
converted from its wheel as tag.py does), or `samplecnn` (an untrained
SE+multi sample-level CNN at `--width`, paper size by default) or
`pons_musicnn` (an untrained package Musicnn, its filters x `--width`).
For each model and engine:

- model only: the same windows, decoded beforehand, scored in batches of
  the same size by the same compiled predictor;
- end to end: `tag_files` over the folder (decoder threads, bounded queue,
  batching across files), for each `--workers` value (auto: sized from
  the measured rates, as tag.py does by default);
- decoding alone: `tag_files` with a predictor that returns at once, on as
  many decoder threads as the first `--workers` value used end to end, so
  decoding, queue and batching are timed without the model.

The folder is measured in chunks of `--chunk-files` files, `--rounds`
times: per chunk the model-only time is taken just before and just after
each end-to-end run (a few seconds apart), so load from elsewhere on the
machine weighs on both sides of a pair alike. The ratio printed is the
median over all pairs; the throughputs are medians over rounds of whole
passes (sums of the chunks).

Each of `--engines` (tag.py --engine: Keras, Keras compiled with XLA, or
Keras in mixed bfloat16, or TFLite on LiteRT with XNNPACK, float32 /
float16 weights / int8 dynamic-range weights / int8 weights and
activations calibrated on the folder's windows) is measured in turn.
Printed per model and engine: the real-time factor end to end and model
only; the model part's FLOP utilisation (its FLOPs per window counted from
the saved model's frozen graph, front end included, `bench/flops.py`,
times the windows scored per second model only in its best round, over the
best float32 matrix product of the machine measured at the start of the
run; a quantised engine's MFU compares its work with float32's peak); end
to end / model only (goal >= 0.9: decoding and batching hide behind the
model) against its ceiling when the model and decoding share every core
(`decoder_pool`: 1 / (1 + model rate / (cores x one thread's decode
rate))); the model-only speed over the keras engine's (every engine timed
in turn with keras on each chunk of files, the order reversed every other
round: a change of the machine's load falls on all alike); and for the other
engines how far their scores move from the float Keras model's (largest
absolute difference of the clip scores, top-5 agreement per clip and per
window; on the synthetic clips by default: `--files` or
bench/bench_int8.py measure on recorded music). At the end of each model,
the fastest engine whose windows keep 0.9 or more of keras's top-5 tags,
with its model-only speed over keras's (wanted: 2x or more). Ratio lines,
per model (its label: mtt_musicnn, samplecnn, ...) and engine:
`tag_realtime_<model>_<engine>` (end-to-end real-time factor),
`tag_e2e_model_<model>_<engine>` (end to end / model only),
`tag_decode_of_model_<model>_<engine>` (decoding alone / model only: below
1 the decoders cannot keep up), `tag_mfu_<model>_<engine>`,
`tag_e2e_of_ceiling_<model>_<engine>`, `tag_model_of_keras_<model>_<engine>`
and for the engines other than keras `tag_top5_of_keras_<model>_<engine>`
(top-5 overlap per window, 0 to 1); per model `tag_fastest_of_keras_<model>`
(the fastest engine's model-only speed over keras's, 1 when keras is);
the first model's first engine also unsuffixed. The machine may be shared:
the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from common import (
    model_only,
    ratio_line,
    synthetic_data,
    timed,
    untrained_pons_musicnn,
    untrained_samplecnn,
)

from tagger.commands.tag import workers_count
from tagger.inference.engine.registry import ENGINES

DEFAULT_MODELS = ("MTT_musicnn", "samplecnn")
TOP5_KEPT = 0.9  # the top-5 overlap per window an engine must keep to be the fastest


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work-dir", default=None,
                   help="keep the synthetic clips here (default: a temp dir)")
    p.add_argument("--files", nargs="+", default=None, metavar="PATH",
                   help="tag these audio files (or folders) instead of the synthetic clips, "
                        "e.g. recorded music (not with --work-dir, --clips or --seconds)")
    p.add_argument("--clips", type=int, default=None, help="synthetic clips (default: 40)")
    p.add_argument("--seconds", type=float, default=None,
                   help="their length (default: 29.1)")
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS),
                   help="pretrained names or saved models as tag.py takes them, samplecnn or "
                        "pons_musicnn (untrained; see the module docstring)")
    p.add_argument("--block", default="se", help="the untrained samplecnn's blocks")
    p.add_argument("--width", type=float, default=1.0,
                   help="the untrained models' channels, as a fraction of the paper's")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=workers_count, nargs="+", default=[None],
                   metavar="N|auto",
                   help="decoder threads (auto: as tag.py sizes them; the default); "
                        "several values are measured in turn")
    p.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES,
                   help="what runs the model (tag.py --engine); the first one gives the "
                        "unsuffixed ratio lines")
    p.add_argument("--rounds", type=int, default=3, help="passes over the folder")
    p.add_argument("--chunk-files", type=int, default=10,
                   help="files per paired measurement (see the module docstring)")
    args = p.parse_args(argv)
    synthetic = [flag for flag, value in (("--work-dir", args.work_dir), ("--clips", args.clips),
                                          ("--seconds", args.seconds)) if value is not None]
    if args.files and synthetic:
        one = len(synthetic) == 1
        p.error(f"{' and '.join(synthetic)} {'describes' if one else 'describe'} the synthetic "
                f"clips: leave {'it' if one else 'them'} out with --files")
    args.clips = 40 if args.clips is None else args.clips
    args.seconds = 29.1 if args.seconds is None else args.seconds
    return args


def bench_model(spec: str, args):
    """(label, model, TaggerMetadata) of one of `--models`."""
    if spec == "samplecnn":
        return "samplecnn", *untrained_samplecnn(args.block, args.width)
    if spec == "pons_musicnn":
        return "pons_musicnn", *untrained_pons_musicnn(args.width)
    from tagger.models.saved import load_tagger
    from tagger.pretrained.store import resolve_model

    label = os.path.splitext(os.path.basename(spec))[0].lower().replace("-", "_")
    return label, *load_tagger(resolve_model(spec, progress=False))


def window_flops(model, info) -> float:
    """FLOPs of one window through the saved model (its log-mel front end
    included), counted from its frozen graph."""
    import keras
    from flops import graph_flops

    from tagger.models.saved import raw_audio_input

    _, window, to_model_input = raw_audio_input(model, info)
    waveform = keras.Input((window,))
    return graph_flops(keras.Model(waveform, model(to_model_input(waveform))), (window,))


class InstantPredictor:
    """Scores nothing, at once: `tag_files` with it times decoding alone."""

    def __init__(self, predictor):
        import numpy as np

        self.sample_rate, self.window_samples = predictor.sample_rate, predictor.window_samples
        self.scores = np.full((1, 1), 0.5, np.float32)

    def __call__(self, windows):
        return self.scores.repeat(len(windows), axis=0), None


def main(argv=None):
    args = parse_args(argv)
    from tagger import runtime
    runtime.quiet_tensorflow()
    from flops import matmul_flops_per_second

    from tagger.inference.common import available_cores
    from tagger.inference.inputs import find_audio

    if args.files:
        files = find_audio(args.files, recursive=True).files
        what = "given"
    else:
        work = args.work_dir or tempfile.mkdtemp(prefix="bench_tag_")
        synthetic_data(work, args.clips, args.seconds)
        files = find_audio([work], recursive=True).files
        what = f"{args.clips} clips of {args.seconds} s, the generator's broken ones included"
    peak = matmul_flops_per_second()
    print(f"{len(files)} files ({what}); batch {args.batch_size}; {available_cores()} cores "
          f"usable, load average {os.getloadavg()[0]:.1f} (other processes share the "
          f"machine); float32 matrix products: {peak / 1e9:.1f} GFLOP/s, the peak of the "
          "MFU figures")
    for number, spec in enumerate(args.models):
        measure_model(args, spec, files, peak, first=number == 0)
    again = matmul_flops_per_second()
    print(f"matrix products at the end: {again / 1e9:.1f} GFLOP/s (MFU above x "
          f"{peak / again:.3f} against this peak)")


def measure_model(args, spec, files, peak, first):
    """Every engine of `args.engines` on the model `spec` (one of --models)."""
    import numpy as np

    from tagger.audio import AudioDecodeError, audio_windows
    from tagger.inference.engine.registry import EngineOptions, make_predictor
    from tagger.inference.engine.tagging import tag_files
    from tagger.runtime import native_stderr_silenced

    label, model, info = bench_model(spec, args)
    keras_predictor = make_predictor("keras", model, info)
    rate, window = keras_predictor.sample_rate, keras_predictor.window_samples
    hop, edge = keras_predictor.hop_samples, keras_predictor.edge_padding

    def decode(paths):  # the windows tag_files cuts
        out = []
        for path in paths:
            try:
                out.extend(samples for _, samples in audio_windows(
                    path, rate, window, hop=hop, edge_padding=edge))
            except AudioDecodeError:
                pass
        return np.stack(out)

    chunks = [files[i:i + args.chunk_files] for i in range(0, len(files), args.chunk_files)]
    with native_stderr_silenced():  # mpg123's notes on the deliberately broken files
        chunk_windows, decode_seconds = timed(lambda: [decode(c) for c in chunks])
    count = sum(len(w) for w in chunk_windows)
    audio = count * (hop or window) / rate  # seconds of audio scored (tails dropped)
    flops = window_flops(model, info)
    print(f"== model {label} ({spec}): {model.count_params() / 1e6:.2f}M parameters, "
          f"{flops / 1e9:.3f} GFLOP per window of {window / rate:.3f} s at {rate} Hz "
          f"({count} windows = {audio:.0f} s of audio); load average "
          f"{os.getloadavg()[0]:.1f}")
    print(f"decoding + resampling alone, one thread: {decode_seconds:.2f} s "
          f"({audio / decode_seconds:.0f} s of audio per s)")

    reference = None  # the Keras engine's scores, path -> (clip (tags,), windows (n, tags))
    overlaps = {"keras": 1.0}  # per engine: top-5 overlap per window with keras's
    predictors = {"keras": keras_predictor}  # kept for the model-only timing in turns
    for number, engine in enumerate(args.engines):
        predictor, convert_seconds = keras_predictor, 0.0
        if engine != "keras":  # tflite-int8 calibrates on the files, as tag.py does
            with native_stderr_silenced():
                predictor, convert_seconds = timed(make_predictor, engine, model, info,
                                                   EngineOptions(calibration_audio=lambda: files))
        predictors[engine] = predictor
        scores, lines = measure(args, predictor, files, chunks, chunk_windows, audio, count,
                                audio / decode_seconds)
        print(f"-- {label}, engine {engine}" + (f" (converted in {convert_seconds:.1f} s, "
                                                f"{predictor.threads} threads)"
                                                if hasattr(predictor, "threads") else ""))
        for line in lines["text"]:
            print(line)
        model_rate = lines["model_rate"]  # seconds of audio per second, median round
        # the best round against the best matrix product, as the other benches keep
        mfu = lines["best_model_rate"] * rate / (hop or window) * flops / peak
        achieved = lines["best_model_rate"] * rate / (hop or window) * flops
        print(f"model part: {achieved / 1e9:.1f} GFLOP/s in its best round, MFU {mfu:.3f}; "
              f"end to end / model only {lines['e2e_model']:.3f} against the ceiling "
              f"{lines['ceiling']:.3f}: {lines['e2e_model'] / lines['ceiling']:.3f} "
              f"({model_rate:.1f} s of audio/s model only)")
        if reference is None:
            if engine == "keras":
                reference = scores
            else:
                with native_stderr_silenced():
                    reference = {r.path: (r.clip_scores, r.scores) for r in tag_files(
                        keras_predictor, files, batch_size=args.batch_size) if r.ok}
        if engine != "keras":
            paths = sorted(reference)
            a = np.stack([scores[p][0] for p in paths])
            b = np.stack([reference[p][0] for p in paths])
            overlaps[engine] = top5_overlap(np.concatenate([scores[p][1] for p in paths]),
                                            np.concatenate([reference[p][1] for p in paths]))
            print(f"scores against the float Keras model: max abs difference "
                  f"{np.abs(a - b).max():.2e}, top-5 agreement {top5_overlap(a, b):.3f} "
                  f"over {len(paths)} files, {overlaps[engine]:.3f} over their windows")
        suffix = f"_{label}_{engine.replace('-', '_')}"
        figures = dict(tag_realtime=f"{lines['realtime']:.1f}",
                       tag_e2e_model=f"{lines['e2e_model']:.3f}",
                       tag_decode_of_model=f"{lines['decode_model']:.3f}",
                       tag_mfu=f"{mfu:.3f}",
                       tag_e2e_of_ceiling=f"{lines['e2e_model'] / lines['ceiling']:.3f}")
        if engine != "keras":
            figures["tag_top5_of_keras"] = f"{overlaps[engine]:.3f}"
        for name in ([""] if first and number == 0 else []) + [suffix]:
            for key, value in figures.items():
                print(f"ratio {key}{name} {value}")
    speeds = speeds_in_turns(predictors, chunk_windows, args.batch_size, args.rounds)
    print(f"model only, every engine in turn with keras on each chunk ({args.rounds} rounds): "
          + ", ".join(f"{engine} {speeds[engine]:.2f}x" for engine in args.engines)
          + " the keras engine's speed")
    for number, engine in enumerate(args.engines):
        suffix = f"_{label}_{engine.replace('-', '_')}"
        for name in ([""] if first and number == 0 else []) + [suffix]:
            print(f"ratio tag_model_of_keras{name} {speeds[engine]:.3f}")
    kept = {engine: speed for engine, speed in speeds.items() if overlaps[engine] >= TOP5_KEPT}
    if kept:
        fastest = max(kept, key=kept.get)
        print(f"fastest engine on {label} keeping {TOP5_KEPT} or more of keras's top-5 tags per "
              f"window: {fastest}, model only {kept[fastest]:.2f}x the keras engine's, top-5 "
              f"overlap {overlaps[fastest]:.3f} (wanted: 2x or more)")
        print(f"ratio tag_fastest_of_keras_{label} {kept[fastest]:.3f}")


def speeds_in_turns(predictors: dict, chunk_windows, batch_size: int, rounds: int) -> dict:
    """{engine: its model-only speed over the keras engine's}: on each chunk
    of windows every predictor of `predictors` (keras's among them) scores
    them in turn, in one order and then the reverse, `rounds` times over;
    the median over the rounds of keras's seconds over the engine's, so
    that a change of the machine's load falls on every engine alike."""
    import numpy as np

    seconds = {engine: np.zeros(rounds) for engine in predictors}
    for r in range(rounds):
        for windows in chunk_windows:
            order = list(predictors) if r % 2 == 0 else list(reversed(predictors))
            for engine in order:
                seconds[engine][r] += model_only(predictors[engine], windows, batch_size)
    return {engine: float(np.median(seconds["keras"] / spent))
            for engine, spent in seconds.items()}


def top5_overlap(scores, reference) -> float:
    """The mean share of each row's top-5 tags of `reference` that are in
    its top 5 of `scores` (rows: windows or clips; `agreement.top_k_overlap`)."""
    from tagger.evaluation.agreement import top_k_overlap

    return float(top_k_overlap(scores, reference, 5).mean())


def measure(args, predictor, files, chunks, chunk_windows, audio, count, one_thread):
    """Times the model alone, end to end and decoding alone on `predictor`
    (`one_thread`: seconds of audio per second one decoder thread gives);
    returns the last round's scores (path -> (clip (tags,), windows (n, tags))) and
    the report."""
    import numpy as np

    from tagger.inference.common import available_cores
    from tagger.inference.engine.decoder_pool import DecoderRates
    from tagger.inference.engine.tagging import tag_files
    from tagger.runtime import native_stderr_silenced

    for size in {args.batch_size, *(len(w) % args.batch_size for w in chunk_windows)} - {0}:
        predictor(chunk_windows[0][:1].repeat(size, axis=0))  # every batch shape traced
    with native_stderr_silenced():
        list(tag_files(predictor, files[:2], batch_size=args.batch_size, workers=1))
    scores = {}
    instant = InstantPredictor(predictor)

    def end_to_end(paths, expected, workers, scorer=predictor):
        """(seconds, decoder threads used) of `tag_files` over `paths`."""
        rates = DecoderRates()
        with native_stderr_silenced():
            start = time.perf_counter()
            results = list(tag_files(scorer, paths, batch_size=args.batch_size,
                                     workers=workers, rates=rates))
            wall = time.perf_counter() - start
        assert sum(r.windows for r in results if r.ok) == expected
        if scorer is predictor:
            scores.update((r.path, (r.clip_scores, r.scores)) for r in results if r.ok)
        return wall, rates.threads

    # Per chunk of files: model, e2e (workers 1), model, e2e (workers 2), ...,
    # model; each end-to-end time is paired with the mean of the model-only
    # times just before and after it, a few seconds apart. Then decoding
    # alone, on the threads the first end-to-end run of the chunk used.
    model_total = np.zeros(args.rounds)
    e2e_total = {w: np.zeros(args.rounds) for w in args.workers}
    decode_total = np.zeros(args.rounds)
    ratios = {w: [] for w in args.workers}
    used = {w: [] for w in args.workers}  # decoder threads of each run
    for r in range(args.rounds):
        for paths, windows in zip(chunks, chunk_windows):
            before = model_only(predictor, windows, args.batch_size)
            for workers in args.workers:
                wall, threads = end_to_end(paths, len(windows), workers)
                used[workers].append(threads)
                after = model_only(predictor, windows, args.batch_size)
                ratios[workers].append((before + after) / 2 / wall)
                model_total[r] += (before + after) / 2 / len(args.workers)
                e2e_total[workers][r] += wall
                before = after
            decode_total[r] += end_to_end(paths, len(windows), used[args.workers[0]][-1],
                                          scorer=instant)[0]

    def listing(values):
        return ", ".join(f"{v:.1f}" for v in values)

    def named(workers):
        return "auto" if workers is None else str(workers)

    def threads_of(workers):
        low, high = min(used[workers]), max(used[workers])
        return f"{low}" if low == high else f"{low}-{high}"

    text = []
    model_seconds = float(np.median(model_total))
    model_rate = audio / model_seconds
    text.append(f"model only:  {model_rate:7.1f} s of audio/s  "
                f"({count / model_seconds:.1f} windows/s; {listing(model_total)} s per round)")
    first = args.workers[0]
    decode_rate = audio / float(np.median(decode_total))
    text.append(f"decoding:    {decode_rate:7.1f} s of audio/s  (without the model, "
                f"{threads_of(first)} decoder thread(s) as --workers {named(first)} used; "
                f"{listing(decode_total)} s per round)")
    for workers, totals in e2e_total.items():
        wall = float(np.median(totals))
        text.append(f"end to end:  {audio / wall:7.1f} s of audio/s  real-time factor "
                    f"{audio / wall:.0f}x  (--workers {named(workers)}: "
                    f"{threads_of(workers)} decoder thread(s); {listing(totals)} s per round)")
    cores = available_cores()
    ceiling = 1.0 / (1.0 + model_rate / (cores * one_thread))
    text.append(f"ceiling of end to end / model only when the model and decoding share "
                f"all {cores} cores: {ceiling:.3f} (1 / (1 + {model_rate:.0f} / ({cores} x "
                f"{one_thread:.0f})))")
    for workers, values in ratios.items():
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        text.append(ratio_line(f"end-to-end / model-only throughput, --workers "
                               f"{named(workers)}", float(median), ">= 0.9")
                    + f"   quartiles {q1:.2f}-{q3:.2f} over {len(values)} pairs")
    text.append(ratio_line("decoding alone / model only", decode_rate / model_rate, "> 1"))
    return scores, dict(text=text, realtime=audio / float(np.median(e2e_total[first])),
                        e2e_model=float(np.median(ratios[first])),
                        decode_model=decode_rate / model_rate, model_rate=model_rate,
                        best_model_rate=audio / float(np.min(model_total)), ceiling=ceiling)

if __name__ == "__main__":
    main()
