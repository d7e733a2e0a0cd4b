"""Sharded, atomic, resumable, parallel TFRecord writing of a `DatasetPlan`.

Layout of the output folder:
  {split}-{index:04d}-of-{count:04d}.tfrecord   one example per clip
  dataset_info.json                              written last
  .build/fingerprint.json, .build/<shard>.json   resume state

Each shard is written to `<shard>.tmp`, its manifest (clips written, clips
skipped and why) is saved, then the shard is renamed into place: a shard
file that exists is complete. A rerun keeps finished shards and writes the
rest; the result is byte-identical to an uninterrupted build.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import itertools
import math

import numpy as np
from tqdm import tqdm

from tagger import fileio
from tagger.config import BuildConfig, join_path, to_dict
from tagger.datasets.plan import Clip, DatasetPlan
from tagger.errors import UserError
from tagger.parallel import ordered_map
from tagger.records.clip_decoder import DecodedClip, DecodeTask, decode_clip
from tagger.records.info import INFO_FILE

BUILDER_VERSION = "1"
STATE_DIR = ".build"
FINGERPRINT_FILE = "fingerprint.json"


def shard_name(split: str, index: int, count: int) -> str:
    return f"{split}-{index:04d}-of-{count:04d}.tfrecord"


@dataclasses.dataclass(frozen=True)
class ShardJob:
    split: str
    name: str
    clips: tuple  # of Clip


def plan_shards(plan: DatasetPlan, clips_per_shard: int) -> list:
    """Cuts each split's clip list into shards of `clips_per_shard` clips."""
    jobs = []
    for split, clips in plan.splits.items():
        count = max(1, math.ceil(len(clips) / clips_per_shard))
        for i in range(count):
            chunk = clips[i * clips_per_shard:(i + 1) * clips_per_shard]
            jobs.append(ShardJob(split, shard_name(split, i, count), tuple(chunk)))
    return jobs


def build_records(plan: DatasetPlan, config: BuildConfig) -> dict:
    """Writes every split of `plan` as shards under `config.output_dir` and
    returns the dataset_info dict (also saved as dataset_info.json)."""
    build = prepare_build(plan, config)
    if build.pending:
        for job, manifest in _write_shards(build.pending, plan, config):
            build.manifests[job.name] = manifest
    return finish_build(plan, config, build)


@dataclasses.dataclass
class PreparedBuild:
    """The shards of a build and what is already done (see `prepare_build`)."""
    jobs: list  # every ShardJob, in write order
    manifests: dict  # shard name -> manifest of a finished shard, or None
    fingerprint: str

    @property
    def pending(self) -> list:
        return [job for job in self.jobs if self.manifests[job.name] is None]


def prepare_build(plan: DatasetPlan, config: BuildConfig) -> PreparedBuild:
    """Checks the input, prepares the out dir (a build of other settings
    needs `overwrite`; left-over temporary files go) and finds the shards
    still to write. Every builder (local processes, Beam) starts here."""
    if config.clips_per_shard < 1:
        raise UserError(f"--num-audios-per-shard must be at least 1, got "
                        f"{config.clips_per_shard}")
    if not fileio.isdir(plan.audio_root):
        raise UserError(f"audio folder {plan.audio_root!r} does not exist; the data "
                        "dir must hold the mp3/ folder named by the annotations")
    fingerprint = _fingerprint(plan, config)
    _prepare_out_dir(config.output_dir, fingerprint, config.overwrite)
    jobs = plan_shards(plan, config.clips_per_shard)
    manifests = {job.name: load_manifest(config.output_dir, job) for job in jobs}
    return PreparedBuild(jobs, manifests, fingerprint)


def finish_build(plan: DatasetPlan, config: BuildConfig, build: PreparedBuild) -> dict:
    """Writes dataset_info.json from the manifests of every shard (all
    written) and returns it; a build where no clip decoded is an error."""
    out_dir = config.output_dir
    info = _dataset_info(plan, config, build.jobs, build.manifests, build.fingerprint)
    if sum(s["clips"] for s in info["splits"].values()) == 0:
        _remove_outputs(out_dir)
        example = info["skipped"][0] if info["skipped"] else None
        detail = f", e.g. {example['path']}: {example['reason']}" if example else ""
        raise UserError(f"no clip could be decoded ({len(info['skipped'])} skipped"
                        f"{detail}); check the audio folder {plan.audio_root!r}")
    fileio.write_atomic(join_path(out_dir, INFO_FILE),
                        json.dumps(info, indent=2, sort_keys=True) + "\n")
    return info


