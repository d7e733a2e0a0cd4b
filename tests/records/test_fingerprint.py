"""The records' fingerprint: the same for a copy of the records, another
for records whose shards or description differ; records built before the
shards' checksums were recorded are told apart by their shards' sizes."""

from __future__ import annotations

import hashlib
import json
import shutil

from tagger.records.fingerprint import records_fingerprint


def copied(raw_records, folder, change=None) -> str:
    """The raw records copied to `folder`, their dataset_info.json edited by `change`."""
    shutil.copytree(raw_records[0], folder)
    if change:
        path = folder / "dataset_info.json"
        stored = json.loads(path.read_text())
        change(stored)
        path.write_text(json.dumps(stored))
    return str(folder)


def test_a_copy_has_the_fingerprint_of_its_records(raw_records, tmp_path):
    fingerprint = records_fingerprint(raw_records[0])
    assert len(fingerprint) == 64 and int(fingerprint, 16) >= 0
    assert records_fingerprint(copied(raw_records, tmp_path / "copy")) == fingerprint
    assert records_fingerprint(raw_records[0], raw_records[1]) == fingerprint


def test_other_shard_bytes_or_another_description_are_other_records(raw_records, tmp_path):
    def rebuilt(stored):  # the same clips and counts, other audio in one shard
        stored["splits"]["train"]["shard_framing_sha256"][0] = "0" * 64

    def relabelled(stored):
        stored["splits"]["train"]["labelled"] = False

    fingerprint = records_fingerprint(raw_records[0])
    others = {records_fingerprint(copied(raw_records, tmp_path / change.__name__, change))
              for change in (rebuilt, relabelled)}
    assert len(others) == 2 and fingerprint not in others


def test_records_built_before_shard_checksums_go_by_the_shards_sizes(raw_records, tmp_path):
    def older(stored):
        for split in stored["splits"].values():
            del split["shard_framing_sha256"]

    folder = copied(raw_records, tmp_path / "older", older)
    before = records_fingerprint(folder)
    assert before != records_fingerprint(raw_records[0])
    assert records_fingerprint(folder) == before
    shard = tmp_path / "older" / raw_records[1].splits["test"]["shards"][-1]
    shard.write_bytes(shard.read_bytes()[:-10])  # an interrupted copy
    assert records_fingerprint(folder) != before


def test_records_with_each_shards_sha256_go_by_it(raw_records, tmp_path):
    """Records whose dataset_info.json holds the SHA-256 of each shard's
    bytes (as built before the framing digests) keep the fingerprint of
    that content, whatever the shards' sizes."""
    def sha256_of_bytes(stored):
        for split in stored["splits"].values():
            split["shard_sha256"] = ["1" * 64 for _ in split.pop("shard_framing_sha256")]

    folder = copied(raw_records, tmp_path / "sha256", sha256_of_bytes)
    before = records_fingerprint(folder)
    content = json.loads((tmp_path / "sha256" / "dataset_info.json").read_text())
    assert before == hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":"))
                                    .encode()).hexdigest()
    shard = tmp_path / "sha256" / raw_records[1].splits["test"]["shards"][-1]
    shard.write_bytes(shard.read_bytes()[:-10])
    assert records_fingerprint(folder) == before
