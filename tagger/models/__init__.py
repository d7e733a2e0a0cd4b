"""Model registry: every family is one `FamilySpec` (tagger.models.family_spec),
defined as `FAMILY` in a module beside its factory `build_<family>(num_tags,
...) -> keras.Model`. The families of this package are the modules named in
`FAMILY_NAMES`; `register_family(name, module)` adds one from any module
(a plug-in, a test's toy family) without editing this file.

Importing the registry is light: a family's module is imported when its
spec is first asked for, and Keras only when a model is built (the model
modules name it through `tagger.models.lazy`), so the specs, train.py's
parser and its --help need no Keras.
Read `FAMILY_NAMES` when you need it (not bound at import), as
registration replaces it.
"""

from __future__ import annotations

import importlib

MODULES = {name: f"{__name__}.{name}" for name in (
    "samplecnn", "multiscale", "self_attention", "transformer", "short_cnn", "short_res",
    "fcn", "musicnn", "crnn", "sample_level", "sample_level_se", "cnnsa", "hcnn",
    "pons_musicnn", "pons_vgg")}
FAMILY_NAMES = tuple(MODULES)


def register_family(name: str, module: str) -> None:
    """Registers family `name`, the `FAMILY` spec of the importable module
    `module` (e.g. "my_package.toy"); train.py, demo.py and the rest then
    offer it. A ValueError for a name taken or a spec of another name."""
    global FAMILY_NAMES
    if name in MODULES:
        raise ValueError(f"model family {name!r} is registered already")
    spec = importlib.import_module(module).FAMILY
    if spec.name != name:
        raise ValueError(f"{module}.FAMILY is named {spec.name!r}, not {name!r}")
    MODULES[name] = module
    FAMILY_NAMES = tuple(MODULES)


def family(name: str):
    """The `FamilySpec` of family `name`; a ValueError listing the valid names."""
    if name not in MODULES:
        raise ValueError(
            f"unknown model {name!r}; valid models: {', '.join(sorted(MODULES))}")
    return importlib.import_module(MODULES[name]).FAMILY


def build_model(name: str, **kwargs):
    """Builds the model family `name` with the factory's keyword arguments."""
    return family(name).build(**kwargs)


def __getattr__(attribute: str):
    """`FAMILIES` (name -> spec) and `MODELS` (name -> factory), built on first use."""
    if attribute == "FAMILIES":
        return {name: family(name) for name in MODULES}
    if attribute == "MODELS":
        return {name: family(name).build for name in MODULES}
    raise AttributeError(f"module {__name__!r} has no attribute {attribute!r}")
