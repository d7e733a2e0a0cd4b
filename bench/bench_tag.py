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

Model-only and end-to-end runs alternate for `--rounds` rounds; each
end-to-end run is compared with the mean of the model-only runs just before
and after it, and the ratio printed is the median over rounds, so load from
elsewhere on the machine affects both sides of a ratio alike.

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
    p.add_argument("--rounds", type=int, default=3,
                   help="interleaved repetitions (the median ratio is printed)")
    return p.parse_args()


def untrained_model(block: str, width: float):
    from tagger.datasets.synthetic import MTT_TOP50
    from tagger.layers.tagger_info import attach_info
    from tagger.models import build_model

    model = build_model("samplecnn", num_tags=50, block=block, multi=True, width=width)
    info = dict(tag_names=list(MTT_TOP50), sample_rate=22050, segment_length=59049,
                window_segments=1, input_kind="raw", logmel=None, model="samplecnn",
                model_args=dict(block=block, multi=True, width=width))
    return attach_info(model, info), info


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

    def decode_all():
        out = []
        for path in files:
            try:
                out.extend(samples for _, samples in audio_windows(path, rate, window))
            except AudioDecodeError:
                pass
        return np.stack(out)

    with native_stderr_silenced():  # mpg123's notes on the deliberately broken files
        windows, decode_seconds = timed(decode_all)
    audio = len(windows) * window / rate  # seconds of audio scored (tails dropped)
    print(f"{len(files)} files ({args.clips} clips of {args.seconds} s, the generator's "
          f"broken ones included), {len(windows)} windows = {audio:.0f} s of audio; "
          f"{model.count_params() / 1e6:.1f}M parameters, batch {args.batch_size}")
    print(f"decoding + resampling alone, one thread: {decode_seconds:.2f} s "
          f"({audio / decode_seconds:.0f} s of audio per s)")

    predictor(windows[:args.batch_size])  # traces: a full batch and the last one
    predictor(windows[:len(windows) % args.batch_size or args.batch_size])
    list(tag_files(predictor, files[:2], batch_size=args.batch_size, workers=1))

    def end_to_end(workers):
        with native_stderr_silenced():
            start = time.perf_counter()
            results = list(tag_files(predictor, files, batch_size=args.batch_size,
                                     workers=workers))
            wall = time.perf_counter() - start
        tagged = sum(r.windows for r in results if r.ok)
        assert tagged == len(windows), (tagged, len(windows))
        return wall

    # model, e2e, model, e2e, ..., model: each end-to-end run is paired with
    # the mean of the model-only runs just before and after it.
    model_runs = [model_only(predictor, windows, args.batch_size)]
    runs = {workers: [] for workers in args.workers}
    ratios = {workers: [] for workers in args.workers}
    for _ in range(args.rounds):
        for workers in args.workers:
            wall = end_to_end(workers)
            model_runs.append(model_only(predictor, windows, args.batch_size))
            runs[workers].append(wall)
            ratios[workers].append((model_runs[-2] + model_runs[-1]) / 2 / wall)
    model_seconds = min(model_runs)

    def listing(values):
        return ", ".join(f"{v:.2f}" for v in values)

    print(f"model only:  {model_seconds:6.2f} s  {audio / model_seconds:7.1f} s of audio/s  "
          f"({len(windows) / model_seconds:.1f} windows/s; best of {listing(model_runs)} s)")
    for workers, times in runs.items():
        wall = min(times)
        print(f"end to end:  {wall:6.2f} s  {audio / wall:7.1f} s of audio/s  "
              f"({workers} decoder thread{'s' if workers > 1 else ''}; real-time factor "
              f"{audio / wall:.0f}x; best of {listing(times)} s)")
    for workers, values in ratios.items():
        print(ratio_line(f"end-to-end / model-only throughput, {workers} workers",
                         float(np.median(values)), ">= 0.85")
              + f"   median of {listing(values)}")

if __name__ == "__main__":
    main()
