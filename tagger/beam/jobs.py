"""Shard jobs as JSON lines: the pipeline's input, one line per shard to
write, carrying its clips (and the reason of any known-broken one), so the
job graph stays small however many clips a dataset has."""

from __future__ import annotations

import json

from tagger.records.plan import Clip
from tagger.records.writer import ShardJob


def encode_job(job: ShardJob, known_broken: dict) -> str:
    clips = [[c.clip_id, c.path, None if c.labels is None else list(c.labels),
              known_broken.get(c.path)] for c in job.clips]
    return json.dumps({"split": job.split, "name": job.name, "clips": clips})


def decode_job(line: str) -> tuple:
    """-> (ShardJob, known_broken of its clips)."""
    data = json.loads(line)
    clips = tuple(Clip(int(i), path, None if labels is None else tuple(labels))
                  for i, path, labels, _ in data["clips"])
    broken = {path: reason for _, path, _, reason in data["clips"] if reason is not None}
    return ShardJob(data["split"], data["name"], clips), broken
