"""Short-chunk ResNet (Won, Ferraro, Bogdanov, Serra, SMC 2020): the
Short-chunk CNN with residual blocks of strided 3x3 convolutions in place
of the poolings; the best CNN of that evaluation (MagnaTagATune ROC-AUC
0.9129, PR-AUC 0.4614). The architecture, front end and counts are in
`tagger.models.short_chunk`, shared with `short_cnn`.
"""

from __future__ import annotations

import keras

from tagger.config import LogMelConfig
from tagger.models.family_spec import BenchCase, FamilySpec, ModelFlag, Preset
from tagger.models.short_chunk import (
    DROPOUT,
    LOGMEL,
    N_CHANNELS,
    SAMPLE_RATE,
    SEGMENTS,
    build_short_chunk,
)
from tagger.models.spectrogram_input import EMBEDDING_LAYER


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


FAMILY = FamilySpec(
    name="short_res", build=build_short_res, paper="Won, Ferraro, Bogdanov, Serra 2020",
    window_segments=SEGMENTS, logmel=LOGMEL, schedule="won",
    flags=(ModelFlag("n_channels"), ModelFlag("dropout")),
    embedding_layer=EMBEDDING_LAYER, int8=False, analyses=(),
    demo=Preset({"n_channels": 16}, batch_size=8, lr=1e-3, epochs=6),
    tiny={"n_channels": 4},
    bench=(BenchCase("Short-chunk ResNet", {}, 16),),
    sample_rate=SAMPLE_RATE,
)
