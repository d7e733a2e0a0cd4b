"""Where a command writes what the user named: the checks before the work
(a folder or FIFO in its place, a place that refuses writes, an input it
would destroy, another program's file without --overwrite) and the write
itself, each failure one UserError line naming the flag and the path.

The writing is `tagger.fileio`'s (whole or not at all); this is the policy
around it.
"""

from __future__ import annotations

import errno
import os

from tagger import fileio
from tagger.errors import UserError


def output_error(what: str, path: str, error: Exception):
    """The UserError for a failed write of `what` (e.g. "--out-json") to `path`."""
    return UserError(f"cannot write {what} {str(path)!r}: {fileio.describe_os_error(error)}")


def reported(what: str, path: str):
    """A context where a failed write (an OSError, or tf.errors.OpError for
    gs:// and other schemes) is raised as `output_error`."""
    return fileio.failed_writes_as(lambda error: output_error(what, path, error))


def write_output(path: str, data: bytes | str, what: str) -> None:
    """`fileio.write_atomic` for a file the user named: any failure is one UserError
    line naming `what` and the path, and nothing half-written stays behind."""
    refused = fileio.not_a_file_error(path)
    if refused:
        raise output_error(what, path, refused)
    parent = os.path.dirname(str(path).rstrip("/"))
    with reported(what, path):
        if parent:
            fileio.make_folder(parent)
        fileio.write_atomic(path, data)


def prepare_output_dir(path: str, what: str, named: str | None = None) -> None:
    """Creates folder `path` (with parents) and proves it can be written to;
    a file in the way, a read-only place or a full disk is one UserError
    naming `named` (default: `path`; e.g. the file the user gave, which is
    to go into this folder)."""
    with reported(what, path if named is None else named):
        fileio.make_writable_folder(path)


def check_output_file(path: str, what: str) -> None:
    """Before long work whose result goes to file `path`: a UserError now if
    the file could not be written then (a folder in its place, a file among
    its parents, a folder that refuses writes). Creates nothing; paths with
    a scheme are left to `write_output`."""
    path = str(path)
    if not fileio.is_local(path):
        return
    refused = fileio.not_a_file_error(path)
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
    if not fileio.is_local(path):
        return None
    real = _real(path)
    for given in inputs:
        if given is not None and fileio.is_local(str(given)) and _real(given) == real:
            return str(given)
    for folder, recursive, reads in walked:
        if not fileio.is_local(str(folder)) or not reads(os.path.basename(real)):
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

    Writing itself stays atomic (`write_output`, `fileio.write_atomic`). Paths with
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
    if overwrite or not fileio.is_local(path) or not os.path.isfile(path):
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
