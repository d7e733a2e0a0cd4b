"""Decoding one clip into segments (and, for raw features, its framed
TFRecord record, ready to append to a shard); runs in worker processes (no
TensorFlow)."""

from __future__ import annotations

import dataclasses

import numpy as np

from tagger import audio
from tagger.parallel import Chunks
from tagger.records.schema import example_parts
from tagger.records.tfrecord import frame


@dataclasses.dataclass(frozen=True)
class DecodeTask:
    index: int  # position in the build order
    audio_path: str
    sample_rate: int
    segment_length: int
    dtype: str  # "int16" | "float32"
    max_bytes: int | None = None  # larger files are skipped
    max_seconds: float | None = None  # longer clips are cut here
    # Set to make the clip's record here (raw features): the clip's id, its
    # path relative to the audio root and its multi-hot labels.
    clip_id: int | None = None
    clip_path: str | None = None
    labels: tuple | None = None


@dataclasses.dataclass(frozen=True)
class DecodedClip:
    index: int
    segments: np.ndarray | None  # (segments, segment_length) as dtype, or None
    skip_reason: str | None = None
    full_seconds: float | None = None  # set when the clip was cut at max_seconds
    # the example serialized and framed as a TFRecord record (its bytes in
    # order), when the task asked for it
    record: Chunks | None = None
    num_segments: int = 0

    @property
    def skipped(self) -> bool:
        return self.skip_reason is not None


def decode_clip(task: DecodeTask) -> DecodedClip:
    """Decode, mono, resample, cut, convert to the storage dtype and, when
    the task names its clip, serialize and frame its record (then `segments`
    is not kept: the record's parts view the converted array, uncopied). A
    clip shorter than one segment, a file that is not a regular file or is
    too large, an undecodable file or one with NaN/Inf samples comes back
    with `skip_reason` set."""
    try:
        waveform, full_seconds = audio.read_clip(
            task.audio_path, task.sample_rate, quiet=True, max_bytes=task.max_bytes,
            max_seconds=task.max_seconds)
    except audio.AudioDecodeError as error:
        return DecodedClip(task.index, None, str(error))
    segments = audio.segment(waveform, task.segment_length)
    if len(segments) == 0:
        seconds = len(waveform) / task.sample_rate
        needed = task.segment_length / task.sample_rate
        return DecodedClip(task.index, None,
                           f"too short ({seconds:.2f} s < one {needed:.2f} s segment)")
    if task.dtype == "int16":
        segments = audio.to_int16(segments)
    else:
        segments = np.clip(segments, -1.0, 1.0).astype(np.float32)
    if task.clip_id is None:
        return DecodedClip(task.index, segments, full_seconds=full_seconds,
                           num_segments=len(segments))
    record = Chunks(frame(example_parts(task.clip_id, task.clip_path,
                                        np.asarray(task.labels), segments)))
    return DecodedClip(task.index, None, full_seconds=full_seconds, record=record,
                       num_segments=len(segments))


def worker_died(task: DecodeTask, reason: str) -> DecodedClip:
    """The result for a clip whose decoding process died twice (see
    `tagger.parallel.ordered_map`): skipped, with the reason."""
    return DecodedClip(task.index, None, f"the decoding process died on it twice ({reason})")
