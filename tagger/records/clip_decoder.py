"""Decoding one clip into segments; runs in worker processes (no TensorFlow)."""

from __future__ import annotations

import dataclasses

import numpy as np

from tagger import audio


@dataclasses.dataclass(frozen=True)
class DecodeTask:
    index: int  # position in the build order
    audio_path: str
    sample_rate: int
    segment_length: int
    dtype: str  # "int16" | "float32"


@dataclasses.dataclass(frozen=True)
class DecodedClip:
    index: int
    segments: np.ndarray | None  # (segments, segment_length) as dtype, or None
    skip_reason: str | None = None


def decode_clip(task: DecodeTask) -> DecodedClip:
    """Decode, mono, resample, cut; a clip shorter than one segment or an
    undecodable file comes back with `skip_reason` set."""
    try:
        waveform = audio.load_audio(task.audio_path, task.sample_rate, quiet=True)
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
    return DecodedClip(task.index, segments)
