"""What identifies a folder of records: one hash for anything stored beside
them or made from them (a teacher's targets, a model's embeddings), so that
records rebuilt with other clips, audio or settings are never paired with
what was made from the old ones."""

from __future__ import annotations

import hashlib
import json

from tagger.records.info import DatasetInfo, load_info, shard_paths
from tagger.records.shard_state import file_stat

SHARD_CHECKSUMS = {"shard_framing_sha256", "shard_sha256"}  # the builder's keys, new and old


def records_fingerprint(data_dir: str, info: DatasetInfo | None = None) -> str:
    """The SHA-256 (64 hex digits) of the records in `data_dir`: of their
    dataset_info.json's content, which holds a checksum of each shard
    recorded by the builder as it wrote the shard (the SHA-256 of its
    records' lengths and CRC32Cs; of all its bytes in records built before).
    Records built before the builder recorded either give each shard's name
    and size in their place (checking no shard's bytes: a million clips'
    shards take hours to read). What the builder recorded, not what the
    shards hold now: a store keys each of its shards on its file as it is
    too (`shard_state`)."""
    info = info or load_info(data_dir)
    content = info.to_json()
    for split, entry in info.splits.items():
        if not SHARD_CHECKSUMS & entry.keys():
            stats = [file_stat(path) for path in shard_paths(data_dir, info, split)]
            content["splits"][split]["shard_sizes"] = [stat and stat[0] for stat in stats]
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()

