"""The Beam pipeline that writes a build's shards: read the shard jobs,
spread them over the workers, write each shard with the local builder's
per-clip decoding and shard writing (so the bytes are the same)."""

from __future__ import annotations

import apache_beam as beam

from tagger.beam.jobs import decode_job
from tagger.config import BuildConfig
from tagger.records import writer


class WriteShardFn(beam.DoFn):
    """Writes one shard per job line and emits its name. A shard whose file
    and manifest exist (an earlier attempt of a retried bundle finished it)
    is not written again; every attempt writes under its own temporary name
    and renames into place, so none leaves a partial shard."""

    def __init__(self, config: BuildConfig, audio_root: str, num_tags: int):
        self.config = config
        self.audio_root = audio_root
        self.num_tags = num_tags
        self.features = None

    def setup(self):
        from tagger.runtime import quiet_tensorflow

        quiet_tensorflow()
        self.features = writer.feature_transform(self.config)

    def process(self, line):
        job, known_broken = decode_job(line)
        out_dir = self.config.output_dir
        if writer.load_manifest(out_dir, job) is None:
            decoded = writer.decode_clips(job.clips, self.audio_root, known_broken,
                                          self.config, num_tags=self.num_tags)
            writer.write_shard(job, decoded, out_dir, self.num_tags, self.features)
        yield job.name


def shard_pipeline(root, jobs_path: str, config: BuildConfig, audio_root: str,
                   num_tags: int):
    """Adds the shard-writing steps to the pipeline `root`."""
    return (root
            | "ReadShardJobs" >> beam.io.ReadFromText(jobs_path)
            | "Spread" >> beam.Reshuffle()
            | "WriteShards" >> beam.ParDo(WriteShardFn(config, audio_root, num_tags)))
