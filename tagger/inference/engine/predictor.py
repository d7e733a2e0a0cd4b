"""The one predictor protocol: what every engine's factory returns."""

from __future__ import annotations

import numpy as np


class Predictor:
    """Scores windows of raw mono audio: `predictor(windows)` takes
    `(batch, window_samples)` float32 at `sample_rate` and returns
    `(scores (batch, tags) float32, embeddings (batch, embedding_dim) or
    None)`, the tags named by `tag_names` in order.

    An engine (engine/registry.py) subclasses it and sets `sample_rate`,
    `window_samples` and `tag_names`; the class attributes below are what
    it may leave as they are. A file's windows step by `hop_samples` (None:
    the window, no overlap) through the file padded by `edge_padding`
    samples at each edge (`models.saved.window_grid`). `warning` and `note`
    are lines for the user: a problem with the model (no tag names) and
    how the engine was made (a cache used), shown in that order.
    `same_as_keras`: the engine runs the keras engine's program (xla under
    JAX), which tag.py does not time against itself. `engine`: the name of
    the engine that scores (for auto, the one it took), set by
    `registry.make_predictor`.
    """

    sample_rate: int
    window_samples: int
    tag_names: list
    hop_samples: int | None = None
    edge_padding: int = 0
    warning: str | None = None
    note: str = ""
    embedding_layer: str | None = None  # None: no embeddings
    embedding_dim: int | None = None
    same_as_keras: bool = False  # the keras engine's very program: not timed against it
    engine: str | None = None

    @property
    def num_tags(self) -> int:
        return len(self.tag_names)

    def __call__(self, windows: np.ndarray):
        raise NotImplementedError
