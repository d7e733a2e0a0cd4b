"""One short name for a records folder's content: what anything computed
from the records and stored beside them (a teacher's targets, a model's
embeddings) is keyed on, so that records rebuilt with other clips, audio
or shards are never read with another build's results."""

from __future__ import annotations

import hashlib
import json

from tagger.records.info import DatasetInfo, load_info


def records_fingerprint(data_dir: str, info: DatasetInfo | None = None) -> str:
    """SHA-256 (hex) of what decides the records' clips and audio: the
    build's fingerprint (the plan's clips, labels and settings: the bytes of
    the shards), the audio and feature settings and every split's clips,
    segments and shard names. `info`: the records' dataset_info (read from
    `data_dir` when not given)."""
    info = info or load_info(data_dir)
    content = {"build": info.fingerprint, "sample_rate": info.sample_rate,
               "segment_length": info.segment_length, "features": info.features,
               "segment_shape": list(info.segment_shape),
               "splits": {name: {key: split[key] for key in ("clips", "segments", "shards")}
                          for name, split in sorted(info.splits.items())}}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
