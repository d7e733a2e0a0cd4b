"""Short-chunk ResNet (Won, Ferraro, Bogdanov, Serra, SMC 2020): the
Short-chunk CNN with residual blocks of strided 3x3 convolutions in place
of the poolings; the best CNN of that evaluation (MagnaTagATune ROC-AUC
0.9129, PR-AUC 0.4614). The architecture, front end and counts are in
`tagger.models.short_chunk`, shared with `short_cnn`.
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


def build_short_res(num_tags=50, *, input_kind="raw", segments=SEGMENTS, input_length=None,
                    num_frames=None, sample_rate=SAMPLE_RATE,
                    logmel: LogMelConfig | None = None, n_channels=N_CHANNELS,
                    dropout=DROPOUT) -> keras.Model:
    """Builds the Short-chunk ResNet (the original's ShortChunkCNN_Res);
    the arguments are `build_short_cnn`'s."""
    return build_short_chunk(
        "res", num_tags, input_kind=input_kind, segments=segments,
        input_length=input_length, num_frames=num_frames, sample_rate=sample_rate,
        logmel=logmel, n_channels=n_channels, dropout=dropout, name="short_res")


FAMILY = short_chunk_family("short_res", build_short_res, "Short-chunk ResNet")
