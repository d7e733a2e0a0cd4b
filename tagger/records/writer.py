"""Sharded, atomic, resumable, parallel TFRecord writing of a `DatasetPlan`.

Layout of the output folder:
  {split}-{index:04d}-of-{count:04d}.tfrecord   one example per clip
  {split}-{index:04d}-of-{count:04d}.framing     its framing index (`shard_index`)
  dataset_info.json                              written last
  .build/fingerprint.json, .build/<shard>.json   resume state
  .build/lock.json                               the running build (pid, host)

Each shard is written under a fresh temporary name beside it
(`fileio.temporary_path`) and renamed into place, then its manifest (clips
written, clips skipped and why, and the shard's size, modification time
and framing digest) is saved: a shard file that exists is complete, and
one with a manifest is finished. A rerun removes the temporaries of shards
cut short, keeps finished shards that are still what their manifests
recorded (`check_kept_shards`: one that differs is named and written
again) and writes the rest; the result is byte-identical to an
uninterrupted build.

The shards are TFRecord files, byte for byte as tf.io.TFRecordWriter writes
them (`tagger.records.tfrecord`). Raw records come serialized and framed
from the decoding workers, through memory shared with them; this process
only appends them, in order.

Only one build may write into a folder at a time (`build_lock`); a build
never replaces files it did not write (a foreign dataset_info.json or
shards) without `overwrite`, and `overwrite` removes only what a build
writes. A failed write (a full disk) removes its partial file and says what
to free; the rerun resumes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import itertools
import json
import math
import re
import sys

import numpy as np
from tqdm import tqdm

from tagger import fileio
from tagger.config import BuildConfig, join_path, to_dict
from tagger.errors import UserError
from tagger.folder_lock import folder_lock
from tagger.parallel import WorkerPool, ordered_map
from tagger.records.clip_decoder import DecodedClip, DecodeTask, decode_clip, worker_died
from tagger.records.info import INFO_FILE, DatasetInfo
from tagger.records.plan import Clip, DatasetPlan
from tagger.records.shard_index import indexed_shard, read_index, walked, write_index
from tagger.records.shard_state import STATE_KEYS, ShardState, file_stat, shard_state
from tagger.records.tfrecord import DamagedRecords, framing

# the builder's version, in a build's fingerprint: raised where some files
# decode differently (2: the MP3s libsndfile would cut short are FFmpeg's,
# `audio.open_source`), so that a kept build of another is not resumed
BUILDER_VERSION = "2"
STATE_DIR = ".build"
FINGERPRINT_FILE = "fingerprint.json"
LOCK_FILE = "lock.json"
SHARD_PATTERN = re.compile(r"^[A-Za-z0-9_]+-\d{4}-of-\d{4}\.tfrecord$")
SHARD_TEMP_PATTERN = re.compile(r"^[A-Za-z0-9_]+-\d{4}-of-\d{4}\.tfrecord\S*\.tmp$")  # older form
OTHER_SHARD = "its records are not the ones the build wrote (their lengths and CRC32Cs differ)"


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
            if isinstance(chunk, list):
                chunk = tuple(chunk)
            # a column-stored split (plan.ClipColumns) slices into a view:
            # no Clip objects exist until a shard is written
            jobs.append(ShardJob(split, shard_name(split, i, count), chunk))
    return jobs


def start_workers(config: BuildConfig):
    """The decoding processes of a build, started now so that their start-up
    overlaps reading the annotations (a context manager; None where the
    build decodes in this process: one worker, or ram:// data)."""
    if config.workers <= 1 or config.data_dir.startswith("ram://"):
        return contextlib.nullcontext()
    return WorkerPool(decode_clip, config.workers)


@dataclasses.dataclass(frozen=True)
class LocalRun:
    """Writes a plan with this machine's processes (`config.workers`), started
    while the plan is made; `tagger.beam.build.BeamRun` is the other runner."""

    def write(self, make_plan, config: BuildConfig) -> DatasetInfo:
        with start_workers(config) as pool:
            return build_records(make_plan(), config, pool=pool)


def build_records(plan: DatasetPlan, config: BuildConfig, pool=None) -> DatasetInfo:
    """Writes every split of `plan` as shards under `config.output_dir` and
    returns its DatasetInfo (also saved as dataset_info.json). A
    build that fails leaves no folder behind that it created empty."""
    check_input(plan, config)
    with writing_out_dir(config.output_dir):
        build = prepare_build(plan, config)
        if build.pending:
            for job, manifest in _write_shards(build.pending, plan, config, pool):
                build.manifests[job.name] = manifest
        return finish_build(plan, config, build)


@contextlib.contextmanager
def writing_out_dir(out_dir: str):
    """Holds the out dir's lock (`build_lock`) while a build writes into
    it (every builder, local or Beam); a build that fails leaves no folder
    behind that it created empty."""
    created = _missing_folders(out_dir)
    try:
        with build_lock(out_dir):
            yield
    except BaseException:
        _remove_empty_folders(out_dir, created)
        raise


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
    still to write: those not finished, and finished ones that differ from
    their manifests (`check_kept_shards`, a line each on stderr). Every
    builder (local processes, Beam) starts here."""
    check_input(plan, config)
    fingerprint = _fingerprint(plan, config)
    _prepare_out_dir(config.output_dir, fingerprint, config.overwrite)
    jobs = plan_shards(plan, config.clips_per_shard)
    manifests = {job.name: load_manifest(config.output_dir, job) for job in jobs}
    check_kept_shards(config.output_dir, manifests, config.verify, config.progress)
    return PreparedBuild(jobs, manifests, fingerprint)


def check_kept_shards(out_dir: str, manifests: dict, verify: bool = False,
                      progress: bool = False, log=None) -> None:
    """Checks each finished shard (a manifest in `manifests`, shard name ->
    manifest or None) against its manifest (`kept_shard_problem`); one that
    differs gets one line to `log` (default stderr) and loses its manifest
    (None in `manifests` too): it is written again. A count follows where
    any differ, or with `verify` (every byte read)."""
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    kept = [name for name, manifest in manifests.items() if manifest is not None]
    differ = 0
    for name in tqdm(kept, unit="shard", desc="verify", disable=not (verify and progress)):
        problem = kept_shard_problem(out_dir, name, manifests[name], verify)
        if problem:
            log(f"{fileio.path_text(join_path(out_dir, name))}: {problem}; writing it again")
            fileio.remove(_manifest_path(out_dir, name))
            manifests[name] = None
            differ += 1
    if differ or verify:
        log(f"{differ} of {len(kept)} finished shard(s) differ from what the build wrote"
            + (f" (--verify: every byte of the {len(kept)} read)" if verify else "")
            + ("; writing them again" if differ else ""))


def kept_shard_problem(out_dir: str, name: str, manifest: dict,
                       verify: bool = False) -> str | None:
    """How the finished shard `name` differs from what its manifest
    recorded (size, framing digest), or None. The shard is not read where
    its size differs, nor where its size and mtime are the ones recorded
    (unless `verify`); else every byte is read, each record's CRC32Cs
    checked. A shard read and found whole has its manifest brought up to
    date (its new mtime, a digest an older manifest lacked)."""
    path = join_path(out_dir, name)
    stat = file_stat(path)
    if stat and "size" in manifest and stat[0] != manifest["size"]:
        return f"it holds {stat[0]} bytes, the build wrote {manifest['size']}"
    known = {key: manifest[key] for key in STATE_KEYS if key in manifest}
    state = shard_state(path, known if len(known) == len(STATE_KEYS) else None,
                        data=True, verify=verify)
    if state is None:
        return "the shard is gone"
    if state.problem:
        return state.problem
    if manifest.get("framing_sha256", state.framing_sha256) != state.framing_sha256:
        return OTHER_SHARD
    if state.to_json() != known:
        manifest.update(state.to_json())
        fileio.write_atomic(_manifest_path(out_dir, name), json.dumps(manifest))
    return _index_problem(path, state.framing_sha256)


def _index_problem(path: str, digest: str) -> str | None:
    """Writes the framing index of the kept shard at `path` where it has
    none that holds the framing whose SHA-256 is `digest` (a shard written
    before the build wrote indexes): from its framing, read. What is wrong
    with the shard where that reading finds it other or damaged, else None."""
    framing = read_index(path)
    if framing is not None and hashlib.sha256(framing).hexdigest() == digest:
        return None
    try:
        index = walked(path)
    except DamagedRecords as error:
        return str(error)
    if index.digest != digest:
        return OTHER_SHARD
    write_index(path, index.framing)
    return None


def check_input(plan: DatasetPlan, config: BuildConfig) -> None:
    """The checks made before anything is written."""
    if config.clips_per_shard < 1:
        raise UserError(f"--num-audios-per-shard must be at least 1, got "
                        f"{config.clips_per_shard}")
    if not fileio.isdir(plan.audio_root):
        raise UserError(f"audio folder {plan.audio_root!r} does not exist; the data "
                        "dir must hold the mp3/ folder named by the annotations")
    if not any(plan.splits.values()):
        raise UserError(f"the {plan.name} plan holds no clip in any split; nothing to build")


def finish_build(plan: DatasetPlan, config: BuildConfig, build: PreparedBuild) -> DatasetInfo:
    """Writes dataset_info.json from the manifests of every shard (all
    written) and returns it; a build where no clip decoded is an error."""
    out_dir = config.output_dir
    info = _dataset_info(plan, config, build.jobs, build.manifests, build.fingerprint)
    if sum(s["clips"] for s in info.splits.values()) == 0:
        _remove_outputs(out_dir)
        example = info.skipped[0] if info.skipped else None
        detail = f", e.g. {example['path']}: {example['reason']}" if example else ""
        raise UserError(f"no clip could be decoded ({len(info.skipped)} skipped"
                        f"{detail}); check the audio folder {plan.audio_root!r}")
    try:
        fileio.write_atomic(join_path(out_dir, INFO_FILE),
                            json.dumps(info.to_json(), indent=2, sort_keys=True) + "\n")
    except Exception as error:
        raise _write_error(join_path(out_dir, INFO_FILE), error, 1 << 20) from None
    return info


def _write_shards(jobs, plan: DatasetPlan, config: BuildConfig, pool=None):
    """Yields (job, manifest) for each job, in order, after its shard is in place."""
    features = feature_transform(config)
    clips = _JobClips(jobs)
    # ram:// lives in this process's memory: other processes cannot read it.
    in_process = plan.audio_root.startswith("ram://")
    workers = 1 if in_process else config.workers
    decoded = decode_clips(clips, plan.audio_root, plan.known_broken, config, workers,
                           num_tags=len(plan.tag_names), pool=None if in_process else pool)
    progress = tqdm(total=len(clips), unit="clip", desc="build", disable=not config.progress)
    with progress:
        for job in jobs:
            manifest = write_shard(job, itertools.islice(decoded, len(job.clips)),
                                   config.output_dir, len(plan.tag_names), features,
                                   on_clip=lambda: progress.update(1))
            yield job, manifest


class _JobClips:
    """The clips of `jobs` in order, iterable more than once, never all in a list."""

    def __init__(self, jobs):
        self.jobs = jobs

    def __iter__(self):
        return itertools.chain.from_iterable(job.clips for job in self.jobs)

    def __len__(self):
        return sum(len(job.clips) for job in self.jobs)


def decode_clips(clips, audio_root: str, known_broken: dict, config: BuildConfig,
                 workers: int = 1, num_tags: int | None = None, pool=None):
    """Yields a DecodedClip per clip, in order, decoded by `workers`
    processes; a known-broken clip is not opened and comes with its reason.
    Raw features are serialized and framed by the workers too (the record
    comes back ready to append, valid until the next clip is asked for);
    log-mel segments are computed here, in TensorFlow."""
    raw = config.features.kind == "raw"
    dtype = config.features.dtype if raw else "float32"
    if num_tags is None:
        labelled = next((c.labels for c in clips if c.labels is not None), None)
        num_tags = None if labelled is None else len(labelled)
    raw = raw and num_tags is not None  # else the caller serializes

    def task(index, clip):
        labels = None
        if raw:
            labels = (0,) * num_tags if clip.labels is None else tuple(clip.labels)
        return DecodeTask(index, join_path(audio_root, clip.path), config.audio.sample_rate,
                          config.audio.segment_length, dtype, config.max_bytes,
                          config.max_seconds, clip.clip_id if raw else None,
                          clip.path if raw else None, labels)

    tasks = (task(i, clip) for i, clip in enumerate(clips) if clip.path not in known_broken)
    results = ordered_map(decode_clip, tasks, workers, on_failure=worker_died, pool=pool)
    for clip in clips:
        if clip.path in known_broken:
            yield DecodedClip(-1, None, known_broken[clip.path])
        else:
            yield next(results)


def write_shard(job: ShardJob, decoded, out_dir: str, num_tags: int, features,
                on_clip=None) -> dict:
    """Writes `job`'s shard from `decoded` (a DecodedClip per clip of the
    job, in order) and returns its manifest (its clips, segments, skipped
    and cut clips, and the shard's state: its size, mtime and the SHA-256
    of its records' framing, which holds each record's length and CRC32C:
    `tfrecord.framing_sha256`): the shard goes to a fresh temporary name
    (`fileio.temporary_path`: one per attempt, so Beam's retries of a
    shard never share one) and is renamed into place, then its framing
    index is written (`shard_index`) and the manifest is saved.
    `features` maps decoded segments to what the records store. A failed
    write (a full disk) removes the partial shard and raises a UserError
    saying what to free; the rerun resumes at this shard."""
    path = join_path(out_dir, job.name)
    temp = fileio.temporary_path(path)
    manifest = {"shard": job.name, "split": job.split, "clip_ids": [],
                "segments": 0, "skipped": [], "cut": []}
    written = 0
    framings = bytearray()  # each record's framing, as it is written: the shard's index
    shard = contextlib.ExitStack()  # holds the open temporary file

    def write_failed(error):
        """Closes and removes the partial shard; the UserError saying what to free."""
        shard.close()
        fileio.remove_quietly(temp)
        per_clip = written / max(1, len(manifest["clip_ids"])) or 1 << 20
        return _write_error(temp, error, per_clip * len(job.clips))

    with shard:
        with fileio.failed_writes_as(write_failed):
            writer = shard.enter_context(_open_record_writer(temp))
        for clip, result in zip(job.clips, decoded, strict=True):
            if on_clip is not None:
                on_clip()
            if result.skipped:
                manifest["skipped"].append({"clip_id": clip.clip_id,
                                            "path": fileio.path_text(clip.path),
                                            "reason": result.skip_reason})
                continue
            if result.record is not None:  # raw features: framed by the worker
                record, num_segments = result.record.parts, result.num_segments
            else:
                segments = features(result.segments)
                record, num_segments = _record(clip, segments, num_tags), len(segments)
            with fileio.failed_writes_as(write_failed):
                for part in record:
                    writer.write(part)
            framings += framing(record)
            written += sum(memoryview(part).nbytes for part in record)
            manifest["clip_ids"].append(clip.clip_id)
            manifest["segments"] += int(num_segments)
            if result.full_seconds is not None:
                manifest["cut"].append({"clip_id": clip.clip_id,
                                        "path": fileio.path_text(clip.path),
                                        "seconds": round(result.full_seconds, 2)})
        with fileio.failed_writes_as(write_failed):
            shard.close()  # flushes the shard: a full disk may show only here
    with fileio.failed_writes_as(write_failed):
        fileio.rename(temp, path)
        write_index(path, bytes(framings))
        manifest.update(ShardState(*file_stat(path),
                                   hashlib.sha256(framings).hexdigest()).to_json())
        fileio.write_atomic(_manifest_path(out_dir, job.name), json.dumps(manifest))
    return manifest


def _open_record_writer(path: str):
    """A new TFRecord file at `path` to append framed records to (a context
    manager with .write(bytes-like))."""
    from tagger.records.tfrecord import open_record_file

    return open_record_file(path)


def _write_error(path: str, error: Exception, needed_bytes: float) -> UserError:
    """One line for a failed write: what failed, why, what to free, how to go on."""
    text = str(error)
    if "No space left" in text and not isinstance(error, OSError):  # TensorFlow's wording
        error = OSError(errno.ENOSPC, text)
    reason = fileio.describe_os_error(error)
    if getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
        reason = (f"the disk is full: free at least {max(needed_bytes, 1 << 20) / 2**20:.0f} MB "
                  "there (more for the shards still to come) or choose another --out-dir")
    return UserError(f"cannot write {path!r}: {reason}; then run the same command again: "
                     "finished shards are kept")


def _record(clip: Clip, segments: np.ndarray, num_tags: int) -> tuple:
    """One example, framed (its parts in order); a clip without labels
    (unlabelled split) stores zeros."""
    from tagger.records.schema import example_parts
    from tagger.records.tfrecord import frame

    labels = np.zeros(num_tags, np.int64) if clip.labels is None else np.asarray(clip.labels)
    return frame(example_parts(clip.clip_id, clip.path, labels, segments))


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


def _dataset_info(plan, config, jobs, manifests, fingerprint) -> DatasetInfo:
    splits, skipped, cut = {}, [], []
    for split in plan.splits:
        split_jobs = [j for j in jobs if j.split == split]
        split_manifests = [manifests[j.name] for j in split_jobs]
        splits[split] = {
            "clips": sum(len(m["clip_ids"]) for m in split_manifests),
            "segments": sum(m["segments"] for m in split_manifests),
            "shards": [j.name for j in split_jobs],
            "shard_framing_sha256": [m["framing_sha256"] for m in split_manifests],
            "labelled": plan.is_labelled(split),
        }
        skipped += [{"split": split, **s} for m in split_manifests for s in m["skipped"]]
        cut += [{"split": split, **c} for m in split_manifests for c in m.get("cut", [])]
    features = to_dict(config.features)
    if config.features.kind == "raw":
        features["logmel"] = None
    else:
        features["dtype"] = "float32"
    return DatasetInfo(
        name=plan.name, origin=dict(plan.origin), builder_version=BUILDER_VERSION,
        tag_names=plan.tag_names, num_tags=len(plan.tag_names),
        sample_rate=config.audio.sample_rate, segment_length=config.audio.segment_length,
        features=features, segment_shape=segment_shape(config), splits=splits,
        skipped=skipped, cut=cut, max_seconds=config.max_seconds, notes=dict(plan.notes),
        build={**plan.settings, "clips_per_shard": config.clips_per_shard,
               "max_file_mb": config.max_file_mb, "max_seconds": config.max_seconds},
        fingerprint=fingerprint)


def _fingerprint(plan: DatasetPlan, config: BuildConfig) -> str:
    """Hash of everything that decides the bytes of the shards.

    The hash is of `json.dumps(content, sort_keys=True)` where content
    holds every clip as [clip_id, path, labels]; the clips are hashed one
    at a time (the same bytes), so a million-clip plan needs no million-item
    JSON document.
    """
    marker = "\x00splits\x00"
    content = {
        "builder_version": BUILDER_VERSION,
        "audio": to_dict(config.audio),
        "features": to_dict(config.features),
        "clips_per_shard": config.clips_per_shard,
        "tag_names": list(plan.tag_names),
        "splits": marker,
        "known_broken": sorted(plan.known_broken),
        "max_file_mb": config.max_file_mb,
        "max_seconds": config.max_seconds,
    }
    if plan.unlabelled:
        content["unlabelled"] = sorted(plan.unlabelled)
    head, tail = json.dumps(content, sort_keys=True).split(json.dumps(marker))
    digest = hashlib.sha256(head.encode())
    digest.update(b"{")
    for n, split in enumerate(sorted(plan.splits)):
        digest.update(f"{', ' if n else ''}{json.dumps(split)}: [".encode())
        for k, c in enumerate(plan.splits[split]):
            labels = None if c.labels is None else [int(v) for v in c.labels]
            digest.update(((", " if k else "") + json.dumps([c.clip_id, c.path, labels])).encode())
        digest.update(b"]")
    digest.update(b"}")
    digest.update(tail.encode())
    return digest.hexdigest()


def _prepare_out_dir(out_dir: str, fingerprint: str, overwrite: bool) -> None:
    state = join_path(out_dir, STATE_DIR)
    stamp = join_path(state, FINGERPRINT_FILE)
    try:
        previous, version = _previous_build(out_dir)
        foreign = _foreign_outputs(out_dir) if previous is None else []
        if (previous is not None and previous != fingerprint) or foreign:
            if not overwrite:
                what = (f"files this builder did not write ({', '.join(foreign[:3])})"
                        if foreign else "a build made from other data or settings")
                if version not in (None, BUILDER_VERSION):
                    what = (f"a build made by version {version} of the builder (this is "
                            f"version {BUILDER_VERSION}: its records may differ)")
                raise UserError(f"{out_dir!r} holds {what}; pass --overwrite to replace "
                                "them or choose another --out-dir")
            _remove_outputs(out_dir)
        fileio.makedirs(state)
        remove_temporary_files(out_dir)
        fileio.write_atomic(stamp, json.dumps({"fingerprint": fingerprint,
                                               "builder_version": BUILDER_VERSION}))
    except UserError:
        raise
    except Exception as error:  # OSError locally, tf.errors.OpError elsewhere
        raise UserError(f"cannot write to out dir {out_dir!r}: "
                        f"{str(error).splitlines()[0]}") from None


def remove_temporary_files(out_dir: str) -> None:
    """Removes the temporary files of shards (and their indexes) whose
    writing was cut short: `fileio.temporary_path` names, and the
    `<shard>.tmp` and `<shard>.<32 hex>.tmp` of earlier builds and of the
    Beam pipeline."""
    for name in fileio.listdir(out_dir):
        written = fileio.temporary_of(name) or (
            name.endswith(".tmp") and re.sub(r"(\.[0-9a-f]{32})?\.tmp$", "", name))
        if written and SHARD_PATTERN.match(indexed_shard(written)):
            fileio.remove(join_path(out_dir, name))


def _previous_build(out_dir: str):
    """(fingerprint, builder version) of the build in `out_dir`, from its
    resume state or its dataset_info.json: (None, None) where no build of
    ours is found, the version None where it was not recorded."""
    for path in (join_path(out_dir, STATE_DIR, FINGERPRINT_FILE),
                 join_path(out_dir, INFO_FILE)):
        if fileio.exists(path):
            try:
                data = json.loads(fileio.read_text(path))
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(data, dict) and isinstance(data.get("fingerprint"), str):
                version = data.get("builder_version")
                return data["fingerprint"], version if isinstance(version, str) else None
    return None, None


def _foreign_outputs(out_dir: str) -> list:
    """Files in `out_dir` a build would write over (dataset_info.json,
    shards) that no build of ours wrote."""
    if not fileio.isdir(out_dir):
        return []
    return [name for name in fileio.listdir(out_dir)
            if name == INFO_FILE or SHARD_PATTERN.match(name)]


def _manifest_path(out_dir: str, shard: str) -> str:
    return join_path(out_dir, STATE_DIR, f"{shard}.json")


def load_manifest(out_dir: str, job: ShardJob):
    """The manifest of a finished shard, or None if the shard must be
    written. A manifest that is not a JSON object (damaged since the build
    wrote it) gets one line on stderr and is removed: its shard is written
    again."""
    shard = join_path(out_dir, job.name)
    manifest = _manifest_path(out_dir, job.name)
    if not (fileio.exists(shard) and fileio.exists(manifest)):
        return None
    try:
        loaded = json.loads(fileio.read_text(manifest))
    except (ValueError, UnicodeDecodeError):
        loaded = None
    if isinstance(loaded, dict):
        return loaded
    print(f"{fileio.path_text(manifest)}: not the manifest the build wrote (not a JSON "
          f"object); writing {job.name} again", file=sys.stderr, flush=True)
    fileio.remove(manifest)
    return None


def _remove_outputs(out_dir: str) -> None:
    """Removes what a build writes (shards and their indexes, info, resume
    state); nothing else: other files in the folder (and the running
    build's lock) stay."""
    if not fileio.isdir(out_dir):
        return
    for name in fileio.listdir(out_dir):
        written = fileio.temporary_of(name) or name
        shard = SHARD_PATTERN.match(indexed_shard(written))
        if shard or SHARD_TEMP_PATTERN.match(name) or INFO_FILE in (
                written, name.removesuffix(".tmp")):
            fileio.remove(join_path(out_dir, name))
    state = join_path(out_dir, STATE_DIR)
    if fileio.isdir(state):
        for name in fileio.listdir(state):
            name_written = fileio.temporary_of(name) or name.removesuffix(".tmp")
            if FINGERPRINT_FILE == name_written or SHARD_PATTERN.match(
                    name_written.removesuffix(".json")):
                fileio.remove(join_path(state, name))


def _missing_folders(path: str) -> list:
    """`path` and those of its parents that do not exist yet, deepest first."""
    missing = []
    path = path.rstrip("/")
    while path and not fileio.exists(path):
        missing.append(path)
        parent = path.rsplit("/", 1)[0] if "/" in path else ""
        if parent == path or parent.endswith(":/") or parent.endswith(":"):
            break
        path = parent
    return missing


def _remove_empty_folders(out_dir: str, created: list) -> None:
    """Removes the state folder and the folders in `created` where empty."""
    for folder in [join_path(out_dir, STATE_DIR), *created]:
        try:
            if fileio.isdir(folder) and not fileio.listdir(folder):
                fileio.rmdir(folder)
        except Exception:  # leaving an empty folder is harmless
            pass


@contextlib.contextmanager
def build_lock(out_dir: str, log=None):
    """Holds `<out_dir>/.build/lock.json` (pid, host, start time) while a
    build writes into `out_dir` (`tagger.folder_lock`): a second build
    refuses in one line naming the owner; a lock left by a dead process on
    this host is taken over, with a line to `log` (default stderr)."""
    with folder_lock(join_path(out_dir, STATE_DIR, LOCK_FILE), out_dir, "build",
                     "choose another --out-dir", log, label="out dir"):
        yield
