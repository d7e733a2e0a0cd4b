"""The tagging engines by name: the one way tag.py, tagger-serve, Beam
tagging, tagger-similar and the Python API get a predictor.

    from tagger.inference.engine.registry import Engine, register_engine

    def make_toy(model, info, options):  # -> a Predictor (engine/predictor.py)
        ...

    register_engine(Engine("toy", make_toy))

An engine is a name and a factory `make(model, info, options)`: the loaded
Keras model, its info dict and the caller's `EngineOptions`. Every name in
`ENGINES` (a `tagger.registry.Registry`: a name once) is a choice of
tag.py's and tagger-serve's `--engine`;
`embeddings` says whether the engine's predictors give embeddings (tag.py
--embeddings asks for one that does); `paced`, whether tag.py times it
against the keras engine at the start and says how they compare
(`keras_pace`: the built-in xla, keras-bf16 and tflite engines).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

from tagger.inference.engine import keras as keras_engine
from tagger.inference.engine import keras_bf16
from tagger.inference.engine import tflite as tflite_engine
from tagger.models.tagger_metadata import TaggerMetadata
from tagger.registry import Registry


@dataclasses.dataclass(frozen=True)
class EngineOptions:
    """What a caller asks of a predictor. `embeddings`: the embeddings of
    `embedding_layer` too (None: the family's penultimate layer);
    `model_path`: the model's file, for caches keyed by it (None: not
    cached); `calibration_audio()`: audio files like those to be tagged,
    for an engine that measures ranges on them (called only by such an
    engine)."""

    embeddings: bool = False
    embedding_layer: str | None = None
    model_path: str | None = None
    calibration_audio: Callable[[], list] = list


@dataclasses.dataclass(frozen=True)
class Engine:
    name: str
    make: Callable  # (model, info, EngineOptions) -> Predictor
    embeddings: bool = False
    paced: bool = False


ENGINES = Registry("engine")


def register_engine(engine: Engine) -> Engine:
    """Adds `engine` under its name, which no engine may have already;
    returns it."""
    return ENGINES.register(engine.name, engine)


def engine_named(name: str) -> Engine:
    """The engine `name`; an UnknownName error (a UserError) listing them."""
    return ENGINES.get(name)


def make_predictor(name: str, model, info: TaggerMetadata | None,
                   options: EngineOptions = EngineOptions()):
    """The Predictor of engine `name` for a loaded model."""
    return engine_named(name).make(model, info, options)


register_engine(Engine("keras", keras_engine.make_predictor, embeddings=True))
register_engine(Engine("xla", functools.partial(keras_engine.make_predictor, jit_compile=True),
                       embeddings=True, paced=True))
register_engine(Engine("keras-bf16", keras_bf16.make_predictor, embeddings=True, paced=True))
for _name in tflite_engine.ENGINES:
    register_engine(Engine(_name, functools.partial(tflite_engine.make_predictor, engine=_name),
                           paced=True))
