"""The state of Python's multiprocessing that its public API does not
reach, for `tagger.parallel`, `tagger.fork_server` and the benches: each
private attribute is read or written by one function here, and
tests/test_multiprocessing_internals.py checks each on the Python it runs
on, and fails loudly where one changes (checked with CPython 3.11; the
same attributes are in CPython 3.14's source).

    temporary_folder() -> str | None      its temporary folder, not made here
    forget_temporary_folder() -> str|None the next one made anew; the old kept
    fork_server_address() -> str | None   the running fork server's socket
    leave_fork_server() -> int | None     the next worker starts a new server
    main_loading()                        as a worker loads the main module
    is_loading_main() -> bool             whether this process is doing that
"""

from __future__ import annotations

import contextlib
import os
from multiprocessing import forkserver, process, util


def temporary_folder() -> str | None:
    """The folder multiprocessing keeps its sockets in (made at its first
    need in `tempfile`'s folder of that time: `util.get_temp_dir()`), or
    None while it has made none."""
    return process.current_process()._config.get("tempdir")


def forget_temporary_folder() -> str | None:
    """Makes multiprocessing take a new temporary folder at its next need,
    and cancels the old one's removal at exit; the old folder, or None."""
    folder = process.current_process()._config.pop("tempdir", None)
    if folder is not None:
        for finalizer in list(util._finalizer_registry.values()):  # its removal at exit
            if folder in (finalizer._args or ()):
                finalizer.cancel()
    return folder


def fork_server_address() -> str | None:
    """The Unix socket of this process's running fork server, or None."""
    return forkserver._forkserver._forkserver_address


def leave_fork_server() -> tuple[int, str | None] | None:
    """Makes the next worker start a new fork server, without waiting for
    this one (multiprocessing's own `_stop` waits for it, and fails where
    its socket is gone): closes the pipe whose end makes it exit once its
    workers have; (its pid, its socket's address), or None where none runs."""
    server = forkserver._forkserver
    with server._lock:
        if server._forkserver_pid is None:
            return None
        os.close(server._forkserver_alive_fd)
        left = server._forkserver_pid, server._forkserver_address
        server._forkserver_alive_fd = server._forkserver_pid = None
        server._forkserver_address = None
        return left


@contextlib.contextmanager
def main_loading():
    """Marks this process as loading the main module, as multiprocessing
    marks a worker that does (starting a process is refused meanwhile)."""
    process.current_process()._inheriting = True
    try:
        yield
    finally:
        del process.current_process()._inheriting


def is_loading_main() -> bool:
    """Whether this process is a worker, or a fork server, loading the
    main module (`main_loading`)."""
    return getattr(process.current_process(), "_inheriting", False)
