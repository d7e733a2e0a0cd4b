"""The int8 models tag.py --engine tflite-int8 converts, kept so that a
rerun on the same model and audio does not calibrate and convert again.

    <cache home>/tflite-int8/<key>.tflite   the calibrated int8 flatbuffer
    <cache home>/tflite-int8/<key>.json     what it was made from, and its SHA-256

The cache home is `cache.cache_home()` (TAGGER_HOME, XDG_CACHE_HOME,
~/.cache/tagger), where the pretrained taggers are kept too. An entry's
record (`entry_fields`, kept by `cache.write_record` with the flatbuffer's
size and SHA-256, as the pretrained store records its files) holds
everything the conversion depends on:

- the model: its fingerprint, the SHA-256 of the model file's bytes
  (`common.model_fingerprint`, as the results database keys models),
  so a retrained model under the same name is another entry;
- the audio settings it is served at: sample rate and window;
- the calibration windows themselves: their count and the SHA-256 of their
  float32 bytes. They are a seeded sample of the files being tagged
  (`quantize.calibration_windows`), so tagging the same files draws the
  same windows, and other files (or a file that changed) another entry;
  drawing them costs a few windows' decoding of each file (read by seeking);
- the converter: TensorFlow's version, and `CACHE_VERSION` (the conversion
  settings of `export.tflite_bytes`: raise it when they change).

The file name is the SHA-256 of the fields. An entry is used only when its
record holds exactly the fields asked for and the flatbuffer's size and
SHA-256 are the ones recorded; anything else (a missing half, a damaged,
truncated or foreign file) is converted again and the entry rewritten,
never trusted. Both files are written atomically, the flatbuffer first, so
a run killed between the two leaves a record that does not match: the next
run converts again. A cache that cannot be written leaves tagging as it
was, with a warning (naming the folder, and TAGGER_HOME where the folder
itself cannot be made or written: `cache.cache_folder`).
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from tagger import cache, fileio

# 2: the inference graph, int8 of spectrogram models' front end; 3: of their
# convolutions of one input channel only (2 quantised all five of VGG's)
CACHE_VERSION = 3
FOLDER = "tflite-int8"


def entry_fields(model_path: str, sample_rate: int, window: int,
                 calibration: np.ndarray) -> dict:
    """The record of the int8 conversion of the model file `model_path`
    served at (`sample_rate`, `window`), calibrated on `calibration`
    (n, window) float32 windows (see the module docstring)."""
    import tensorflow as tf

    from tagger.inference.common import model_fingerprint

    windows = np.ascontiguousarray(calibration, "<f4")  # (n, window)
    return {"cache_version": CACHE_VERSION, "engine": "tflite-int8",
            "model_sha256": model_fingerprint(model_path),
            "sample_rate": int(sample_rate), "window_samples": int(window),
            "calibration_windows": int(windows.shape[0]),
            "calibration_sha256": hashlib.sha256(windows.tobytes()).hexdigest(),
            "tensorflow": tf.__version__}


def entry_path(fields: dict) -> str:
    """The flatbuffer's path for `fields`; its record is beside it (.json)."""
    return cache.keyed_entry(FOLDER, fields, ".tflite")


def cached_int8(fields: dict, convert) -> tuple[bytes, bool, str]:
    """(content, select_tf_ops, note) of the int8 model `fields` describe:
    the cache's entry when it is sound, else `convert()`'s (content,
    select_tf_ops), stored for the next run. `note` is a line for the log
    ('' when the model was converted and cached as expected)."""
    path = entry_path(fields)
    found = _read(path, fields)
    if found is not None:
        content, select_tf_ops = found
        return content, select_tf_ops, f"int8 calibration read from the cache ({path})"
    damaged = os.path.exists(path) or os.path.exists(_record_path(path))
    content, select_tf_ops = convert()
    note = (f"the cached int8 model {path} did not match its record; calibrated and "
            "converted again" if damaged else "")
    try:
        cache.cache_folder(FOLDER)
        fileio.write_atomic(path, content)
        cache.write_record(_record_path(path), cache.Checksum.of_bytes(content), **fields,
                           select_tf_ops=bool(select_tf_ops))
    except cache.CacheFolderError as error:  # a read-only place, a file in the way
        note = (f"warning: the int8 model was not cached in {error.folder} ({error.reason}; "
                f"{cache.CACHE_ADVICE}); the next run converts it again")
    except Exception as error:  # OSError (a full disk), or a UserError for a folder in the way
        note = (f"warning: the int8 model was not cached in {os.path.dirname(path)} "
                f"({fileio.describe_os_error(error)}); the next run converts it again")
    return content, select_tf_ops, note


def _record_path(path: str) -> str:
    return os.path.splitext(path)[0] + ".json"


def _read(path: str, fields: dict):
    """(content, select_tf_ops) of a sound entry for `fields`, else None."""
    record = cache.read_record(_record_path(path))
    try:
        content = fileio.read_bytes(path)
    except OSError:
        return None
    if record is None:
        return None
    found = cache.Checksum(record.pop("bytes"), record.pop("sha256"))
    select_tf_ops = record.pop("select_tf_ops", None)
    if (record != fields or not isinstance(select_tf_ops, bool)
            or found != cache.Checksum.of_bytes(content)):
        return None
    return content, select_tf_ops
