"""Keras and the project's layers (`tagger.layers`) as the model modules
name them, each imported when first used: reading a family's spec (the
registry, train.py's parser and --help) imports neither, nor TensorFlow;
building a model imports both."""

from __future__ import annotations

import importlib


class LazyModule:
    """Stands for the module `name`, imported at the first attribute read."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attribute: str):
        return getattr(importlib.import_module(self._name), attribute)


keras = LazyModule("keras")
layers = LazyModule("tagger.layers")