def _write_shards(jobs, plan: DatasetPlan, config: BuildConfig):
    """Yields (job, manifest) for each job, in order, after its shard is in place."""
    features = feature_transform(config)
    clips = [clip for job in jobs for clip in job.clips]
    # ram:// lives in this process's memory: other processes cannot read it.
    workers = 1 if plan.audio_root.startswith("ram://") else config.workers
    decoded = decode_clips(clips, plan.audio_root, plan.known_broken, config, workers)
    progress = tqdm(total=len(clips), unit="clip", desc="build", disable=not config.progress)
    with progress:
        for job in jobs:
            manifest = write_shard(job, itertools.islice(decoded, len(job.clips)),
                                   config.output_dir, len(plan.tag_names), features,
                                   on_clip=lambda: progress.update(1))
            yield job, manifest


def decode_clips(clips, audio_root: str, known_broken: dict, config: BuildConfig,
                 workers: int = 1):
    """Yields a DecodedClip per clip, in order, decoded by `workers`
    processes; a known-broken clip is not opened and comes with its reason."""
    dtype = config.features.dtype if config.features.kind == "raw" else "float32"
    tasks = (DecodeTask(i, join_path(audio_root, clip.path), config.audio.sample_rate,
                        config.audio.segment_length, dtype)
             for i, clip in enumerate(clips) if clip.path not in known_broken)
    results = ordered_map(decode_clip, tasks, workers)
    for clip in clips:
        if clip.path in known_broken:
            yield DecodedClip(-1, None, known_broken[clip.path])
        else:
            yield next(results)


def write_shard(job: ShardJob, decoded, out_dir: str, num_tags: int, features,
                temp_suffix: str = ".tmp", on_clip=None) -> dict:
    """Writes `job`'s shard from `decoded` (a DecodedClip per clip of the
    job, in order) and returns its manifest: the shard goes to a temporary
    name, the manifest is saved, then the shard is renamed into place.
    `features` maps decoded segments to what the records store."""
    import tensorflow as tf

    path = join_path(out_dir, job.name)
    manifest = {"shard": job.name, "split": job.split, "clip_ids": [],
                "segments": 0, "skipped": []}
    with tf.io.TFRecordWriter(f"{path}{temp_suffix}") as writer:
        for clip, result in zip(job.clips, decoded, strict=True):
            if on_clip is not None:
                on_clip()
            if result.segments is None:
                manifest["skipped"].append({"clip_id": clip.clip_id, "path": clip.path,
                                            "reason": result.skip_reason})
                continue
            segments = features(result.segments)
            writer.write(_serialize(clip, segments, num_tags))
            manifest["clip_ids"].append(clip.clip_id)
            manifest["segments"] += int(segments.shape[0])
    fileio.write_atomic(_manifest_path(out_dir, job.name), json.dumps(manifest))
    fileio.rename(f"{path}{temp_suffix}", path)
    return manifest


def _serialize(clip: Clip, segments: np.ndarray, num_tags: int) -> bytes:
    """One example; a clip without labels (unlabelled split) stores zeros."""
    from tagger.records.schema import serialize_example
    labels = np.zeros(num_tags, np.int64) if clip.labels is None else np.asarray(clip.labels)
    return serialize_example(clip.clip_id, clip.path, labels, segments)


def feature_transform(config: BuildConfig):
    """Segments from the decoder -> what the records store."""
    if config.features.kind == "raw":
        return lambda segments: segments
    from tagger.layers import LogMel

    layer = LogMel(sample_rate=config.audio.sample_rate,
                   **dataclasses.asdict(config.features.logmel))
    return lambda segments: np.asarray(layer(segments), dtype=np.float32)


def segment_shape(config: BuildConfig) -> list:
    """Shape of one stored segment: (segment_length,) or (frames, n_mels)."""
    if config.features.kind == "raw":
        return [config.audio.segment_length]
    mel = config.features.logmel
    return [mel.frames(config.audio.segment_length), mel.n_mels]


