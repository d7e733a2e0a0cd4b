"""Float32 rows found by an integer key inside a tf.data pipeline, from a
table in a file: what a distillation run's training targets and a head
run's training embeddings enter the input pipeline through.

The table is one key a line: the key, a tab, and its float32 values'
bytes in web-safe base64. A StaticHashTable reads it
(`tf.lookup.TextFileInitializer`), so a tf.data graph that looks keys up
holds the file's name, not the rows, and stays small when it is
serialized (tf.data's rewrites, multi-worker input sharding; a graph
beyond 2 GB cannot be). The table takes 5.3 bytes a value in the file
and as much in the memory of the process that reads it.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable

import numpy as np

from tagger import destination, fileio

KEYS_PER_WRITE = 10_000


def write_table(path: str, rows: Iterable, what: str) -> None:
    """Writes `rows`, (key, float32 values) pairs, as the table at `path`,
    atomically; a failed write (a full disk...) is one UserError naming
    `what` and `path`."""
    with destination.reported(what, path), fileio.replacing(path, "wb") as file:
        _write_lines(file, rows)


def _write_lines(file, rows: Iterable) -> None:
    """The table's lines, written in pieces (a million clips' are gigabytes)."""
    lines = []
    for key, values in rows:
        lines.append(b"%d\t%s\n" % (key, base64.urlsafe_b64encode(
            np.ascontiguousarray(values, "<f4").tobytes())))
        if len(lines) == KEYS_PER_WRITE:
            file.write(b"".join(lines))
            lines = []
    file.write(b"".join(lines))


def read_table(path: str):
    """The StaticHashTable of the table at `path`: int64 key -> its line's
    text, "" for a key it lacks (`values` decodes a text)."""
    import tensorflow as tf

    return tf.lookup.StaticHashTable(tf.lookup.TextFileInitializer(
        path, tf.int64, 0, tf.string, 1, delimiter="\t"), default_value="")


def values(text):
    """The float32 values (a flat tensor) of a text the table gave."""
    import tensorflow as tf

    return tf.io.decode_raw(tf.io.decode_base64(text), tf.float32)
