"""Turns MagnaTagATune (or the synthetic dataset in its layout) into sharded TFRecords.

    python build_mtt.py --data-dir dataset --features raw
"""

from __future__ import annotations

import os

from tagger import cli
from tagger.beam.flags import add_runner_flags, beam_run
from tagger.cli import ArgumentParser


def parse_args(argv=None):
    p = ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="dataset",
                   help="folder with annotations_final.csv and mp3/ (default: dataset)")
    p.add_argument("--out-dir", default=None,
                   help="where shards go (default: <data-dir>/tfrecord); any tf.io.gfile path")
    p.add_argument("--features", choices=["raw", "logmel"], default="raw",
                   help="store raw waveforms or log-mel frames (default: raw)")
    p.add_argument("--dtype", choices=["int16", "float32"], default="int16",
                   help="storage type of raw waveforms (default: int16)")
    p.add_argument("--n-mels", type=int, default=128, help="log-mel bins (default: 128)")
    p.add_argument("--n-fft", type=int, default=1024, help="log-mel FFT size (default: 1024)")
    p.add_argument("--hop-length", type=int, default=512,
                   help="log-mel hop in samples (default: 512)")
    p.add_argument("--f-min", type=float, default=0.0, help="lowest mel frequency, Hz")
    p.add_argument("--f-max", type=float, default=None,
                   help="highest mel frequency, Hz (default: sample rate / 2)")
    p.add_argument("--top-db", type=float, default=None,
                   help="per-segment dynamic range clamp in dB (default: none)")
    p.add_argument("--sample-rate", type=int, default=22050, help="Hz (default: 22050)")
    p.add_argument("--segment-length", type=int, default=59049,
                   help="samples per segment (default: 59049 = 3^10)")
    p.add_argument("--num-audios-per-shard", type=int, default=100,
                   help="clips per shard (default: 100)")
    p.add_argument("--workers", type=int, default=None,
                   help="decoding processes of the local builder (default: all cores)")
    p.add_argument("--split", default="directory",
                   help="'directory' (0-b train, c val, d-f test) or a folder of split lists")
    p.add_argument("--merge-synonyms", action="store_true",
                   help="merge synonym tags before choosing the top k")
    p.add_argument("--top-k", type=int, default=50, help="number of tags (default: 50)")
    p.add_argument("--seed", type=int, default=0, help="shuffles the train shards (default: 0)")
    p.add_argument("--unlabelled-fraction", type=float, default=0.0, metavar="F",
                   help="move this share of the train clips, labels dropped, into an "
                        "unlabelled 'student' split for noisy-student training (default: 0)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a build made with other settings in --out-dir")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_runner_flags(p)
    return p.parse_args(argv)


def main(argv=None):
    return cli.main(build, parse_args(argv))


def build(args):
    from tagger.config import AudioConfig, BuildConfig, FeatureConfig, LogMelConfig
    from tagger.datasets.mtt import build_mtt, plan_from_config
    from tagger.errors import UserError
    from tagger.records.info import describe

    run = beam_run(args)
    if run is not None and args.workers is not None:
        raise UserError("--workers sets the local builder's processes; with --runner "
                        "the runner decides (e.g. --beam-option direct_num_workers=2)")
    try:
        logmel = LogMelConfig(n_mels=args.n_mels, n_fft=args.n_fft,
                              hop_length=args.hop_length, f_min=args.f_min,
                              f_max=args.f_max, top_db=args.top_db)
        config = BuildConfig(
            data_dir=args.data_dir, out_dir=args.out_dir,
            audio=AudioConfig(args.sample_rate, args.segment_length),
            features=FeatureConfig(args.features, args.dtype, logmel),
            clips_per_shard=args.num_audios_per_shard,
            workers=args.workers if args.workers is not None else os.cpu_count() or 1,
            split=args.split, merge_synonyms=args.merge_synonyms, top_k=args.top_k,
            seed=args.seed, unlabelled_fraction=args.unlabelled_fraction,
            overwrite=args.overwrite, progress=not args.no_progress)
    except ValueError as error:
        raise UserError(str(error)) from None
    if run is None:
        info = build_mtt(config)
    else:
        from tagger.beam.build import run_beam_build
        info = run_beam_build(plan_from_config(config), config, run)
    print(describe(info, config.output_dir))


if __name__ == "__main__":
    raise SystemExit(main())
