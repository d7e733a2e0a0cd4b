"""Short-chunk CNN (Won, Ferraro, Bogdanov, Serra, SMC 2020): the
"VGG-ish" tagger of small 3x3 convolutions and 2x2 poolings on 3.7 s
chunks of 128-bin log-mel at 16 kHz. The architecture, front end and
counts are in `tagger.models.short_chunk`, shared with `short_res`.
"""

from __future__ import annotations

from tagger.models.lazy import keras
from tagger.models.short_chunk import DROPOUT, N_CHANNELS, build_short_chunk, short_chunk_family


def build_short_cnn(num_tags=50, *, n_channels=N_CHANNELS, dropout=DROPOUT,
                    **input_args) -> keras.Model:
    """Builds the Short-chunk CNN (the original's ShortChunkCNN).

    Args:
      num_tags: outputs of the `tags` layer (sigmoid, float32).
      input_args: the window and front end, as `PREPROCESSOR` (a
        `Preprocessor`) takes them; left out, the paper's.
      n_channels: channel unit; blocks have 1, 1, 2, 2, 2, 2, 4 of it
        (128: the paper).
      dropout: before the output layer (0.5).
    """
    return build_short_chunk("conv", num_tags, n_channels=n_channels, dropout=dropout,
                             name="short_cnn", **input_args)


FAMILY = short_chunk_family("short_cnn", build_short_cnn, "Short-chunk CNN")
