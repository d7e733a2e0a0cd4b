"""The input side of every model family, apart from its backbone: a
`Preprocessor` per family (as keras-hub pairs one with each backbone) holds
its window, sample rate and front end and builds the model's input.

A raw-waveform family (`logmel=None`) reads `waveform`, `(batch, samples)`.
A log-mel family takes either raw waveforms or precomputed log-mel frames:

- `input_kind="raw"`: input `waveform`, `(batch, samples)` float32 at
  `sample_rate`, followed by a `LogMel` layer named `log_mel` that cuts the
  window into segments (the records' unit) and transforms each on its own;
- `input_kind="logmel"`: input named `log_mel`, `(batch, frames, n_mels)`,
  exactly what that `LogMel` layer produces (records written with
  `--features logmel`).

Everything after `log_mel` is the same graph with the same layer names, so
`logmel_model.set_weights(raw_model.get_weights())` (the front end has no
weights) or `load_weights` moves a trained model between the two kinds, and
both give the same predictions for the same audio.

The window is `segments` consecutive segments of `segment_length` samples
(`SEGMENT_LENGTH`, 59049, unless the paper read another unit: FCN's 29 s at
16 kHz; the records then hold segments of that length, `build_mtt.py
--segment-length`), or `input_length` samples (a multiple of the segment),
or, for log-mel input only, `num_frames` frames.

`stft_over` says over what the STFT runs. "segment" (the default, what
every model trained here uses): each segment on its own, as the records
hold them, `segments * (1 + segment_length // hop)` frames. "window": one
centred STFT over the whole window, `1 + samples // hop` frames, as an
original that took its whole input crop through one spectrogram computed
it (the converted Music Tagging Transformer). The two agree on the first
segment; after it the frames differ (59049 samples are not a whole number
of hops, so the frame grids part, and the per-segment frames pad at each
boundary). A "window" model does not fit log-mel records (`--features
logmel` stores per-segment frames), only raw ones.
"""

from __future__ import annotations

import dataclasses
import numbers

from tagger.config import SEGMENT_LENGTH, AudioConfig, LogMelConfig
from tagger.models.lazy import keras, layers

INPUT_KINDS = ("raw", "logmel")
STFT_OVER = ("segment", "window")
EMBEDDING_LAYER = "embedding"  # every family's penultimate representation


def make_log_mel(logmel: LogMelConfig, sample_rate: int,
                 stft_over: str = "segment",
                 segment_length: int = SEGMENT_LENGTH) -> layers.LogMel:
    """The front end of a raw model (float32 under any dtype policy): one
    STFT per `segment_length`-sample segment, or over the whole input for
    `stft_over="window"`."""
    if stft_over not in STFT_OVER:
        raise ValueError(f"stft_over must be one of {STFT_OVER}, got {stft_over!r}")
    segment_length = segment_length if stft_over == "segment" else None
    return layers.LogMel(sample_rate=sample_rate, segment_length=segment_length,
                         dtype="float32", name="log_mel", **dataclasses.asdict(logmel))


def window_samples(segments=None, input_length=None,
                   segment_length: int = SEGMENT_LENGTH) -> int:
    """Samples in a window of `segments` segments or of `input_length`."""
    if input_length is not None:
        if (isinstance(input_length, bool) or int(input_length) != input_length
                or input_length <= 0 or input_length % segment_length):
            raise ValueError(
                f"input_length must be a positive multiple of the "
                f"{segment_length}-sample segment (e.g. {2 * segment_length} for "
                f"2 segments), got {input_length!r}; the records hold "
                f"{segment_length}-sample segments, pass segments=k instead")
        return int(input_length)
    if (segments is None or isinstance(segments, bool) or int(segments) != segments
            or segments <= 0):
        raise ValueError(f"segments must be a positive integer, got {segments!r}")
    return int(segments) * segment_length


@dataclasses.dataclass(frozen=True)
class Preprocessor:
    """A family's input: `logmel` its front end (None: the backbone reads
    the raw waveform), `segments` its default window in record segments of
    `segment_length` samples, `sample_rate` the rate of its paper's input
    (the datasets' 22050 Hz unless the paper read another)."""

    logmel: LogMelConfig | None = None
    segments: int = 1
    segment_length: int = SEGMENT_LENGTH
    sample_rate: int = AudioConfig.sample_rate

    @property
    def raw_waveform(self) -> bool:
        return self.logmel is None

    def waveform(self, input_length=None):
        """The raw-waveform input `(batch, input_length)` float32, named
        `waveform` (default: the family's window)."""
        samples = input_length or self.segments * self.segment_length
        return keras.Input((int(samples),), dtype="float32", name="waveform")

    def __call__(self, input_kind="raw", *, segments=None, input_length=None,
                 num_frames=None, sample_rate=None, logmel: LogMelConfig | None = None,
                 segment_length=None, stft_over="segment"):
        """A log-mel family's `(inputs, features)`: the `keras.Input` and the
        tensor `(batch, frames, n_mels)` the backbone reads (the arguments:
        see the module docstring; left out, the family's)."""
        logmel, sample_rate = logmel or self.logmel, sample_rate or self.sample_rate
        segments = self.segments if segments is None else segments
        segment_length = self.segment_length if segment_length is None else segment_length
        if input_kind not in INPUT_KINDS:
            raise ValueError(
                f"input_kind must be one of {INPUT_KINDS}, got {input_kind!r}")
        if stft_over not in STFT_OVER:
            raise ValueError(f"stft_over must be one of {STFT_OVER}, got {stft_over!r}")
        if isinstance(segment_length, bool) or not isinstance(segment_length, numbers.Integral) \
                or segment_length <= 0:
            raise ValueError(
                f"segment_length must be a positive integer, got {segment_length!r}")
        if logmel.n_mels <= 0:
            raise ValueError(f"n_mels must be positive, got {logmel.n_mels}")
        if input_kind == "raw":
            if num_frames is not None:
                raise ValueError(
                    "num_frames applies to input_kind='logmel' only; for raw "
                    "input give segments or input_length (samples)")
            inputs = self.waveform(window_samples(segments, input_length, segment_length))
            return inputs, make_log_mel(logmel, sample_rate, stft_over,
                                        segment_length)(inputs)  # (batch, frames, mels)
        if num_frames is None:
            samples = window_samples(segments, input_length, segment_length)
            num_frames = make_log_mel(logmel, sample_rate, stft_over,
                                      segment_length).frames_for(samples)
        elif isinstance(num_frames, bool) or int(num_frames) != num_frames or num_frames <= 0:
            raise ValueError(f"num_frames must be a positive integer, got {num_frames!r}")
        inputs = keras.Input((int(num_frames), logmel.n_mels), name="log_mel")
        return inputs, inputs
