"""Timings kept in the cache, so that a later run on the same work and
machine uses them without timing again: one JSON entry per timing,

    <cache home>/<folder>/<key>.json

named by the SHA-256 of the fields that the timing depends on (`cache.keyed_entry`):
what was timed, and the machine (`machine_fields`). An entry is used only
when it holds exactly the fields asked for, each timed value a finite
positive number, and the time it was taken; anything else (a damaged,
truncated or foreign file) is timed again and rewritten. Entries are
written atomically. A cache that cannot be written leaves the run as it
was, with a warning: the next run times again.
"""

from __future__ import annotations

import datetime
import json
import math
import os

from tagger import cache, fileio

TIME_FORMAT = "%Y-%m-%d %H:%M UTC"  # when an entry was timed


def machine_fields() -> dict:
    """What a timing depends on in the machine: the CPU's model and flags,
    the cores this process may use, the GPUs TensorFlow sees, TensorFlow's
    and Keras's versions; under JAX, JAX's GPUs and version in
    TensorFlow's place (TensorFlow is not imported)."""
    import keras

    from tagger import backends
    from tagger.cpu_features import available_cores, cpu_model_and_flags

    cpu, flags = cpu_model_and_flags()
    machine = {"cpu": cpu, "cpu_flags": " ".join(sorted(flags)), "cores": available_cores()}
    if backends.current() == "jax":
        import jax

        gpus = [device.device_kind for device in jax.devices() if device.platform == "gpu"]
        return {**machine, "gpus": gpus, "jax": jax.__version__, "keras": keras.__version__}
    import tensorflow as tf

    gpus = [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
            for gpu in tf.config.list_physical_devices("GPU")]
    return {**machine, "gpus": gpus, "tensorflow": tf.__version__, "keras": keras.__version__}


def read_timing(folder: str, fields: dict, names: tuple):
    """(the timed values `names` as a dict, when they were timed) of a sound
    entry for `fields` in the cache's `folder`, else None."""
    try:
        with open(cache.keyed_entry(folder, fields, ".json"), encoding="utf-8") as file:
            record = json.load(file)
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    values = {name: record.pop(name, None) for name in names}
    when = record.pop("timed", None)
    if record != fields or not isinstance(when, str) or not all(
            isinstance(v, float) and math.isfinite(v) and v > 0 for v in values.values()):
        return None
    try:
        datetime.datetime.strptime(when, TIME_FORMAT)
    except ValueError:
        return None
    return values, when


def keep_timing(folder: str, fields: dict, values: dict, what: str) -> str | None:
    """Writes the timed `values` for `fields` into the cache's `folder`;
    returns None, or the warning line when it could not be kept (`what`:
    the timing, as the line names it)."""
    path = cache.keyed_entry(folder, fields, ".json")
    when = datetime.datetime.now(datetime.timezone.utc).strftime(TIME_FORMAT)
    try:
        cache.cache_folder(folder)
        fileio.write_atomic(path, json.dumps({**fields, **values, "timed": when},
                                             indent=2) + "\n")
    except cache.CacheFolderError as error:  # a read-only place, a file in the way
        return (f"warning: {what} was not kept in {error.folder} ({error.reason}; "
                f"{cache.CACHE_ADVICE}); the next run times it again")
    except Exception as error:  # OSError (a full disk), or a UserError for a folder in the way
        return (f"warning: {what} was not kept in {os.path.dirname(path)} "
                f"({fileio.describe_os_error(error)}); the next run times it again")
    return None
