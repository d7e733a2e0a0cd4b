"""Model registry: every family is one `FamilySpec` (tagger.models.family_spec),
defined as `FAMILY` in the module of this package that has its name, beside
its factory `build_<family>(num_tags, ...) -> keras.Model`. Adding a family
is one module plus its name below.

Importing the registry is light: `FAMILY_NAMES` needs no Keras, and a
family's module (and Keras) is imported when its spec is first asked for.
"""

from __future__ import annotations

import importlib

FAMILY_NAMES = ("samplecnn", "multiscale", "self_attention", "transformer",
                "short_cnn", "short_res", "fcn", "musicnn", "crnn", "sample_level",
                "sample_level_se", "cnnsa", "hcnn", "pons_musicnn", "pons_vgg")


def family(name: str):
    """The `FamilySpec` of family `name`; a ValueError listing the valid names."""
    if name not in FAMILY_NAMES:
        raise ValueError(
            f"unknown model {name!r}; valid models: {', '.join(sorted(FAMILY_NAMES))}")
    return importlib.import_module(f"{__name__}.{name}").FAMILY


def build_model(name: str, **kwargs):
    """Builds the model family `name` with the factory's keyword arguments."""
    return family(name).build(**kwargs)


def __getattr__(attribute: str):
    """`FAMILIES` (name -> spec) and `MODELS` (name -> factory), built on first use."""
    if attribute == "FAMILIES":
        return {name: family(name) for name in FAMILY_NAMES}
    if attribute == "MODELS":
        return {name: family(name).build for name in FAMILY_NAMES}
    raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")
