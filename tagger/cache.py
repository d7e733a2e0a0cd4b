"""The cache: where tagger keeps what it downloads or converts once (the
pretrained taggers, tag.py's int8 models), and the record that vouches for
each file kept there.

A record is JSON beside its file, written after the file is complete: the
file's size ("bytes") and sha256 with what it was made from (`write_record`,
`read_record`). A file is used only when it matches its record (`Checksum`,
`mismatch`); one that does not is made again, never trusted.

Importing this module imports no TensorFlow.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

from tagger import fileio
from tagger.errors import UserError


def cache_home() -> str:
    """Where tagger keeps what it downloads or converts once (the pretrained
    taggers, tag.py's int8 models): $TAGGER_HOME, else `user_cache_home()`.
    Its folders are made and written through `cache_folder`."""
    home = os.environ.get("TAGGER_HOME")
    if home:
        return os.path.abspath(os.path.expanduser(home))
    return user_cache_home()


def user_cache_home() -> str:
    """The user's own cache folder of tagger, whatever TAGGER_HOME says:
    $XDG_CACHE_HOME/tagger, else ~/.cache/tagger."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = xdg if xdg and os.path.isabs(xdg) else os.path.join(os.path.expanduser("~"),
                                                                ".cache")
    return os.path.join(base, "tagger")


CACHE_ADVICE = "set TAGGER_HOME to a folder you may write to"


class CacheFolderError(UserError):
    """A folder of the cache cannot be made or written: `folder`, `reason`."""

    def __init__(self, folder: str, reason: str):
        self.folder, self.reason = folder, reason
        super().__init__(f"cannot write to the cache folder {folder} ({reason}); "
                         f"{CACHE_ADVICE}")


def cache_folder(*parts: str) -> str:
    """The folder `parts` of `cache_home()`, made if needed and proved
    writable; CacheFolderError (one line naming the folder and TAGGER_HOME)
    when it cannot be: a read-only place, a file where a folder should be."""
    folder = os.path.join(cache_home(), *parts)
    try:
        fileio.make_writable_folder(folder)
    except OSError as error:
        blocker = folder
        while blocker != os.path.dirname(blocker) and not os.path.lexists(blocker):
            blocker = os.path.dirname(blocker)
        reason = (f"{blocker} is a file, not a folder" if not os.path.isdir(blocker)
                  else fileio.os_error_reason(error))
        raise CacheFolderError(folder, reason) from None
    return folder


@dataclasses.dataclass(frozen=True)
class Checksum:
    """A file's size in bytes and the 64 hex digits of its sha256."""

    size: int
    sha256: str

    @classmethod
    def of(cls, path: str) -> Checksum:
        digest = hashlib.sha256()
        with open(path, "rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
        return cls(os.path.getsize(path), digest.hexdigest())

    @classmethod
    def of_bytes(cls, data: bytes) -> Checksum:
        return cls(len(data), hashlib.sha256(data).hexdigest())

    def __str__(self) -> str:
        return f"{self.size:,} bytes, sha256 {self.sha256[:12]}..."


def keyed_entry(folder: str, fields: dict, suffix: str) -> str:
    """The path in the cache's `folder` of the entry that `fields` (what
    the entry depends on, JSON) describe: named by their SHA-256."""
    key = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
    return os.path.join(cache_home(), folder, key + suffix)


def mismatch(path: str, expected: Checksum) -> tuple[str, Checksum | None]:
    """('', the file's Checksum) when `path` is the file `expected`
    describes, else (what differs, in words, and None when the size
    already differed and the file was not hashed)."""
    size = os.path.getsize(path)
    if size != expected.size:
        return f"{size:,} bytes, not {expected.size:,}", None
    found = Checksum.of(path)
    if found.sha256 != expected.sha256:
        return f"sha256 {found.sha256[:12]}..., not {expected.sha256[:12]}...", found
    return "", found


def write_record(record: str, found: Checksum, **fields) -> None:
    """Writes the record `record` (JSON, atomically) of a file whose
    Checksum is `found`: `fields` with its "bytes" and "sha256". Write it
    after the file: a record vouches only for a file that is complete."""
    fileio.write_atomic(record, json.dumps(
        {**fields, "bytes": found.size, "sha256": found.sha256}, indent=2) + "\n")


def read_record(record: str) -> dict | None:
    """The record `write_record` wrote, as a dict; None when there is none,
    it cannot be read, or it holds no integer "bytes" and text "sha256"."""
    try:
        with open(record, encoding="utf-8") as file:
            value = json.load(file)
    except (OSError, ValueError):
        return None
    if not (isinstance(value, dict) and isinstance(value.get("bytes"), int)
            and isinstance(value.get("sha256"), str)):
        return None
    return value


# of `user_cache_home()`: a name no earlier version made (theirs, `jax`, was
# made with the umask's mode, which may let the user's group write to it)
JAX_FOLDER = "jax-programs"
PRIVATE_MODE = 0o700  # a folder only its owner reads and writes


def private_folder_problem(folder: str) -> str | None:
    """Why others could write into `folder` (it is another user's, or its
    mode lets its group or anyone write), in words; None when only its
    owner, this user, can (and where permissions are no mode bits: Windows)."""
    if not hasattr(os, "getuid"):
        return None
    found = os.stat(folder)
    if found.st_uid != os.getuid():
        return f"it belongs to user id {found.st_uid}, not to you ({os.getuid()})"
    if found.st_mode & 0o022:
        return f"others may write to it (mode {found.st_mode & 0o777:o})"
    return None


def jax_programs_folder(log) -> str | None:
    """The folder where JAX keeps the programs it compiles: `JAX_FOLDER` of
    `user_cache_home()` (never of TAGGER_HOME, which a team may share),
    made with PRIVATE_MODE. JAX loads the native code it finds there
    unchecked, so a folder others could write to is not used: None, and
    `log` says why, once a process; None too (silently) for one that
    cannot be made."""
    folder = os.path.join(user_cache_home(), JAX_FOLDER)
    try:
        os.makedirs(folder, mode=PRIVATE_MODE, exist_ok=True)
        problem = private_folder_problem(folder)
        if problem is None:
            fileio.make_writable_folder(folder)
            return folder
    except OSError:
        return None
    _say_once(log, f"warning: JAX's compiled programs are not kept in {folder}: {problem}, "
                   "and JAX would run the code it finds there; make it yours alone "
                   f"(chmod {PRIVATE_MODE:o}) or remove it")
    return None


_SAID = set()  # the lines `_say_once` said


def _say_once(log, line: str) -> None:
    if line not in _SAID:
        _SAID.add(line)
        log(line)


def keep_jax_programs(log=None) -> None:
    """JAX keeps the programs it compiles in `jax_programs_folder` (unless
    JAX_COMPILATION_CACHE_DIR says where): a resumed run, eval.py after
    train.py and a second run of one model compile nothing again. Set
    before JAX is imported; `log` (default: the standard error) says why
    a folder others could write to is left unused."""
    import sys

    if "JAX_COMPILATION_CACHE_DIR" in os.environ or "jax" in sys.modules:
        return
    folder = jax_programs_folder(log or (lambda line: print(line, file=sys.stderr)))
    if folder is not None:
        os.environ["JAX_COMPILATION_CACHE_DIR"] = folder
