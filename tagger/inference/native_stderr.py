"""Keeping native libraries' chatter off the terminal.

libmpg123 (inside libsndfile) prints resync notes for a damaged MP3 and
TFLite announces its delegates, straight to file descriptor 2; a CLI that
promises one line per problem hides them while Python keeps its stderr.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys


@contextlib.contextmanager
def native_stderr_silenced(enabled: bool = True):
    """Points file descriptor 2 at /dev/null for native libraries while
    Python's `sys.stderr` keeps writing where it wrote before."""
    if not enabled:
        yield
        return
    try:
        python_uses_fd2 = sys.stderr.fileno() == 2
    except (AttributeError, ValueError, io.UnsupportedOperation):
        python_uses_fd2 = False  # captured or replaced: not affected by fd 2
    sys.stderr.flush()
    saved = os.dup(2)
    original = sys.stderr
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        if python_uses_fd2:
            sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(saved), "wb", buffering=0),
                                          encoding=original.encoding,
                                          errors="backslashreplace", line_buffering=True,
                                          write_through=True)
        yield
    finally:
        if python_uses_fd2:
            sys.stderr.flush()
            sys.stderr.close()
            sys.stderr = original
        os.dup2(saved, 2)
        os.close(saved)
