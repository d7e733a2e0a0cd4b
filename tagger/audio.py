"""Audio decoding, mono mix-down, resampling and segmentation.

soundfile (libsndfile 1.2: MP3, OGG, FLAC, WAV, ...) decodes; soxr resamples
with its high-quality filter. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import contextlib
import io
import os
import re

import numpy as np
import soundfile
import soxr

from tagger import fileio

INT16_SCALE = 32767.0


class AudioDecodeError(Exception):
    """A file could not be decoded as audio; the message says why."""


def load_audio(path: str, sample_rate: int, quiet: bool = False) -> np.ndarray:
    """Decodes `path` to a mono float32 waveform at `sample_rate`, shape (samples,).

    `quiet` silences the decoder library's own messages on stderr (it writes
    resync notes for damaged MP3s); use it in single-threaded workers only.
    """
    if not fileio.exists(path):
        raise AudioDecodeError("file not found")
    try:
        data = fileio.read_bytes(path)
    except OSError as error:
        raise AudioDecodeError(f"cannot read: {_first_line(error)}") from None
    if not data:
        raise AudioDecodeError("empty file (0 bytes)")
    try:
        with _silenced_stderr() if quiet else contextlib.nullcontext():
            audio, file_rate = soundfile.read(
                io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as error:  # libsndfile reports every failure its own way
        raise AudioDecodeError(f"not decodable audio ({_first_line(error)})") from None
    if audio.shape[0] == 0:
        raise AudioDecodeError("no audio samples")
    return resample(audio.mean(axis=1), file_rate, sample_rate)


def stream_audio(path: str, sample_rate: int, block_seconds: float = 30.0):
    """Yields a file's audio as consecutive mono float32 blocks at
    `sample_rate`, about `block_seconds` each, never holding the whole file
    (soundfile block reads + soxr's streaming resampler). Raises
    AudioDecodeError for a missing or undecodable file."""
    if not fileio.exists(path):
        raise AudioDecodeError("file not found")
    try:
        handle = soundfile.SoundFile(path if fileio.is_local(path)
                                     else io.BytesIO(fileio.read_bytes(path)))
    except Exception as error:
        raise AudioDecodeError(f"not decodable audio ({_first_line(error)})") from None
    with handle:
        stream = None
        if handle.samplerate != sample_rate:
            stream = soxr.ResampleStream(handle.samplerate, sample_rate, 1,
                                         dtype="float32", quality="HQ")
        frames = max(1, int(block_seconds * handle.samplerate))
        try:
            # read(), not blocks(): blocks() yields its whole buffer even when
            # fewer frames were decoded than the header promised (a truncated
            # MP3), i.e. uninitialised memory; read() returns what was decoded.
            while len(block := handle.read(frames, dtype="float32", always_2d=True)):
                mono = block.mean(axis=1)
                out = stream.resample_chunk(mono) if stream else mono
                if len(out):
                    yield out
        except AudioDecodeError:
            raise
        except Exception as error:
            raise AudioDecodeError(f"not decodable audio ({_first_line(error)})") from None
        if stream is not None:
            tail = stream.resample_chunk(np.zeros(0, np.float32), last=True)
            if len(tail):
                yield tail


def audio_windows(path: str, sample_rate: int, window: int, hop: int | None = None,
                  block_seconds: float = 30.0):
    """Yields (start_sample, window) pairs, `window` samples each, every `hop`
    samples (default: no overlap), streaming through the file. The last
    partial window is dropped unless the file is shorter than one window,
    in which case that one window is zero-padded. The generator returns
    (`StopIteration.value`, passed on by `yield from`) the file's length in
    samples at `sample_rate`."""
    hop = hop or window
    buffer = np.zeros(0, np.float32)
    offset = 0  # sample index of buffer[0]
    start = 0
    total = 0
    for block in stream_audio(path, sample_rate, block_seconds):
        total += len(block)
        buffer = np.concatenate([buffer, block])
        while start + window <= offset + len(buffer):
            begin = start - offset
            yield start, buffer[begin:begin + window]
            start += hop
        drop = min(start - offset, len(buffer))
        buffer, offset = buffer[drop:], offset + drop
    if total == 0:
        raise AudioDecodeError("no audio samples")
    if total < window:
        padded = np.zeros(window, np.float32)
        padded[:total] = buffer[:total]  # nothing was yielded: the buffer is the file
        yield 0, padded
    return total


def resample(waveform: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """Resamples a mono waveform (samples,) with soxr's high-quality filter."""
    if source_rate == target_rate:
        return np.ascontiguousarray(waveform, dtype=np.float32)
    return soxr.resample(waveform, source_rate, target_rate, quality="HQ").astype(
        np.float32, copy=False)


def segment(waveform: np.ndarray, segment_length: int) -> np.ndarray:
    """Cuts (samples,) into non-overlapping (segments, segment_length); the tail is dropped."""
    count = len(waveform) // segment_length
    return waveform[:count * segment_length].reshape(count, segment_length)


def to_int16(waveform: np.ndarray) -> np.ndarray:
    """float in [-1, 1] -> int16 (values outside are clipped)."""
    return np.round(np.clip(waveform, -1.0, 1.0) * INT16_SCALE).astype(np.int16)


def from_int16(pcm: np.ndarray) -> np.ndarray:
    return pcm.astype(np.float32) / INT16_SCALE


@contextlib.contextmanager
def _silenced_stderr():
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _first_line(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    text = re.sub(r"Error opening <[^>]*>: ", "", text.splitlines()[0])
    return text.strip().rstrip(".")