def _dataset_info(plan, config, jobs, manifests, fingerprint) -> dict:
    splits, skipped = {}, []
    for split in plan.splits:
        split_jobs = [j for j in jobs if j.split == split]
        split_manifests = [manifests[j.name] for j in split_jobs]
        splits[split] = {
            "clips": sum(len(m["clip_ids"]) for m in split_manifests),
            "segments": sum(m["segments"] for m in split_manifests),
            "shards": [j.name for j in split_jobs],
            "labelled": plan.is_labelled(split),
        }
        skipped += [{"split": split, **s} for m in split_manifests for s in m["skipped"]]
    features = to_dict(config.features)
    if config.features.kind == "raw":
        features["logmel"] = None
    else:
        features["dtype"] = "float32"
    return {
        "name": plan.name,
        "origin": dict(plan.origin),
        "builder_version": BUILDER_VERSION,
        "tag_names": list(plan.tag_names),
        "num_tags": len(plan.tag_names),
        "sample_rate": config.audio.sample_rate,
        "segment_length": config.audio.segment_length,
        "features": features,
        "segment_shape": segment_shape(config),
        "splits": splits,
        "skipped": skipped,
        "notes": dict(plan.notes),
        "build": {"split": config.split, "merge_synonyms": config.merge_synonyms,
                  "top_k": config.top_k, "seed": config.seed,
                  "unlabelled_fraction": config.unlabelled_fraction,
                  "clips_per_shard": config.clips_per_shard},
        "fingerprint": fingerprint,
    }


def _fingerprint(plan: DatasetPlan, config: BuildConfig) -> str:
    """Hash of everything that decides the bytes of the shards."""
    content = {
        "builder_version": BUILDER_VERSION,
        "audio": to_dict(config.audio),
        "features": to_dict(config.features),
        "clips_per_shard": config.clips_per_shard,
        "tag_names": list(plan.tag_names),
        "splits": {s: [[c.clip_id, c.path, None if c.labels is None else list(c.labels)]
                       for c in clips] for s, clips in plan.splits.items()},
        "known_broken": sorted(plan.known_broken),
    }
    if plan.unlabelled:
        content["unlabelled"] = sorted(plan.unlabelled)
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()


def _prepare_out_dir(out_dir: str, fingerprint: str, overwrite: bool) -> None:
    state = join_path(out_dir, STATE_DIR)
    stamp = join_path(state, FINGERPRINT_FILE)
    try:
        previous = _previous_fingerprint(out_dir)
        if previous is not None and previous != fingerprint:
            if not overwrite:
                raise UserError(
                    f"{out_dir!r} holds a build made from other data or settings; "
                    "pass --overwrite to replace it or choose another --out-dir")
            _remove_outputs(out_dir)
        fileio.makedirs(state)
        remove_temporary_files(out_dir)
        fileio.write_atomic(stamp, json.dumps({"fingerprint": fingerprint}))
    except UserError:
        raise
    except Exception as error:  # OSError locally, tf.errors.OpError elsewhere
        raise UserError(f"cannot write to out dir {out_dir!r}: "
                        f"{str(error).splitlines()[0]}") from None


def remove_temporary_files(out_dir: str) -> None:
    """Removes the temporary files of shards whose writing was cut short."""
    for name in fileio.listdir(out_dir):
        if name.endswith(".tmp"):
            fileio.remove(join_path(out_dir, name))


def _previous_fingerprint(out_dir: str):
    for path in (join_path(out_dir, STATE_DIR, FINGERPRINT_FILE),
                 join_path(out_dir, INFO_FILE)):
        if fileio.exists(path):
            return json.loads(fileio.read_text(path)).get("fingerprint")
    return None


def _manifest_path(out_dir: str, shard: str) -> str:
    return join_path(out_dir, STATE_DIR, f"{shard}.json")


def load_manifest(out_dir: str, job: ShardJob):
    """The manifest of a finished shard, or None if the shard must be written."""
    shard = join_path(out_dir, job.name)
    manifest = _manifest_path(out_dir, job.name)
    if fileio.exists(shard) and fileio.exists(manifest):
        return json.loads(fileio.read_text(manifest))
    return None


def _remove_outputs(out_dir: str) -> None:
    """Removes what a build writes (shards, info, state); nothing else."""
    if not fileio.isdir(out_dir):
        return
    for name in fileio.listdir(out_dir):
        if name.endswith((".tfrecord", ".tfrecord.tmp")) or name == INFO_FILE:
            fileio.remove(join_path(out_dir, name))
    state = join_path(out_dir, STATE_DIR)
    if fileio.isdir(state):
        for name in fileio.listdir(state):
            fileio.remove(join_path(state, name))
