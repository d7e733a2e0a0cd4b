"""Reader throughput: the training pipeline vs raw reading of the same shards.

Prints segments/s of `reader.train_dataset` (parse, scale int16, window,
shuffle, batch) and the ratio to reading the shard files' records alone.
    python bench/bench_reader.py --data-dir dataset/tfrecord
"""

from __future__ import annotations

import argparse
import os
import tempfile

from common import ratio_line, synthetic_data, timed


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=None,
                   help="built records (default: build 100 synthetic clips in a temp dir)")
    p.add_argument("--batch-size", type=int, default=23)
    p.add_argument("--passes", type=int, default=3)
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    from tagger.config import BuildConfig
    from tagger.datasets.mtt import build_mtt
    from tagger.records import reader
    from tagger.records.info import load_info, shard_paths

    data_dir = args.data_dir
    if data_dir is None:
        work = tempfile.mkdtemp(prefix="bench_reader_")
        source = synthetic_data(os.path.join(work, "data"), 100, 29.1)
        data_dir = os.path.join(work, "records")
        build_mtt(BuildConfig(data_dir=source, out_dir=data_dir, workers=os.cpu_count(),
                              progress=False))
    info = load_info(data_dir)
    segments = info["splits"]["train"]["segments"] * args.passes
    steps = segments // args.batch_size
    paths = shard_paths(data_dir, info, "train")

    def raw_read():
        count = 0
        for _ in range(args.passes):
            for record in tf.data.TFRecordDataset(paths, num_parallel_reads=4):
                count += 1
        return count

    def pipeline():
        data = reader.train_dataset(data_dir, args.batch_size, info=info)
        for _ in data.take(steps):
            pass

    raw_read()  # warm the page cache
    pipeline()
    _, raw_s = timed(raw_read)
    _, ours_s = timed(pipeline)
    ours_rate = steps * args.batch_size / ours_s
    raw_rate = segments / raw_s
    print(f"{info['features']['kind']} {info['features']['dtype']}: pipeline "
          f"{ours_rate:.0f} segments/s, raw record reading {raw_rate:.0f} segments/s")
    print(ratio_line("reader segments/s / raw record reading", ours_rate / raw_rate,
                     "as close to 1 as possible"))
    print(ratio_line("reader segments/s / 3000", ours_rate / 3000, ">= 1"))


if __name__ == "__main__":
    main()
