"""Short-chunk ResNet (Won, Ferraro, Bogdanov, Serra, SMC 2020): the
Short-chunk CNN with residual blocks of strided 3x3 convolutions in place
of the poolings; the best CNN of that evaluation (MagnaTagATune ROC-AUC
0.9129, PR-AUC 0.4614). The architecture, front end and counts are in
`tagger.models.short_chunk`, shared with `short_cnn`.
"""

from __future__ import annotations

from tagger.models.lazy import keras
from tagger.models.short_chunk import DROPOUT, N_CHANNELS, build_short_chunk, short_chunk_family


def build_short_res(num_tags=50, *, n_channels=N_CHANNELS, dropout=DROPOUT,
                    **input_args) -> keras.Model:
    """Builds the Short-chunk ResNet (the original's ShortChunkCNN_Res);
    the arguments are `build_short_cnn`'s."""
    return build_short_chunk("res", num_tags, n_channels=n_channels, dropout=dropout,
                             name="short_res", **input_args)


FAMILY = short_chunk_family("short_res", build_short_res, "Short-chunk ResNet")
