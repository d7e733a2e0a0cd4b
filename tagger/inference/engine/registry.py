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
(`keras_pace`: the built-in xla, keras-bf16 and tflite engines). `auto`
(engine/auto.py) measures the others once per model and machine and takes
the fastest that keeps keras's tags: the default where none is named
(`default_engine`).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable

from tagger.inference.engine import auto as auto_engine
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
DEFAULT_ENGINE = "auto"  # the fastest engine here that keeps keras's tags (engine/auto.py)
ENGINE_VARIABLE = "TAGGER_ENGINE"  # names another default (`default_engine`)


def register_engine(engine: Engine) -> Engine:
    """Adds `engine` under its name, which no engine may have already;
    returns it."""
    return ENGINES.register(engine.name, engine)


def engine_named(name: str) -> Engine:
    """The engine `name`; an UnknownName error (a UserError) listing them."""
    return ENGINES.get(name)


def default_engine() -> str:
    """The engine of tag.py, tagger-serve and the beets plugin where none is
    named: $TAGGER_ENGINE where it is set (a UserError for a name that is
    no engine), else DEFAULT_ENGINE."""
    import os

    name = os.environ.get(ENGINE_VARIABLE, "").strip()
    if not name:
        return DEFAULT_ENGINE
    if name not in ENGINES:
        from tagger.errors import UserError

        raise UserError(f"${ENGINE_VARIABLE} names the default engine: expected one of "
                        f"{', '.join(ENGINES)}, got {name!r}; unset it or name one of them")
    return name


def make_predictor(name: str, model, info: TaggerMetadata | None,
                   options: EngineOptions = EngineOptions()):
    """The Predictor of engine `name` for a loaded model, its `engine` the
    name of the engine that scores (auto's: the one it took)."""
    predictor = engine_named(name).make(model, info, options)
    if predictor.engine is None:
        predictor.engine = name
    return predictor


register_engine(Engine("keras", keras_engine.make_predictor, embeddings=True))
register_engine(Engine("xla", functools.partial(keras_engine.make_predictor, jit_compile=True),
                       embeddings=True, paced=True))
register_engine(Engine("keras-bf16", keras_bf16.make_predictor, embeddings=True, paced=True))
for _name in tflite_engine.ENGINES:
    register_engine(Engine(_name, functools.partial(tflite_engine.make_predictor, engine=_name),
                           paced=True))
# the fastest of the others on this machine that keeps keras's tags (engine/auto.py);
# embeddings: it chooses among the engines giving them when they are asked for
register_engine(Engine("auto", functools.partial(auto_engine.make_predictor, engines=ENGINES),
                       embeddings=True))
