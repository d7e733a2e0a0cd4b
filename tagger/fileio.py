"""File access that works for local paths and for any tf.io.gfile scheme.

Local paths use the standard library (cheap, no TensorFlow import, fine in
worker processes); paths with a scheme (gs://, ram://, ...) go through
tf.io.gfile, imported on first use.
"""

from __future__ import annotations

import errno
import os
import re

from tagger.config import join_path
from tagger.errors import UserError

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_local(path: str) -> bool:
    return not _SCHEME.match(str(path))


def path_text(path) -> str:
    """`path` as text that any UTF-8 output can hold (a report, a CSV, a
    JSON string, a zip entry's name, a line on a terminal): unchanged when
    it is valid UTF-8; a name whose bytes are not (a file named on a system
    with another encoding, as `os.fsencode` gives them back) has each byte
    that does not decode written as `\\xNN`: `bad\\xff.wav`."""
    path = os.fspath(path)
    if isinstance(path, bytes):
        return path.decode("utf-8", "backslashreplace")
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:
        pass
    try:
        return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:  # a lone surrogate that no byte stands for
        return path.encode("utf-8", "backslashreplace").decode("utf-8")


def _gfile():
    import tensorflow as tf
    return tf.io.gfile


def exists(path: str) -> bool:
    path = str(path)
    return os.path.exists(path) if is_local(path) else _gfile().exists(path)


def isdir(path: str) -> bool:
    path = str(path)
    return os.path.isdir(path) if is_local(path) else _gfile().isdir(path)


def makedirs(path: str) -> None:
    path = str(path)
    if is_local(path):
        os.makedirs(path, exist_ok=True)
    else:
        _gfile().makedirs(path)


def listdir(path: str) -> list[str]:
    path = str(path)
    names = os.listdir(path) if is_local(path) else _gfile().listdir(path)
    return sorted(name.rstrip("/") for name in names)


def remove(path: str) -> None:
    path = str(path)
    if is_local(path):
        os.remove(path)
    else:
        _gfile().remove(path)


def rmdir(path: str) -> None:
    """Removes an empty folder."""
    path = str(path)
    if is_local(path):
        os.rmdir(path)
    else:
        _gfile().remove(path)


def rmtree(path: str) -> None:
    """Removes folder `path` and everything in it."""
    path = str(path)
    if is_local(path):
        import shutil

        shutil.rmtree(path)
    else:
        _gfile().rmtree(path)


def rename(src: str, dst: str) -> None:
    """Atomic on local file systems; overwrites `dst`."""
    src, dst = str(src), str(dst)
    if is_local(src):
        os.replace(src, dst)
    else:
        _gfile().rename(src, dst, overwrite=True)


def open_file(path: str, mode: str = "r"):
    path = str(path)
    return open(path, mode) if is_local(path) else _gfile().GFile(path, mode)


def read_bytes(path: str) -> bytes:
    with open_file(path, "rb") as f:
        return f.read()


def read_text(path: str) -> str:
    with open_file(path, "r") as f:
        return f.read()


def cache_home() -> str:
    """Where tagger keeps what it downloads or converts once (the pretrained
    taggers, tag.py's int8 models): $TAGGER_HOME, else
    $XDG_CACHE_HOME/tagger, else ~/.cache/tagger. Its folders are made
    and written through `cache_folder`."""
    home = os.environ.get("TAGGER_HOME")
    if home:
        return os.path.abspath(os.path.expanduser(home))
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
        _make_writable_folder(folder)
    except OSError as error:
        blocker = folder
        while blocker != os.path.dirname(blocker) and not os.path.lexists(blocker):
            blocker = os.path.dirname(blocker)
        reason = (f"{blocker} is a file, not a folder" if not os.path.isdir(blocker)
                  else os_error_reason(error))
        raise CacheFolderError(folder, reason) from None
    return folder


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


