"""Shared fixtures: a small synthetic MagnaTagATune-layout dataset and its records.

The dataset is made once per test session: 40 clips of 6 s (two 59049-sample
segments each at 22050 Hz), with the synthetic generator's broken files.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# TensorFlow's memory as the commands set it up, here and in the processes
# tests start (tagger.runtime imports no TensorFlow until asked)
from tagger.runtime import use_pooling_cpu_allocator  # noqa: E402
from tagger.host_memory import keep_freed_heap  # noqa: E402

use_pooling_cpu_allocator()
keep_freed_heap()

SYNTHETIC_CLIPS = 40
SYNTHETIC_SECONDS = 6.0
CLIPS_PER_SHARD = 4


@pytest.fixture(scope="session")
def synthetic_mtt(tmp_path_factory):
    """(data_dir, SyntheticSummary) of a small synthetic dataset."""
    from tagger.datasets.synthetic import generate

    folder = tmp_path_factory.mktemp("synthetic") / "mtt"
    summary = generate(str(folder), clips=SYNTHETIC_CLIPS, seconds=SYNTHETIC_SECONDS,
                       seed=0, progress=False)
    return str(folder), summary


def build_config(data_dir, out_dir, **overrides):
    from tagger.config import BuildConfig

    settings = dict(data_dir=str(data_dir), out_dir=str(out_dir), workers=1,
                    clips_per_shard=CLIPS_PER_SHARD, progress=False)
    settings.update(overrides)
    return BuildConfig(**settings)


MTT_SETTINGS = ("split", "merge_synonyms", "top_k", "seed", "unlabelled_fraction")


def mtt_settings(overrides: dict):
    """The MttSettings of the MttSettings fields in `overrides` (removed from it)."""
    from tagger.datasets.mtt import MttSettings

    return MttSettings(**{k: overrides.pop(k) for k in MTT_SETTINGS if k in overrides})


def build_mtt(data_dir, out_dir, runner=None, **overrides):
    """MagnaTagATune records of `data_dir` in `out_dir`, written by `runner`
    (default: local processes): the MttSettings fields among `overrides`
    set the plan, the others the BuildConfig."""
    from tagger.datasets.build import build
    from tagger.datasets.mtt import SOURCE

    settings = mtt_settings(overrides)
    return build(SOURCE, settings, build_config(data_dir, out_dir, **overrides), runner)


@pytest.fixture(scope="session")
def raw_records(synthetic_mtt, tmp_path_factory):
    """(records_dir, dataset_info) of the synthetic dataset as raw int16 records."""
    data_dir, _ = synthetic_mtt
    out_dir = tmp_path_factory.mktemp("records") / "raw"
    info = build_mtt(data_dir, out_dir)
    return str(out_dir), info
