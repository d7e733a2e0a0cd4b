"""One writer per folder: a lock file naming its owner (pid, host, start time).

    with folder_lock(lock_path, out_dir, "build", "choose another --out-dir"):
        ...  # write into out_dir

The builders (`records.writer.build_lock`, `<out-dir>/.build/lock.json`) and
training runs (`<run dir>/.lock.json`) hold one while they write. A second
writer refuses in one line naming the owner; with `wait` (the pretrained
store's entries, the tests' shared fixtures) it waits for the owner to
finish instead. A lock whose process is gone (provable only on this host)
or that cannot be read is taken over with one line saying so (`log`,
default stderr). The lock is created atomically on a local file system
(written under a private name, then hard-linked into place: the link fails
if a lock exists, and a lock is never half-written).

The same test of a writer that is gone clears what a killed writer left in
a folder: `remove_stale_temporaries` removes the temporary files
(`fileio.temporary_path`) whose writer no longer runs on this host.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time

from tagger import fileio
from tagger.errors import UserError


@contextlib.contextmanager
def folder_lock(path: str, folder: str, what: str, instead: str = "", log=None,
                label: str = "folder", wait: bool = False):
    """Holds the lock file `path` for writing into `folder` while the block
    runs. `what` names the writer ("build", "training run"), `label` the
    folder in messages ("out dir", "run folder") and `instead` the way out
    for a second writer ("choose another --out-dir"), who refuses; with
    `wait` it waits until the lock is free. `log(line)` receives the line
    saying a stale lock was taken over, or that a writer waits."""
    try:
        fileio.makedirs(os.path.dirname(path) or ".")
    except Exception as error:
        raise UserError(f"cannot write to {label} {folder!r}: "
                        f"{fileio.describe_os_error(error)}") from None
    owner = {"pid": os.getpid(), "host": socket.gethostname(),
             "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _take(path, owner, folder, what, instead,
          log or (lambda line: print(line, file=sys.stderr, flush=True)), label, wait)
    try:
        yield
    finally:
        try:
            if read_lock(path) == owner:
                fileio.remove(path)
        except Exception:
            pass


def _take(path: str, owner: dict, folder: str, what: str, instead: str, log,
          label: str, wait: bool) -> None:
    data = json.dumps(owner).encode()
    tries, waiting = 0, None
    while tries < 3:
        if fileio.is_local(path):
            private = fileio.temporary_path(path)
            try:
                with open(private, "wb") as f:
                    f.write(data)
                os.link(private, path)
                return
            except FileExistsError:
                pass
            except OSError as error:
                raise UserError(f"cannot write to {label} {folder!r}: "
                                f"{fileio.describe_os_error(error)}") from None
            finally:
                fileio.remove_quietly(private)
        elif not fileio.exists(path):  # no atomic create on every file system
            fileio.write_atomic(path, data)
            if read_lock(path) == owner:
                return
        holder = read_lock(path)
        if holder is None:  # removed meanwhile: try again
            tries += 0 if wait else 1
            continue
        if is_stale(holder):
            fileio.remove_quietly(path)
            log(f"note: taking over the lock of a {what} that no longer runs "
                f"({describe_owner(holder)}): {path}")
            tries += 1
            continue
        if not wait:
            raise UserError(
                f"another {what} ({describe_owner(holder)}) is writing to {folder!r}; wait "
                f"for it to finish or {instead} (if no such {what} runs, remove {path})")
        if waiting != holder:
            waiting = holder
            log(f"waiting for the {what} of {describe_owner(holder)} to finish (if no "
                f"such {what} runs, remove {path})")
        time.sleep(0.1)
    raise UserError(f"cannot take the lock {path}; remove it and try again")


def describe_owner(holder: dict) -> str:
    if not holder:
        return "an unreadable lock"
    return (f"pid {holder.get('pid')} on {holder.get('host')}, started "
            f"{holder.get('started')}")


def read_lock(path: str):
    """The lock's owner dict; None when there is no lock; {} for one that
    cannot be read (its writer died before finishing it)."""
    try:
        holder = json.loads(fileio.read_text(path))
    except FileNotFoundError:
        return None
    except Exception:
        return {}
    return holder if isinstance(holder, dict) else {}


def is_stale(holder: dict) -> bool:
    """True for a lock whose process is gone (only provable on this host),
    or one that cannot be read."""
    pid = holder.get("pid")
    if holder.get("host") != socket.gethostname() or not isinstance(pid, int):
        return not holder
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def remove_stale_temporaries(folder: str) -> list[str]:
    """Removes, from local `folder`, the temporary files this project's
    writers make (`fileio.temporary_path`: the name says which process on
    which host wrote it) whose writer is gone (`is_stale`: provable only on
    this host); returns the names removed. Nothing else is touched: not a
    name of another form (a user's `NAME.tmp`, a temporary of an older
    version, which names no writer), not one whose writer runs or ran on
    another host, not a link or a folder of such a name."""
    import stat

    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        writer = fileio.temporary_writer(name)
        if writer is None or not is_stale(writer):
            continue
        path = os.path.join(folder, name)
        try:
            if stat.S_ISREG(os.lstat(path).st_mode):
                os.remove(path)
                removed.append(name)
        except OSError:  # gone meanwhile, or not ours to remove: left as it is
            pass
    return sorted(removed)