def write_atomic(path: str, data: bytes | str) -> None:
    """Writes to a temporary name beside `path` (`temporary_path`), then
    renames it into place; on failure (a full disk, say) the temporary file
    is removed and `path` is left as it was. A `path` that is a folder, a
    FIFO or a device is never replaced: that is a UserError naming it."""
    refused = not_a_file_error(path)
    if refused:
        raise UserError(f"cannot write {str(path)!r}: {describe_os_error(refused)}")
    tmp = temporary_path(path)
    try:
        with open_file(tmp, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        rename(tmp, path)
    except BaseException:
        remove_quietly(tmp)
        raise


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


def output_error(what: str, path: str, error: Exception):
    """The UserError for a failed write of `what` (e.g. "--out-json") to `path`."""
    return UserError(f"cannot write {what} {str(path)!r}: {describe_os_error(error)}")


def write_output(path: str, data: bytes | str, what: str) -> None:
    """`write_atomic` for a file the user named: any failure is one UserError
    line naming `what` and the path, and nothing half-written stays behind."""
    refused = not_a_file_error(path)
    if refused:
        raise output_error(what, path, refused)
    parent = os.path.dirname(str(path).rstrip("/"))
    try:
        if parent:
            _makedirs_under_files(parent)
        write_atomic(path, data)
    except OSError as error:
        raise output_error(what, path, error) from None
    except Exception as error:  # tf.errors.OpError for gs:// and other schemes
        if type(error).__module__.startswith("tensorflow"):
            raise output_error(what, path, error) from None
        raise


def _makedirs_under_files(path: str) -> None:
    """makedirs, where a file in the way is ENOTDIR (not EEXIST)."""
    try:
        makedirs(path)
    except FileExistsError:
        raise OSError(errno.ENOTDIR, "not a directory", path) from None


def _make_writable_folder(path: str) -> None:
    """Creates folder `path` (with parents) and proves it can be written to
    by writing and removing a probe file (its own, so that threads do not
    meet); OSError when it cannot be."""
    if exists(path) and not isdir(path):
        raise OSError(errno.ENOTDIR, "is a file")
    import secrets

    probe = join_path(str(path), f".write-test-{os.getpid()}-{secrets.token_hex(4)}")
    _makedirs_under_files(path)
    with open_file(probe, "wb") as f:
        f.write(b"")
    remove(probe)


def prepare_output_dir(path: str, what: str, named: str | None = None) -> None:
    """Creates folder `path` (with parents) and proves it can be written to;
    a file in the way, a read-only place or a full disk is one UserError
    naming `named` (default: `path`; e.g. the file the user gave, which is
    to go into this folder)."""
    named = path if named is None else named
    try:
        _make_writable_folder(path)
    except OSError as error:
        raise output_error(what, named, error) from None
    except Exception as error:
        if type(error).__module__.startswith("tensorflow"):
            raise output_error(what, named, error) from None
        raise



def check_output_file(path: str, what: str) -> None:
    """Before long work whose result goes to file `path`: a UserError now if
    the file could not be written then (a folder in its place, a file among
    its parents, a folder that refuses writes). Creates nothing; paths with
    a scheme are left to `write_output`."""
    path = str(path)
    if not is_local(path):
        return
    refused = not_a_file_error(path)
    if refused:
        raise output_error(what, path, refused)
    folder = os.path.dirname(os.path.abspath(path))
    while not os.path.lexists(folder):
        folder = os.path.dirname(folder)
    if not os.path.isdir(folder):
        raise output_error(what, path, OSError(errno.ENOTDIR, "not a directory"))
    probe = os.path.join(folder, f".write-test-{os.getpid()}")
    try:
        with open(probe, "wb"):
            pass
        os.remove(probe)
    except OSError as error:
        raise output_error(what, path, error) from None


# -- outputs never destroy inputs ---------------------------------------------


def _real(path: str) -> str:
    return os.path.realpath(os.path.abspath(str(path)))


def input_clash(path: str, inputs=(), walked=()) -> str | None:
    """The input that writing `path` would destroy or feed back, or None.

    `inputs`: files and folders the command reads; the output may not be one
    of them (compared by resolved real path, so a link or `./x` is caught).
    `walked`: (folder, recursive, reads) for folders the command searches,
    where `reads(name) -> bool` tells whether the search takes a file of
    that name: an output it would take, written inside the folder, is
    refused too (the next run would read its own output as an input)."""
    path = str(path)
    if not is_local(path):
        return None
    real = _real(path)
    for given in inputs:
        if given is not None and is_local(str(given)) and _real(given) == real:
            return str(given)
    for folder, recursive, reads in walked:
        if not is_local(str(folder)) or not reads(os.path.basename(real)):
            continue
        top = _real(folder)
        parent = os.path.dirname(real)
        if parent == top or (recursive and parent.startswith(top.rstrip(os.sep) + os.sep)):
            return str(folder)
    return None


def check_destination(path: str, what: str, *, kind: str, recognise=None,
                      overwrite: bool = False, inputs=(), walked=()) -> None:
    """The one check before a command writes a file the user named
    (`what`, e.g. "--out"), so that outputs never destroy inputs:

    - `path` is one of `inputs`, or a file the search of a `walked` folder
      would read (`input_clash`): refused, always;
    - `path` exists, is not empty and is not this command's own earlier
      output (`recognise(path) -> bool` reads its format and header;
      `kind` names it, e.g. "a tag.py report"): refused without
      `overwrite`;
    - a folder, FIFO or device in its place, or a place that cannot be
      written: refused (`check_output_file`).

    Writing itself stays atomic (`write_output`, `write_atomic`). Paths with
    a scheme get the last check only."""
    path = str(path)
    clash = input_clash(path, inputs, walked)
    if clash is not None:
        same = _real(clash) == _real(path)
        raise UserError(
            f"{what} {path!r} is " + (f"the input {clash!r}" if same else
                                      f"inside the input folder {clash!r}, whose search "
                                      "would read it as an input")
            + "; writing it would destroy or feed back an input: choose another path")
    check_output_file(path, what)
    if overwrite or not is_local(path) or not os.path.isfile(path):
        return
    if os.path.getsize(path) == 0:
        return
    try:
        ours = bool(recognise(path)) if recognise is not None else False
    except Exception:  # unreadable or not in our format: not ours
        ours = False
    if not ours:
        raise UserError(f"{what} {path!r} exists and is not {kind}; pass --overwrite to "
                        "replace it, or choose another path (the file is left as it is)")


def head_bytes(path: str, count: int = 4096) -> bytes:
    with open(path, "rb") as f:
        return f.read(count)


def first_line(path: str) -> str:
    """The first line of a file read as UTF-8 (without its end)."""
    return head_bytes(path).decode("utf-8", "replace").split("\n", 1)[0].rstrip("\r")
