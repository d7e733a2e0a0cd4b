"""Short-chunk CNN (Won, Ferraro, Bogdanov, Serra, SMC 2020): the
"VGG-ish" tagger of small 3x3 convolutions and 2x2 poolings on 3.7 s
chunks of 128-bin log-mel at 16 kHz. The architecture, front end and
counts are in `tagger.models.short_chunk`, shared with `short_res`.
"""

from __future__ import annotations

import keras

from tagger.config import LogMelConfig
from tagger.models.short_chunk import (
    DROPOUT,
    N_CHANNELS,
    SAMPLE_RATE,
    SEGMENTS,
    build_short_chunk,
    short_chunk_family,
)


def build_short_cnn(num_tags=50, *, input_kind="raw", segments=SEGMENTS, input_length=None,
                    num_frames=None, sample_rate=SAMPLE_RATE,
                    logmel: LogMelConfig | None = None, n_channels=N_CHANNELS,
                    dropout=DROPOUT) -> keras.Model:
    """Builds the Short-chunk CNN (the original's ShortChunkCNN).

    Args:
      num_tags: outputs of the `tags` layer (sigmoid, float32).
      input_kind: "raw" (waveform, `(batch, samples)`) or "logmel"
        (`(batch, frames, n_mels)` as `LogMel` produces).
      segments: window in 59049-sample segments (default 1, the paper's
        chunk); input_length: in samples instead (a multiple of 59049);
        num_frames: log-mel input only, in frames instead.
      sample_rate: of raw input (16000, the paper's).
      logmel: `LogMelConfig`; default `short_chunk.LOGMEL` (the paper's).
      n_channels: channel unit; blocks have 1, 1, 2, 2, 2, 2, 4 of it
        (128: the paper).
      dropout: before the output layer (0.5).
    """
    return build_short_chunk(
        "conv", num_tags, input_kind=input_kind, segments=segments,
        input_length=input_length, num_frames=num_frames, sample_rate=sample_rate,
        logmel=logmel, n_channels=n_channels, dropout=dropout, name="short_cnn")


FAMILY = short_chunk_family("short_cnn", build_short_cnn, "Short-chunk CNN")
