"""Model registry: every family is `build_<family>(num_tags, ...) -> keras.Model`."""

from __future__ import annotations

MODELS = {}


def register(name):
    """Decorator adding a model factory to `MODELS` under `name`."""
    def add(factory):
        MODELS[name] = factory
        return factory
    return add


def build_model(name: str, **kwargs):
    """Builds the model family `name` with the factory's keyword arguments."""
    _load_families()
    if name not in MODELS:
        raise ValueError(
            f"unknown model {name!r}; valid models: {', '.join(sorted(MODELS))}")
    return MODELS[name](**kwargs)


def _load_families():
    # Imported here so that `import tagger.models` stays cheap and the
    # registry is complete whichever module is imported first.
    from tagger.models import samplecnn  # noqa: F401
