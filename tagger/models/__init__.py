"""Model registry: every family is one `FamilySpec` (tagger.models.family_spec),
defined as `FAMILY` in a module beside its factory `build_<family>(num_tags,
...) -> keras.Model`. `REGISTRY` (a `tagger.registry.Registry`) holds the
families by name, as the name of their module; this package's are
registered below, and `register_family(name, module)` adds one from any
module (a plug-in, a test's toy family) without editing this file.

Importing the registry is light: a family's module is imported when its
spec is first asked for, and Keras only when a model is built (the model
modules name it through `tagger.models.lazy`), so the specs, train.py's
parser and its --help need no Keras. `FAMILY_NAMES`, `FAMILIES` (name ->
spec) and `MODELS` (name -> factory) are read from the registry whenever
they are named, so they include every family registered so far.
"""

from __future__ import annotations

import importlib

from tagger.registry import Registry

REGISTRY = Registry("model family", load=lambda module: importlib.import_module(module).FAMILY)
for _name in ("samplecnn", "multiscale", "self_attention", "transformer", "short_cnn",
              "short_res", "fcn", "musicnn", "crnn", "sample_level", "sample_level_se", "cnnsa",
              "hcnn", "pons_musicnn", "pons_vgg"):
    REGISTRY.register(_name, f"{__name__}.{_name}")


def register_family(name: str, module: str) -> None:
    """Registers family `name`, the `FAMILY` spec of the importable module
    `module` (e.g. "my_package.toy"); train.py, demo.py and the rest then
    offer it. A ValueError for a name taken or a spec of another name."""
    spec = importlib.import_module(module).FAMILY
    if spec.name != name:
        raise ValueError(f"{module}.FAMILY is named {spec.name!r}, not {name!r}")
    REGISTRY.register(name, module)


def family(name: str):
    """The `FamilySpec` of family `name`; an UnknownName error (a ValueError)
    listing the valid names."""
    return REGISTRY.get(name)


def build_model(name: str, **kwargs):
    """Builds the model family `name` with the factory's keyword arguments."""
    return family(name).build(**kwargs)


def __getattr__(attribute: str):
    """`FAMILY_NAMES`, `FAMILIES` (name -> spec) and `MODELS` (name -> factory)."""
    if attribute == "FAMILY_NAMES":
        return REGISTRY.names()
    if attribute == "FAMILIES":
        return dict(REGISTRY.items())
    if attribute == "MODELS":
        return {name: spec.build for name, spec in REGISTRY.items()}
    raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")
