"""What a shard of records is on disk now: its size and modification time
and the SHA-256 of its records' framing (`tfrecord.read_framing`: each
record's length and CRC32Cs), read from the file. What the build's rerun
checks a kept shard against (its manifest) and what the stores beside the
records key each stored shard on (`training.model_outputs`).

The digest is kept by (path, size, mtime): a state known before is taken
again, without a read, while the file's size and modification time are
still the ones it holds; else the framing is read anew (and every byte,
each record's data CRC32C checked, where asked).
"""

from __future__ import annotations

import dataclasses
import os

from tagger import fileio
from tagger.records.tfrecord import read_framing

STATE_KEYS = ("size", "mtime_ns", "framing_sha256")  # what a manifest or a store keeps


@dataclasses.dataclass(frozen=True)
class ShardState:
    """A shard file's `size` (bytes), `mtime_ns` and `framing_sha256`;
    `problem`: what is wrong with its records (cut short, a CRC32C that
    does not match), where the file was read and found so."""

    size: int
    mtime_ns: int
    framing_sha256: str
    problem: str | None = None

    def to_json(self) -> dict:
        """What a manifest or a store keeps (STATE_KEYS)."""
        return dict(zip(STATE_KEYS, (self.size, self.mtime_ns, self.framing_sha256)))


def file_stat(path: str) -> tuple[int, int] | None:
    """(size in bytes, modification time in ns) of the file at `path` (local
    or any tf.io.gfile path); None where there is no file."""
    if fileio.is_local(path):
        try:
            found = os.stat(path)
        except FileNotFoundError:
            return None
        return found.st_size, found.st_mtime_ns
    if not fileio.exists(path):
        return None
    import tensorflow as tf

    found = tf.io.gfile.stat(path)
    return found.length, found.mtime_nsec


def shard_state(path: str, known: dict | None = None, data: bool = False,
                verify: bool = False) -> ShardState | None:
    """The state of the shard at `path` (None where there is no file).
    `known` (a `ShardState.to_json` of this path) is the state, unread,
    while the file's size and mtime are the ones it holds; else the framing
    is read (`data`: every byte, each record's data CRC32C checked).
    `verify`: every byte is read and checked, whatever `known` holds."""
    stat = file_stat(path)
    if stat is None:
        return None
    if known and not verify and stat == (known.get("size"), known.get("mtime_ns")):
        return ShardState(*stat, known["framing_sha256"])
    digest, problem = read_framing(path, check_data=data or verify)
    return ShardState(*stat, digest, problem)
