"""File access that works for local paths and for any tf.io.gfile scheme.

Local paths use the standard library (cheap, no TensorFlow import, fine in
worker processes); paths with a scheme (gs://, ram://, ...) go through
tf.io.gfile, imported on first use. Every file is written whole or not at
all through `replacing` (a temporary name beside it, flushed to the disk,
then a rename, then its folder flushed), and a failed access is described
in one line (`describe_os_error`). What a command checks before writing a
file the user named is `tagger.destination`; the cache folder is
`tagger.cache`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil

from tagger.config import join_path
from tagger.errors import UserError

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_local(path: str) -> bool:
    return not _SCHEME.match(str(path))


# a backslash, and each byte that does not decode (held as the surrogate
# U+DC80..U+DCFF by "surrogateescape", `os.fsdecode`)
_ESCAPES = {ord("\\"): "\\\\", **{0xDC00 + byte: f"\\x{byte:02x}" for byte in range(0x80, 0x100)}}
_UNESCAPE = re.compile(r"\\(\\|x[89a-fA-F][0-9a-fA-F])")


def path_text(path) -> str:
    """`path` as text that any UTF-8 output can hold (a report, a CSV, a
    JSON string, a zip entry's name, a line on a terminal), one text per
    name and reversible (`path_from_text`): a valid UTF-8 name is unchanged
    except that each backslash is doubled (`a\\\\b.wav`); a name whose bytes
    are not (a file named on a system with another encoding, as
    `os.fsencode` gives them back) has each byte that does not decode
    written as `\\xNN`: `bad\\xff.wav`. So a file literally named
    `bad\\xff.wav` is `bad\\\\xff.wav`, never the other file's text. (A
    name without a backslash has the text it had before backslashes were
    doubled.)"""
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = path.decode("utf-8", "surrogateescape")
    text = path.translate(_ESCAPES)
    if is_utf8(text):
        return text
    # a lone surrogate that no byte stands for: no file's name on POSIX
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _escaped_byte(escape: str) -> bytes:
    return b"\\" if escape == "\\" else bytes([int(escape[1:], 16)])


def path_from_text(text: str) -> str:
    """The path whose `path_text` is `text`, as `os.fsdecode` holds it
    (`os.fsencode` gives its exact bytes): `\\\\` is a backslash and
    `\\xNN` (NN from 80 to ff) the byte NN. A backslash that starts
    neither is itself, so the text an earlier version wrote of a name with
    a backslash (not doubled then) reads back as that name."""
    parts = _UNESCAPE.split(text)  # text, escape, text, escape, ..., text
    data = b"".join(_escaped_byte(part) if i % 2 else part.encode("utf-8", "surrogateescape")
                    for i, part in enumerate(parts))
    return data.decode("utf-8", "surrogateescape")


def is_utf8(text: str) -> bool:
    """Whether `text` can be written as UTF-8: false for a name whose bytes
    are not valid UTF-8, which Python holds with each such byte as a
    surrogate (`os.fsdecode`, `names_text`)."""
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


def names_text(data: bytes, errors: str = "surrogateescape") -> str:
    """The UTF-8 text of a file that names files (an annotations CSV, a
    split list, a labels CSV), each byte that does not decode kept as a
    surrogate as `os.fsdecode` keeps a name's: a name written there by a
    system with another encoding is the name of its file (`os.fsencode`
    gives its bytes back), not an error. `is_utf8` tells such a name. A
    byte-order mark, as a spreadsheet or an editor saves one, is not text:
    UTF-8's is dropped, and a file that starts with UTF-16's (Excel's
    Unicode text) is UTF-16. `errors="strict"`: text that is not UTF-8 is
    an error (UnicodeDecodeError), for a file of names that are not paths
    (a list of tags)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", "replace" if errors != "strict" else errors) \
            .removeprefix("\ufeff")
    return data.decode("utf-8", errors).removeprefix("\ufeff")


def _gfile():
    """tf.io.gfile: TensorFlow's file systems (gs://, ram://, ...); kept
    off the accelerators under another Keras backend (`backends`). A
    UserError where TensorFlow is not installed."""
    from tagger.backends import tensorflow_for_input

    tf = tensorflow_for_input()
    if tf is None:
        raise UserError("paths other than local ones (gs://, ...) are read through "
                        "TensorFlow's file systems, and TensorFlow is not installed here: "
                        "pip install tensorflow-cpu, or copy the files to a local folder")
    return tf.io.gfile


