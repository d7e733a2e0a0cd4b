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
  the GPUs TensorFlow sees;
- the software: TensorFlow's, Keras's and ai-edge-litert's versions, and
  `CACHE_VERSION` (how the timing is done: raise it when that changes).

An entry is used only when it holds exactly the fields asked for, a finite
positive speed ratio, its count of windows and the time it was taken;
anything else (a damaged, truncated or foreign file) is timed again and
rewritten. The entry is written atomically. A cache that cannot be written
leaves the run as it was, with a warning: the next run times again.
"""

from __future__ import annotations

import datetime
import json
import math
import os

from tagger import cache, fileio
from tagger.inference.engine import keras_pace

CACHE_VERSION = 1
FOLDER = "pace"
TIME_FORMAT = "%Y-%m-%d %H:%M UTC"  # when an entry was timed


def pace_fields(engine: str, predictor, model_path: str, windows: int) -> dict:
    """The key of the timing of `engine`'s `predictor` of the model file
    `model_path` against keras, on `windows` windows a call (see the module
    docstring)."""
    import importlib.metadata

    import keras
    import tensorflow as tf

    from tagger.cpu_features import cpu_model_and_flags
    from tagger.inference.common import available_cores, model_fingerprint

    try:
        litert = importlib.metadata.version("ai-edge-litert")
    except importlib.metadata.PackageNotFoundError:
        litert = None
    cpu, flags = cpu_model_and_flags()
    gpus = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
            for gpu in tf.config.list_physical_devices("GPU")]
    return {"cache_version": CACHE_VERSION, "engine": engine,
            "model_sha256": model_fingerprint(model_path),
            "embedding_layer": predictor.embedding_layer,
            "interpreter": getattr(predictor, "interpreter", None), "windows": int(windows),
            "cpu": cpu, "cpu_flags": " ".join(sorted(flags)), "cores": available_cores(),
            "gpus": gpus, "tensorflow": tf.__version__, "keras": keras.__version__,
            "ai_edge_litert": litert}


def entry_path(fields: dict) -> str:
    """The entry's path for `fields`."""
    return cache.keyed_entry(FOLDER, fields, ".json")


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
    path = entry_path(fields)
    found = _read(path, fields)
    if found is not None:
        pace, when = found
        return [keras_pace.pace_line(engine, pace, windows, when)]
    pace, windows = timed()
    when = datetime.datetime.now(datetime.timezone.utc).strftime(TIME_FORMAT)
    lines = [keras_pace.pace_line(engine, pace, windows)]
    try:
        cache.cache_folder(FOLDER)
        fileio.write_atomic(path, json.dumps({**fields, "pace": pace, "timed": when},
                                             indent=2) + "\n")
    except cache.CacheFolderError as error:  # a read-only place, a file in the way
        lines.append(f"warning: the timing against keras was not kept in {error.folder} "
                     f"({error.reason}; {cache.CACHE_ADVICE}); the next run times it again")
    except Exception as error:  # OSError (a full disk), or a UserError for a folder in the way
        lines.append(f"warning: the timing against keras was not kept in "
                     f"{os.path.dirname(path)} ({fileio.describe_os_error(error)}); "
                     "the next run times it again")
    return lines


def _read(path: str, fields: dict):
    """(pace, when it was timed) of a sound entry for `fields`, else None."""
    try:
        with open(path, encoding="utf-8") as file:
            record = json.load(file)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    pace, when = record.pop("pace", None), record.pop("timed", None)
    if (record != fields or not isinstance(pace, float) or not math.isfinite(pace)
            or pace <= 0 or not isinstance(when, str)):
        return None
    try:
        datetime.datetime.strptime(when, TIME_FORMAT)
    except ValueError:
        return None
    return pace, when
