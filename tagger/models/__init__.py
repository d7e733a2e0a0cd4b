"""Model registry: every family is `build_<family>(num_tags, ...) -> keras.Model`."""

from __future__ import annotations

from tagger.models.multiscale import build_multiscale
from tagger.models.samplecnn import build_samplecnn
from tagger.models.self_attention import build_self_attention
from tagger.models.transformer import build_transformer

MODELS = {
    "samplecnn": build_samplecnn,
    "multiscale": build_multiscale,
    "self_attention": build_self_attention,
    "transformer": build_transformer,
}


def build_model(name: str, **kwargs):
    """Builds the model family `name` with the factory's keyword arguments."""
    if name not in MODELS:
        raise ValueError(
            f"unknown model {name!r}; valid models: {', '.join(sorted(MODELS))}")
    return MODELS[name](**kwargs)