def _local_or_gfile(path, local, gfile: str, *args, **gfile_options):
    """`local(path, *args)` for a local path, else tf.io.gfile's function
    named `gfile` with the same arguments and `gfile_options`."""
    path = str(path)
    if is_local(path):
        return local(path, *args)
    return getattr(_gfile(), gfile)(path, *args, **gfile_options)


def exists(path: str) -> bool:
    return _local_or_gfile(path, os.path.exists, "exists")


def isdir(path: str) -> bool:
    return _local_or_gfile(path, os.path.isdir, "isdir")


def makedirs(path: str) -> None:
    _local_or_gfile(path, lambda local: os.makedirs(local, exist_ok=True), "makedirs")


def listdir(path: str) -> list[str]:
    return sorted(name.rstrip("/") for name in _local_or_gfile(path, os.listdir, "listdir"))


def remove(path: str) -> None:
    _local_or_gfile(path, os.remove, "remove")


def rmdir(path: str) -> None:
    """Removes an empty folder."""
    _local_or_gfile(path, os.rmdir, "remove")


def rmtree(path: str) -> None:
    """Removes folder `path` and everything in it."""
    _local_or_gfile(path, shutil.rmtree, "rmtree")


def rename(src: str, dst: str) -> None:
    """Atomic on local file systems; overwrites `dst`."""
    src, dst = str(src), str(dst)
    if is_local(src):
        os.replace(src, dst)
    else:
        _gfile().rename(src, dst, overwrite=True)


def open_file(path: str, mode: str = "r"):
    return _local_or_gfile(path, open, "GFile", mode)


def read_bytes(path: str) -> bytes:
    with open_file(path, "rb") as f:
        return f.read()


def read_text(path: str) -> str:
    with open_file(path, "r") as f:
        return f.read()


def temporary_path(path: str) -> str:
    """A fresh name beside `path` to write it under before renaming it into
    place: `.NAME.tagger-<pid>-<host>-<8 hex>.tmp` in the same folder (so the
    rename stays on one file system), never a name the user may have, like
    `NAME.tmp`. The writer's pid and a digest of its host's name make it
    recognisable as ours, so a later run can tell when its writer is gone
    and remove it (`temporary_writer`, `folder_lock.remove_stale_temporaries`).
    A NAME too long for the file system's 255 bytes is shortened."""
    import secrets

    head, sep, name = str(path).rpartition("/")
    suffix = f".tagger-{os.getpid()}-{host_digest()}-{secrets.token_hex(4)}.tmp"
    room = 255 - 1 - len(suffix)
    encoded = os.fsencode(name)  # measured as its bytes
    if len(encoded) > room:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:  # a name that is not UTF-8 stays its bytes
            name = os.fsdecode(encoded[:room])
        else:  # a UTF-8 name loses whole characters only
            name = encoded[:room].decode("utf-8", "ignore")
    return f"{head}{sep}.{name}{suffix}"


def host_digest(host: str | None = None) -> str:
    """8 hex digits standing for `host` (default: this host's name)."""
    import hashlib
    import socket

    host = socket.gethostname() if host is None else host
    return hashlib.sha256(host.encode()).hexdigest()[:8]


_TEMPORARY = re.compile(r"^\.(.+)\.tagger-(\d+)-([0-9a-f]{8})-[0-9a-f]{8}\.tmp$")
_OLD_TEMPORARY = re.compile(r"^\.(.+)\.[0-9a-f]{12}\.tmp$")  # before the writer was named


def temporary_of(name: str) -> str | None:
    """The file name that `name` (a file name, no folder) is a temporary of,
    as `temporary_path` makes them (or made them before they named their
    writer), or None."""
    match = _TEMPORARY.match(name) or _OLD_TEMPORARY.match(name)
    return match.group(1) if match else None


