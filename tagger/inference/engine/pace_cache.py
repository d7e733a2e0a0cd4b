"""tag.py's timing of an engine against the keras engine (`keras_pace`),
done once and kept in the cache, so that a later run on the same model,
engine and machine says the same line without timing again:

    <cache home>/pace/<key>.json   the timing, and what it was timed on

The cache home is `cache.cache_home()` (TAGGER_HOME, XDG_CACHE_HOME,
~/.cache/tagger), where tag.py's int8 models are kept too. The key is the
SHA-256 of `pace_fields`, everything the two engines' speeds depend on:

- the model: its fingerprint (`common.model_fingerprint`, the SHA-256 of
  the model file's bytes), so a retrained model under the same name is
  timed again;
- the engine and what it computes: its name, the embeddings' layer (None
  without embeddings), its interpreter (LiteRT or TensorFlow's) and the
  windows of a timed call (the run's batch size, 16 at most);
- the machine: the CPU's model and flags, the cores this process may use,
  the GPUs TensorFlow sees (JAX, under JAX);
- the software: TensorFlow's (JAX's), Keras's and ai-edge-litert's versions, and
  `CACHE_VERSION` (how the timing is done: raise it when that changes).

Entries are read and kept by `tagger.timing_cache` (a damaged or
foreign entry is timed again; a cache that cannot be written, a warning).
"""

from __future__ import annotations

from tagger import fileio, timing_cache
from tagger.inference.engine import keras_pace

CACHE_VERSION = 1
FOLDER = "pace"


def engine_fields(engine: str, model_path: str) -> dict:
    """What a timing of `engine` on the model file `model_path` depends on
    (this pace's and the auto engine's): the engine, the file's SHA-256,
    the machine's `timing_cache.machine_fields` and the LiteRT
    interpreter's version (None where it is not installed)."""
    import importlib.metadata

    from tagger.inference.common import model_fingerprint

    try:
        litert = importlib.metadata.version("ai-edge-litert")
    except importlib.metadata.PackageNotFoundError:
        litert = None
    return {"engine": engine, "model_sha256": model_fingerprint(model_path),
            **timing_cache.machine_fields(), "ai_edge_litert": litert}


def pace_fields(engine: str, predictor, model_path: str, windows: int) -> dict:
    """The key of the timing of `engine`'s `predictor` of the model file
    `model_path` against keras, on `windows` windows a call (see the module
    docstring)."""
    return {"cache_version": CACHE_VERSION, **engine_fields(engine, model_path),
            "embedding_layer": predictor.embedding_layer,
            "interpreter": getattr(predictor, "interpreter", None), "windows": int(windows)}


def pace_lines(engine: str, predictor, model, info, model_path: str | None,
               batch_size: int) -> list[str]:
    """The lines tag.py shows for `engine`'s `predictor` of `model`: how
    it compares with the keras engine (`keras_pace.pace_line`), read from
    the cache when it was timed before, else timed now and kept; and a
    warning when it could not be kept. A model that is not a local file is
    timed on every run (its fingerprint would read it again)."""
    def timed():
        return keras_pace.pace_against_keras(predictor, model, info, batch_size)

    if model_path is None or not fileio.is_local(model_path):
        return [keras_pace.pace_line(engine, *timed())]
    windows = max(1, min(batch_size, keras_pace.WINDOWS))
    fields = pace_fields(engine, predictor, model_path, windows)
    found = timing_cache.read_timing(FOLDER, fields, ("pace",))
    if found is not None:
        values, when = found
        return [keras_pace.pace_line(engine, values["pace"], windows, when)]
    pace, windows = timed()
    lines = [keras_pace.pace_line(engine, pace, windows)]
    warning = timing_cache.keep_timing(FOLDER, fields, {"pace": pace},
                                       "the timing against keras")
    return lines + ([warning] if warning else [])
