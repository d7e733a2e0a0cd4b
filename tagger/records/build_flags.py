"""The flags every dataset builder shares (build_mtt.py, build_msd.py):
features, audio, shards, workers, resume/overwrite, progress, Beam runner.

    add_record_flags(parser)            adds them
    record_settings(args) -> dict       BuildConfig fields they set
    write_plan(plan_fn, config, args)   local processes or a Beam runner
"""

from __future__ import annotations

import os

from tagger.beam.flags import add_runner_flags, beam_run
from tagger.errors import UserError


def add_record_flags(p) -> None:
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
    p.add_argument("--overwrite", action="store_true",
                   help="replace a build made with other settings in --out-dir")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_runner_flags(p)


def record_settings(args) -> dict:
    """The BuildConfig fields the shared flags set (audio, features, shards,
    workers, overwrite, progress)."""
    from tagger.config import AudioConfig, FeatureConfig, LogMelConfig

    try:
        logmel = LogMelConfig(n_mels=args.n_mels, n_fft=args.n_fft,
                              hop_length=args.hop_length, f_min=args.f_min,
                              f_max=args.f_max, top_db=args.top_db)
        return dict(
            out_dir=args.out_dir,
            audio=AudioConfig(args.sample_rate, args.segment_length),
            features=FeatureConfig(args.features, args.dtype, logmel),
            clips_per_shard=args.num_audios_per_shard,
            workers=args.workers if args.workers is not None else os.cpu_count() or 1,
            overwrite=args.overwrite, progress=not args.no_progress)
    except ValueError as error:
        raise UserError(str(error)) from None


def write_plan(plan_fn, config, args) -> dict:
    """Writes the records of `plan_fn()` (a DatasetPlan) as `config` says,
    with local processes or the Beam runner the flags name; returns
    dataset_info."""
    run = beam_run(args)
    if run is not None and args.workers is not None:
        raise UserError("--workers sets the local builder's processes; with --runner "
                        "the runner decides (e.g. --beam-option direct_num_workers=2)")
    if run is None:
        from tagger.records.writer import build_records
        return build_records(plan_fn(), config)
    from tagger.beam.build import run_beam_build
    return run_beam_build(plan_fn(), config, run)