def temporary_writer(name: str) -> dict | None:
    """{"pid", "host"} of the process that made the temporary file `name`
    (`temporary_path`), as a lock names its owner (`folder_lock.is_stale`
    reads it): "host" is this host's name when the digest is this host's,
    else the digest. None for any other name."""
    match = _TEMPORARY.match(name)
    if match is None:
        return None
    import socket

    digest = match.group(3)
    return {"pid": int(match.group(2)),
            "host": socket.gethostname() if digest == host_digest() else digest}


def not_a_file(path: str) -> str | None:
    """What `path` is when it exists and is not a regular file ("a folder",
    "a FIFO (named pipe)", "a device", "a socket"), which writing must not
    replace; None when it is a file or does not exist."""
    path = str(path)
    if not is_local(path):
        return "a folder" if isdir(path) else None
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError:  # absent, or a part of the path is missing: the write says why
        return None
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a socket" if stat.S_ISSOCK(mode) else "not a regular file"


def not_a_file_error(path: str) -> OSError | None:
    """The OSError to report when `path` is not a regular file (`not_a_file`),
    or None when it may be written."""
    kind = not_a_file(path)
    if kind is None:
        return None
    if kind == "a folder":
        return OSError(errno.EISDIR, "is a folder")
    return OSError(None, f"it is {kind}, not a regular file, and writing would replace it; "
                         "give a file's name")


@contextlib.contextmanager
def replacing(path: str, mode: str | None = None, check=None, durable: bool = True):
    """Writes `path` whole or not at all: yields a fresh temporary name
    beside it (`temporary_path`), or with `mode` ("wb", "w") that file
    opened, and renames the temporary over `path` when the block ends. When
    the block fails (a full disk, say) the temporary is removed and `path`
    is left as it was; so it is when `check()`, called just before the
    rename, raises.

    A local temporary is flushed to the disk (fsync) before the rename and
    its folder after it, so that after a power cut `path` holds the old
    bytes or the new ones, never an empty file (file systems without
    ext4's flush on rename, XFS for one, may otherwise keep the rename
    and lose the data). `durable=False` leaves the flushes out: whole or
    absent after a kill still, not after a power cut (a generated file,
    made again).

        with fileio.replacing(path) as tmp:
            sqlite3.connect(tmp).close()
        with fileio.replacing(path, "wb") as f:
            np.save(f, array)
    """
    tmp = temporary_path(path)
    try:
        if mode is None:
            yield tmp
        else:
            with open_file(tmp, mode) as f:
                yield f
        move_into_place(tmp, path, check, durable)
    except BaseException:
        remove_quietly(tmp)
        raise


def move_into_place(written: str, path: str, check=None, durable: bool = True) -> None:
    """Renames `written`, complete, over `path` as `replacing` does: a local
    `written` (a file, or a folder with everything in it, `sync_tree`)
    flushed to the disk first and its folder after; `check()`, when given,
    called just before the rename. For what is written under a name of its
    own before it is put in place (a resumable download's `.part`, a file
    another program wrote in a scratch folder). `durable=False`: no flush."""
    local = is_local(written) and durable
    if local:
        sync_tree(written)
    if check is not None:
        check()
    rename(written, path)
    if local:
        sync(os.path.dirname(os.path.abspath(path)))


# what fsync answers on a file system that cannot flush a file or folder
_CANNOT_SYNC = {errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP}


def sync_tree(path: str) -> None:
    """Flushes the local file `path`, or the folder `path` with every file
    and folder in it, each folder after what it holds, in one pass over the
    tree (`sync`). Links and special files (a FIFO) are not opened: the
    folder that holds them records them."""
    if os.path.isdir(path) and not os.path.islink(path):
        folders = []
        try:
            with os.scandir(path) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        folders.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        sync(entry.path)
        except PermissionError:  # a folder that cannot be listed: flushed as `sync` can
            pass
        for folder in folders:
            sync_tree(folder)
    sync(path)


def sync(path: str) -> None:
    """Flushes the local file or folder `path` to its disk (fsync); nothing
    for a folder the system will not open (Windows, or no read permission)
    or a file system that cannot flush it."""
    folder = os.path.isdir(path)
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if folder else 0))
    except PermissionError:
        if folder:
            return
        fd = os.open(path, os.O_WRONLY)  # a file that this user may write, not read
    try:
        os.fsync(fd)
    except OSError as error:
        if error.errno not in _CANNOT_SYNC:
            raise
    finally:
        os.close(fd)


