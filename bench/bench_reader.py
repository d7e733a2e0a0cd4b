"""Reader throughput and shuffle quality: the training pipeline vs bare
record reading + parsing of the same shards.

Prints, measured in one run on the same shards (raw int16, window 1):
- segments/s (wall) and CPU microseconds per segment of
  bare:     TFRecordDataset + the records' parse (int16 -> float32), per clip
  reader:   reader.train_dataset (parse, block shuffle, batch, float32)
  elementwise: the same through a per-segment tf.data shuffle buffer
            (unbatch -> shuffle -> batch) of 1000 segments, the way the
            reader used to work
  bare int16, reader int16: the same two with the windows left int16, as
            train.py reads them (its step converts them on its device)
  no-TF Nw: plain_reader.train_batches, the reader without TensorFlow
            (int16 windows), with N worker processes (--workers; 0: all
            in this process); its CPU time is this process's alone (with
            workers: what the training process spends on its input)
  each in its steady state (one pass's worth read before timing
  --passes passes' worth, as a training run reads one pipeline for hours),
  the best of --repeats runs (the three interleaved: on a machine shared
  with other work the best run is the least disturbed);
- shuffle quality over a pass's worth of seeded batches: distinct clips per
  batch and per 10 consecutive batches, reader vs elementwise.
    python bench/bench_reader.py [--data-dir dataset/tfrecord | --clips 100 --seconds 29.1]
                                 [--passes 10] [--repeats 5] [--workers 0 1 2]
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time

from common import synthetic_data

ELEMENTWISE_BUFFER = 1000  # the per-window shuffle buffer the reader used to have


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=None,
                   help="built raw int16 records (default: build --clips synthetic clips "
                        "of --seconds in a temp dir)")
    p.add_argument("--clips", type=int, default=100,
                   help="synthetic clips to build without --data-dir (default: 100)")
    p.add_argument("--seconds", type=float, default=29.1,
                   help="their length (default: 29.1)")
    p.add_argument("--batch-size", type=int, default=23)
    p.add_argument("--passes", type=int, default=10, help="passes over train per run")
    p.add_argument("--repeats", type=int, default=5, help="runs per pipeline (the best counts)")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2],
                   help="worker processes of the reader without TensorFlow, one run each "
                        "(0: it reads in this process; default: 0 1 2)")
    args = p.parse_args()
    if min(args.workers) < 0:
        p.error(f"--workers must be 0 or more, got {min(args.workers)}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np
    import tensorflow as tf

    from tagger.audio import INT16_SCALE
    from tagger.config import BuildConfig
    from tagger.datasets.build import build
    from tagger.datasets.mtt import SOURCE, MttSettings
    from tagger.records import plain_reader, reader
    from tagger.records.info import load_info, shard_paths
    from tagger.records.schema import make_parser, to_float

    data_dir = args.data_dir
    if data_dir is None:
        work = tempfile.mkdtemp(prefix="bench_reader_")
        source = synthetic_data(os.path.join(work, "data"), args.clips, args.seconds)
        data_dir = os.path.join(work, "records")
        build(SOURCE, MttSettings(), BuildConfig(
            data_dir=source, out_dir=data_dir, workers=os.cpu_count(), progress=False))
    info = load_info(data_dir)
    if info.features != {"kind": "raw", "dtype": "int16", "logmel": None}:
        raise SystemExit("bench_reader needs raw int16 records")
    batch = args.batch_size
    per_pass = info.splits["train"]["segments"]
    paths = shard_paths(data_dir, info, "train")
    def bare(as_stored=False):
        parse = make_parser(info.num_tags, tuple(info.segment_shape), "int16",
                            as_stored=as_stored)
        records = tf.data.TFRecordDataset(paths).repeat()
        return records.map(parse, num_parallel_calls=tf.data.AUTOTUNE)

    def ours(seed=None, repeat=True, as_stored=False):
        return reader.train_dataset(data_dir, batch, info=info, seed=seed, repeat=repeat,
                                    as_stored=as_stored)

    def elementwise(seed=None, repeat=True):
        files = tf.data.Dataset.from_tensor_slices(paths).shuffle(len(paths), seed=seed)
        clips = files.interleave(tf.data.TFRecordDataset, cycle_length=4,
                                 num_parallel_calls=tf.data.AUTOTUNE).map(
            make_parser(info.num_tags, tuple(info.segment_shape), "int16", as_stored=True),
            num_parallel_calls=tf.data.AUTOTUNE)
        data = clips.map(lambda c: (c["segments"], tf.repeat(c["tags"][None], tf.shape(
            c["segments"])[0], axis=0)), num_parallel_calls=tf.data.AUTOTUNE)
        data = data.unbatch().shuffle(ELEMENTWISE_BUFFER, seed=seed)
        data = (data.repeat() if repeat else data).batch(batch, drop_remainder=True)
        return data.map(lambda x, y: (to_float(x), y), num_parallel_calls=tf.data.AUTOTUNE,
                        deterministic=True).prefetch(tf.data.AUTOTUNE)

    def measure(name):
        """Steady state, as in training: one pass's worth is read first (the
        pipeline's start-up and its first shuffle block), then --passes
        passes' worth is timed."""
        if name.startswith("bare"):
            data = bare(as_stored=name == "bare int16")
            count = lambda e: int(e["segments"].shape[0])  # noqa: E731
        elif name.startswith("no-TF"):
            data = plain_reader.train_batches(data_dir, batch, info=info,
                                              workers=int(name.split()[1][:-1]))
            count = lambda e: int(e[0].shape[0])  # noqa: E731
        else:
            data = {"reader": ours, "elementwise": elementwise,
                    "reader int16": lambda: ours(as_stored=True)}[name]()
            count = lambda e: int(e[0].shape[0])  # noqa: E731
        elements = iter(data)

        def read(segments):
            done = 0
            while done < segments:
                done += count(next(elements))
            return done

        read(per_pass)
        wall, cpu = time.perf_counter(), time.process_time()
        segments = read(per_pass * args.passes)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if hasattr(data, "close"):
            data.close()  # the reader without TensorFlow: its workers
        return segments / wall, cpu / segments * 1e6

    no_tf = [f"no-TF {w}w" for w in dict.fromkeys(args.workers)]
    names = ("bare", "reader", "elementwise", "bare int16", "reader int16", *no_tf)
    for name in names:  # warm up: page cache, tracing
        measure(name)
    runs = {name: [] for name in names}
    for _ in range(args.repeats):
        for name in names:
            runs[name].append(measure(name))
    rate = {n: max(r for r, _ in runs[n]) for n in names}
    cpu = {n: min(c for _, c in runs[n]) for n in names}
    print(f"{per_pass} train segments x {args.passes} passes, batch {batch}, "
          f"{os.cpu_count()} cores, best of {args.repeats} runs:")
    for name in names:
        print(f"  {name:13s} {rate[name]:8.0f} segments/s  {cpu[name]:6.1f} CPU us/segment")

    clip_of = {}
    for clip in reader.clip_dataset(data_dir, "train", info, as_stored=True).as_numpy_iterator():
        for segment in clip["segments"]:
            clip_of[segment[::97].tobytes()] = int(clip["clip_id"])

    def clips(xs):
        keys = xs[:, ::97]
        if keys.dtype != np.int16:  # float32 windows: their int16 samples
            keys = np.rint(keys * INT16_SCALE).astype(np.int16)
        return [clip_of[key.tobytes()] for key in keys]

    def quality(data):
        batches = [clips(xs) for xs, _ in itertools.islice(data, per_pass // batch)]
        per_batch = np.mean([len(set(b)) for b in batches])
        per_10 = np.mean([len(set(sum(batches[i:i + 10], [])))
                          for i in range(0, len(batches) - 9, 10)])
        return per_batch, per_10

    print(f"shuffle quality over {per_pass // batch} batches of {batch} (reader blocks of "
          f"{reader.DEFAULT_SHUFFLE_SEGMENTS} segments, elementwise buffer of "
          f"{ELEMENTWISE_BUFFER}; {info.splits['train']['clips']} clips): "
          "distinct clips per batch / per 10 batches")
    for name, make in (("reader", ours), ("elementwise", elementwise)):
        per_batch, per_10 = quality(make(seed=0).as_numpy_iterator())
        print(f"  {name:13s} {per_batch:6.2f} / {per_10:6.2f}")
    with plain_reader.train_batches(data_dir, batch, info=info, seed=0, workers=0) as data:
        print("  {:13s} {:6.2f} / {:6.2f}".format("no-TF", *quality(data)))
    print(f"  cpu reader / elementwise {cpu['reader'] / cpu['elementwise']:.3f}, "
          f"bare / reader {cpu['bare'] / cpu['reader']:.3f} (CPU time per segment)")
    print(f"ratio reader_bare {rate['reader'] / rate['bare']:.3f}")
    print(f"ratio reader_segments_per_s {rate['reader']:.0f}")
    # what train.py reads: int16 windows, converted in the training step
    print(f"ratio reader_bare_int16 {rate['reader int16'] / rate['bare int16']:.3f}")
    print(f"ratio reader_segments_per_s_int16 {rate['reader int16']:.0f}")
    # the reader without TensorFlow, int16 windows as train.py reads them:
    # with each number of workers, and with the most
    for name in no_tf:
        print(f"ratio reader_segments_per_s_no_tf_{name.split()[1]} {rate[name]:.0f}")
    most = f"no-TF {max(args.workers)}w"
    print(f"ratio reader_segments_per_s_no_tf {rate[most]:.0f}")
    print(f"ratio reader_no_tf_over_tf_int16 {rate[most] / rate['reader int16']:.3f}")


if __name__ == "__main__":
    main()
