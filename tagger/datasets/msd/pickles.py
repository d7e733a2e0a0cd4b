"""The classic split's Python 2 pickles, read safely (see tagger.safe_pickle).

A pickle is loaded whole (that is how pickles work); the id lists hold
about 240,000 ids, so this stays well under a gigabyte.
"""

from __future__ import annotations

import os

from tagger import fileio, safe_pickle
from tagger.errors import UserError

_WHAT = {
    "filtered_list_train.cP": "a list of MSD ids (train, then valid)",
    "filtered_list_test.cP": "a list of MSD ids",
    "msd_id_to_tag_vector.cP": "a dict from MSD id to a 50-tag vector",
}
_SOURCE = "jongpillee/music_dataset_split, MSD_split"


def _load(path: str):
    name = os.path.basename(path)
    what = _WHAT.get(name, "a Python 2 pickle")
    if not fileio.exists(path) or fileio.isdir(path):
        raise UserError(f"{path!r} not found; a classic split folder holds "
                        f"{', '.join(_WHAT)} ({_SOURCE})")
    return safe_pickle.load_file(path, f"{what} ({_SOURCE})", safe_pickle.NUMPY)


def _text(value) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


def read_id_list(path: str) -> list:
    ids = _load(path)
    if not isinstance(ids, (list, tuple)) or not all(isinstance(i, (str, bytes)) for i in ids):
        raise UserError(f"{path!r} holds a {type(ids).__name__}, not a list of MSD ids; "
                        f"expected {_WHAT.get(os.path.basename(path))}")
    return [_text(i) for i in ids]


def read_tag_vectors(path: str) -> dict:
    vectors = _load(path)
    if not isinstance(vectors, dict):
        raise UserError(f"{path!r} holds a {type(vectors).__name__}; expected "
                        f"{_WHAT['msd_id_to_tag_vector.cP']}")
    return {_text(k): v for k, v in vectors.items()}