def write_atomic(path: str, data: bytes | str, durable: bool = True) -> None:
    """Writes `data` to `path` through `replacing` (`durable`: flushed to
    the disk). A `path` that is a folder, a FIFO or a device is never
    replaced: that is a UserError naming it."""
    refused = not_a_file_error(path)
    if refused:
        raise UserError(f"cannot write {str(path)!r}: {describe_os_error(refused)}")
    with replacing(path, "wb", durable=durable) as f:
        f.write(data.encode() if isinstance(data, str) else data)


def is_write_error(error: Exception) -> bool:
    """Whether `error` is a failed file access: an OSError, or a TensorFlow
    error (tf.io.gfile's, for gs:// and other schemes)."""
    return isinstance(error, OSError) or type(error).__module__.startswith("tensorflow")


@contextlib.contextmanager
def failed_writes_as(make_error):
    """A failed write in the block (`is_write_error`) is raised as
    `make_error(error)`; any other error passes unchanged."""
    try:
        yield
    except Exception as error:
        if not is_write_error(error):
            raise
        raise make_error(error) from None


def remove_quietly(path: str) -> None:
    """Removes `path` if it exists; a failure to do so is ignored."""
    try:
        if exists(path):
            remove(path)
    except Exception:  # the original error is the one worth reporting
        pass


_ADVICE = {  # errno: (why, what to do)
    errno.ENOSPC: ("the disk is full", "free some space there or choose another place"),
    errno.EDQUOT: ("the disk quota is used up", "free some space or choose another place"),
    errno.EROFS: ("the file system is read-only", "choose a writable place"),
    errno.EACCES: ("permission denied", "choose a place you may write to"),
    errno.EPERM: ("permission denied", "choose a place you may write to"),
    errno.ENOTDIR: ("a part of the path is a file, not a folder", "choose another path"),
    errno.EISDIR: ("it is a folder", "give a file name"),
    errno.ENAMETOOLONG: ("the name is too long", ""),
}


def os_error_reason(error: Exception) -> str:
    """Why a write failed, in a few words, without advice."""
    code = getattr(error, "errno", None)
    if code in _ADVICE:
        return _ADVICE[code][0]
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return text.splitlines()[0]


def describe_os_error(error: Exception) -> str:
    """One line saying why a write failed and what to do about it."""
    code = getattr(error, "errno", None)
    if code in _ADVICE and _ADVICE[code][1]:
        return ": ".join(_ADVICE[code])
    return os_error_reason(error)


def make_folder(path: str) -> None:
    """makedirs, where a file in the way is ENOTDIR (not EEXIST)."""
    try:
        makedirs(path)
    except FileExistsError:
        raise OSError(errno.ENOTDIR, "not a directory", path) from None


def make_writable_folder(path: str) -> None:
    """Creates folder `path` (with parents) and proves it can be written to
    by writing and removing a probe file (its own, so that threads do not
    meet); OSError when it cannot be."""
    if exists(path) and not isdir(path):
        raise OSError(errno.ENOTDIR, "is a file")
    import secrets

    probe = join_path(str(path), f".write-test-{os.getpid()}-{secrets.token_hex(4)}")
    make_folder(path)
    with open_file(probe, "wb") as f:
        f.write(b"")
    remove(probe)


def head_bytes(path: str, count: int = 4096) -> bytes:
    with open(path, "rb") as f:
        return f.read(count)


def tail_bytes(path: str, count: int = 1 << 16) -> bytes:
    """The last `count` bytes of a local file."""
    with open(path, "rb") as f:
        f.seek(max(0, os.path.getsize(path) - count))
        return f.read()


def parquet_footer(path: str, size: int = 1 << 16) -> bytes | None:
    """The last `size` bytes of a Parquet file, where its metadata (and the
    key-value pairs a writer adds there) lie; None when `path` does not
    begin as a Parquet file does (`PAR1`)."""
    if not head_bytes(path, 4).startswith(b"PAR1"):
        return None
    return tail_bytes(path, size)


def first_line(path: str) -> str:
    """The first line of a file read as UTF-8 (without its end)."""
    return head_bytes(path).decode("utf-8", "replace").split("\n", 1)[0].rstrip("\r")
