"""Decoding only the spans of a file that are scored: seek, decode the
span and what the resampler needs around it, resample, cut.

`SpanReader(path, sample_rate)` opens a file as `tagger.audio` does
(libsndfile, else FFmpeg) and reads `[start, start + count)` of its mono
audio at `sample_rate`: the samples `stream_audio` gives there when it
decodes and resamples the whole file from its start. Neither decoder is
asked for more than the span:

- the span is read at the file's rate from an input frame on soxr's
  grid: frame `k * P` of the file is output sample `k * Q` at
  `sample_rate` (P / Q, the ratio of the two rates in lowest terms), so
  the resampled span falls on the samples of the whole file's;
- `RESAMPLER_CONTEXT` output samples more at each edge (times the
  upsampling factor, where the file's rate is the lower), whose outputs
  are dropped: soxr's filter reads that far on either side of an output
  sample (256 were enough for every ratio tried from 1:16 to 6:1, to
  float32 rounding: tests/test_audio_spans.py);
- libsndfile seeks sample-exactly (WAV, FLAC, Ogg Vorbis and Opus, MP3
  with or without a Xing/LAME header); FFmpeg seeks by time in an MP4/M4A
  and places each decoded frame by its timestamp, decoding from a few
  frames before the span (an AAC frame overlaps the one before it).

What cannot be read this way is `seek_problem`: FFmpeg's raw streams,
whose times after a seek are estimates; a source libsndfile cannot seek
in; a file whose header does not give its length, or gives one past the
file's end (a download cut short): the last frames by the header are
read to check it, or for an MP3 its bytes were checked as it opened
(`mp3_frames`). A `CannotSeekExactly` from `read` (FFmpeg's frames with
a gap) is one too: the caller decodes such a file through. `length` is
the file's length at `sample_rate` as `stream_audio` gives it
(`audio.resampled_length` of the checked `frames`: the header's, or
where the decoder ends them sooner, that; for an MP3 without a length
header, its frames'; FFmpeg may give an AAC file's last frame whole, up
to 1024 samples past it); None where `seek_problem` is set. Only the
spans read are checked for NaN and infinite samples.
"""

from __future__ import annotations

import math
import os

import numpy as np
import soxr

from tagger import fileio
from tagger.audio import (
    MAX_FILE_RATE,
    AudioDecodeError,
    CannotSeekExactly,
    NonFiniteAudioError,
    _finite,
    _first_line,
    _read_remote,
    mono_mix,
    open_regular_file,
    open_source,
    resampled_length,
)

RESAMPLER_CONTEXT = 512  # samples decoded and dropped at each edge of a resampled span


class SpanReader:
    """An audio file opened to read spans of its mono audio at
    `sample_rate` (see the module's docstring); a context manager.
    `file_rate`: the file's own rate; `length`: its samples at
    `sample_rate` by its header, checked (None where `seek_problem` is
    set); `seek_problem`: why spans cannot be read by seeking, or None.
    Raises AudioDecodeError as `read_clip` does for what cannot be opened."""

    def __init__(self, path: str, sample_rate: int):
        self.sample_rate = int(sample_rate)
        self._fd = open_regular_file(path) if fileio.is_local(path) else None
        try:
            data = _read_remote(path, None) if self._fd is None else self._fd
            try:
                self.source = open_source(data)
            except AudioDecodeError:
                raise
            except Exception as error:  # libsndfile reports every failure its own way
                raise AudioDecodeError(f"not decodable audio ({_first_line(error)})") from None
            self.file_rate = int(self.source.samplerate)
            if not 0 < self.file_rate <= MAX_FILE_RATE:
                self.source.__exit__()
                raise AudioDecodeError(f"sample rate {self.file_rate} Hz is out of range")
        except BaseException:
            self._close_fd()
            raise
        frames, self.seek_problem = None, self.source.seek_problem
        if self.seek_problem is None:
            frames, self.seek_problem = self.source.checked_frames()
        self.length = (None if frames is None else
                       resampled_length(frames, self.file_rate, self.sample_rate))
        divisor = math.gcd(self.file_rate, self.sample_rate)
        self._step_in, self._step_out = self.file_rate // divisor, self.sample_rate // divisor
        self._context = RESAMPLER_CONTEXT * max(1, -(-self.sample_rate // self.file_rate))

    def read(self, start: int, count: int) -> np.ndarray:
        """(count,) float32: samples `[start, start + count)` at
        `sample_rate`, `start >= 0`. CannotSeekExactly when the file ends
        before `start + count` plus the resampler's context, or the decoder
        cannot place the span exactly; NonFiniteAudioError for NaN or
        infinite samples; AudioDecodeError for a decoder's failure."""
        if self.file_rate == self.sample_rate:
            mono = self._decoded(start, count)
        else:
            grid = max(0, (start - self._context) // self._step_out)
            first_in, first_out = grid * self._step_in, grid * self._step_out
            last_in = -(-(start + count + self._context) * self.file_rate // self.sample_rate)
            stream = soxr.ResampleStream(self.file_rate, self.sample_rate, 1,
                                         dtype="float32", quality="HQ")
            resampled = stream.resample_chunk(self._decoded(first_in, last_in - first_in),
                                              last=True)
            mono = resampled[start - first_out:start - first_out + count]
            if len(mono) < count:
                raise CannotSeekExactly("the resampler gave fewer samples than the span")
        return np.ascontiguousarray(mono, dtype=np.float32)

    def _decoded(self, frame: int, frames: int) -> np.ndarray:
        """(frames,) mono at the file's rate from `frame` on."""
        try:
            block = self.source.read_at(frame, frames)
        except (AudioDecodeError, CannotSeekExactly):
            raise
        except Exception as error:
            raise AudioDecodeError(f"not decodable audio ({_first_line(error)})") from None
        if len(block) < frames:
            raise CannotSeekExactly(f"the file ends {frames - len(block)} frames before the "
                                    "span does")
        mono = mono_mix(block)
        if not _finite(mono):
            raise NonFiniteAudioError()
        return mono

    def _close_fd(self):
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        try:
            self.source.__exit__()
        finally:
            self._close_fd()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
