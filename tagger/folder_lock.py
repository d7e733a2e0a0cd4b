"""One writer per folder: a lock file naming its owner (pid, host, start time).

    with folder_lock(lock_path, out_dir, "build", "choose another --out-dir"):
        ...  # write into out_dir

The builders (`records.writer.build_lock`, `<out-dir>/.build/lock.json`) and
training runs (`<run dir>/.lock.json`) hold one while they write. A second
writer refuses in one line naming the owner; a lock whose process is gone
(provable only on this host) or that cannot be read is taken over with one
line saying so (`log`, default stderr). The lock is created atomically on a
local file system (written under a private name, then hard-linked into
place: the link fails if a lock exists, and a lock is never half-written).
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
def folder_lock(path: str, folder: str, what: str, instead: str, log=None,
                label: str = "folder"):
    """Holds the lock file `path` for writing into `folder` while the block
    runs. `what` names the writer ("build", "training run"), `label` the
    folder in messages ("out dir", "run folder") and `instead` the way out
    for a second writer ("choose another --out-dir"). `log(line)` receives
    the line saying a stale lock was taken over."""
    try:
        fileio.makedirs(os.path.dirname(path) or ".")
    except Exception as error:
        raise UserError(f"cannot write to {label} {folder!r}: "
                        f"{fileio.describe_os_error(error)}") from None
    owner = {"pid": os.getpid(), "host": socket.gethostname(),
             "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _take(path, owner, folder, what, instead,
          log or (lambda line: print(line, file=sys.stderr, flush=True)), label)
    try:
        yield
    finally:
        try:
            if read_lock(path) == owner:
                fileio.remove(path)
        except Exception:
            pass


def _take(path: str, owner: dict, folder: str, what: str, instead: str, log,
          label: str) -> None:
    data = json.dumps(owner).encode()
    for _ in range(3):
        if fileio.is_local(path):
            private = f"{path}.{owner['pid']}.tmp"
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
            continue
        if is_stale(holder):
            fileio.remove_quietly(path)
            log(f"note: taking over the lock of a {what} that no longer runs "
                f"({describe_owner(holder)}): {path}")
            continue
        raise UserError(
            f"another {what} ({describe_owner(holder)}) is writing to {folder!r}; wait for "
            f"it to finish or {instead} (if no such {what} runs, remove {path})")
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
