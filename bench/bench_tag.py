"""tag.py's pipeline against the model alone: does decoding hide behind inference?

    python bench/bench_tag.py [--clips 40] [--seconds 29.1] [--width 1.0]
                              [--batch-size 32] [--workers 2] [--model PATH]

Makes (once) a folder of synthetic MagnaTagATune-layout MP3s and tags it
with an untrained paper-size SE+multi sample-level CNN (or `--model`), in
one process:

- model only: the same windows, decoded beforehand, scored in batches of
  the same size by the same compiled predictor;
- end to end: `tag_files` over the folder (decoder threads, bounded queue,
  batching across files), for each `--workers` value.

The folder is measured in chunks of `--chunk-files` files, `--rounds`
times: per chunk the model-only time is taken just before and just after
each end-to-end run (a few seconds apart), so load from elsewhere on the
machine weighs on both sides of a pair alike. The ratio printed is the
median over all pairs; the throughputs are medians over rounds of whole
passes (sums of the chunks).

Prints seconds of audio per second for both, their ratio (goal >= 0.85:
decoding and batching hide behind the model) and the real-time factor.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from common import ratio_line, synthetic_data, timed


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work-dir", default=None,
                   help="keep the synthetic clips here (default: a temp dir)")
    p.add_argument("--clips", type=int, default=40)
    p.add_argument("--seconds", type=float, default=29.1)
    p.add_argument("--model", default=None, help="a saved tagger instead of the untrained one")
    p.add_argument("--block", default="se")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--workers", type=int, nargs="+", default=[2],
                   help="decoder threads; several values are measured in turn")
    p.add_argument("--rounds", type=int, default=3, help="passes over the folder")
    p.add_argument("--chunk-files", type=int, default=10,
                   help="files per paired measurement (see the module docstring)")
    return p.parse_args()


def untrained_model(block: str, width: float):
    from tagger.datasets.synthetic import MTT_TOP50
    from tagger.models import build_model

    model = build_model("samplecnn", num_tags=50, block=block, multi=True, width=width)
    info = dict(tag_names=list(MTT_TOP50), sample_rate=22050, segment_length=59049,
                window_segments=1, input_kind="raw", logmel=None, model="samplecnn",
                model_args=dict(block=block, multi=True, width=width))
    return model, info


def model_only(predictor, windows, batch_size: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(windows), batch_size):
        predictor(windows[i:i + batch_size])
    return time.perf_counter() - start


def main():
    args = parse_args()
    from tagger import cli
    cli.quiet_tensorflow()
    import numpy as np

    from tagger.audio import AudioDecodeError, audio_windows
    from tagger.inference.inputs import find_audio
    from tagger.inference.native_stderr import native_stderr_silenced
    from tagger.inference.predictor import Predictor
    from tagger.inference.tagging import tag_files
    from tagger.models.saved import load_tagger

    work = args.work_dir or tempfile.mkdtemp(prefix="bench_tag_")
    synthetic_data(work, args.clips, args.seconds)
    files = find_audio([work], recursive=True).files
    if args.model:
        model, info = load_tagger(args.model)
    else:
        model, info = untrained_model(args.block, args.width)
    predictor = Predictor(model, info)
    rate, window = predictor.sample_rate, predictor.window_samples

    def decode(paths):
        out = []
        for path in paths:
            try:
                out.extend(samples for _, samples in audio_windows(path, rate, window))
            except AudioDecodeError:
                pass
        return np.stack(out)

    chunks = [files[i:i + args.chunk_files] for i in range(0, len(files), args.chunk_files)]
    with native_stderr_silenced():  # mpg123's notes on the deliberately broken files
        chunk_windows, decode_seconds = timed(lambda: [decode(c) for c in chunks])
    count = sum(len(w) for w in chunk_windows)
    audio = count * window / rate  # seconds of audio scored (tails dropped)
    print(f"{len(files)} files ({args.clips} clips of {args.seconds} s, the generator's "
          f"broken ones included), {count} windows = {audio:.0f} s of audio; "
          f"{model.count_params() / 1e6:.1f}M parameters, batch {args.batch_size}")
    print(f"decoding + resampling alone, one thread: {decode_seconds:.2f} s "
          f"({audio / decode_seconds:.0f} s of audio per s)")

    for size in {args.batch_size, *(len(w) % args.batch_size for w in chunk_windows)} - {0}:
        predictor(chunk_windows[0][:1].repeat(size, axis=0))  # every batch shape traced
    list(tag_files(predictor, files[:2], batch_size=args.batch_size, workers=1))

    def end_to_end(paths, expected, workers):
        with native_stderr_silenced():
            start = time.perf_counter()
            results = list(tag_files(predictor, paths, batch_size=args.batch_size,
                                     workers=workers))
            wall = time.perf_counter() - start
        assert sum(r.windows for r in results if r.ok) == expected
        return wall

    # Per chunk of files: model, e2e (workers 1), model, e2e (workers 2), ...,
    # model; each end-to-end time is paired with the mean of the model-only
    # times just before and after it, a few seconds apart.
    model_total = np.zeros(args.rounds)
    e2e_total = {w: np.zeros(args.rounds) for w in args.workers}
    ratios = {w: [] for w in args.workers}
    for r in range(args.rounds):
        for paths, windows in zip(chunks, chunk_windows):
            before = model_only(predictor, windows, args.batch_size)
            for workers in args.workers:
                wall = end_to_end(paths, len(windows), workers)
                after = model_only(predictor, windows, args.batch_size)
                ratios[workers].append((before + after) / 2 / wall)
                model_total[r] += (before + after) / 2 / len(args.workers)
                e2e_total[workers][r] += wall
                before = after

    def listing(values):
        return ", ".join(f"{v:.1f}" for v in values)

    model_seconds = float(np.median(model_total))
    print(f"model only:  {audio / model_seconds:7.1f} s of audio/s  "
          f"({count / model_seconds:.1f} windows/s; {listing(model_total)} s per round)")
    for workers, totals in e2e_total.items():
        wall = float(np.median(totals))
        print(f"end to end:  {audio / wall:7.1f} s of audio/s  real-time factor "
              f"{audio / wall:.0f}x  ({workers} decoder thread{'s' if workers > 1 else ''}; "
              f"{listing(totals)} s per round)")
    for workers, values in ratios.items():
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        print(ratio_line(f"end-to-end / model-only throughput, {workers} workers",
                         float(median), ">= 0.85")
              + f"   quartiles {q1:.2f}-{q3:.2f} over {len(values)} pairs")

if __name__ == "__main__":
    main()
