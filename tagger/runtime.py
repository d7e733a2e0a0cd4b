"""The process's runtime set-up, in one place: TensorFlow's pooling host
allocator, TensorFlow imported without its start-up chatter, freed heap
kept for reuse, and native libraries' stderr messages hidden.

Imports no TensorFlow until `quiet_tensorflow` is called; every command
(tagger.cli.main), the public API, the Beam workers, the tests and the
benchmarks set their process up with these functions.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import sys


def use_pooling_cpu_allocator() -> None:
    """Makes TensorFlow keep the host memory it frees for reuse (its BFC
    allocator) instead of handing every large tensor back to the system:
    fresh pages for each batch of 59049-sample windows and each layer's
    output cost page faults that slow the training reader and the
    sample-level CNN down (docs/performance.md, "TensorFlow's host
    memory"). Takes effect only before TensorFlow's first
    tensor; TF_CPU_ALLOCATOR_USE_BFC=false in the environment is kept. On
    a build with oneDNN (x86's) oneDNN's allocator pools large tensors
    either way unless TF_ONEDNN_USE_SYSTEM_ALLOCATOR=true too."""
    os.environ.setdefault("TF_CPU_ALLOCATOR_USE_BFC", "true")


def tensorflow_installed() -> bool:
    """Whether TensorFlow can be imported here (without importing it)."""
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):
        return False


def quiet_tensorflow() -> None:
    """Imports TensorFlow with its C++ start-up chatter hidden (it logs to
    stderr before its log level applies) unless TF_CPP_MIN_LOG_LEVEL=0 asks
    for every message; with the pooling CPU allocator (see
    `use_pooling_cpu_allocator`). The platforms are looked up while stderr is
    hidden too: on a machine without a GPU, CUDA's "failed call to cuInit"
    is an error-level line that TF_CPP_MIN_LOG_LEVEL=2 would still print at
    the first operation."""
    use_pooling_cpu_allocator()
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
        import tensorflow  # noqa: F401
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        import tensorflow

        tensorflow.config.list_physical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    import absl.logging
    absl.logging.set_verbosity(absl.logging.ERROR)


def prepare_command_process(tensorflow: bool = True) -> None:
    """What every command does before its work: keeps freed host memory for
    reuse (`tagger.host_memory`) and imports TensorFlow quietly where it is
    installed (a command that needs it and runs where it is not fails
    when it first uses it). A command that may run without TensorFlow
    (reading a results database, training under JAX) passes
    `tensorflow=False`: the pooling allocator is still set for a later
    import, which must be `quiet_tensorflow` too, and the start costs no
    TensorFlow import."""
    from tagger.host_memory import keep_freed_heap

    keep_freed_heap()
    if tensorflow and tensorflow_installed():
        quiet_tensorflow()
        return
    use_pooling_cpu_allocator()
    if importlib.util.find_spec("absl") is not None:  # Keras's warnings, as quiet_tensorflow
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)


def _handlers_moved(stream, to) -> None:
    """Points every logging handler that writes to `stream` at `to`."""
    logging = sys.modules.get("logging")
    if logging is None:
        return
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:  # a placeholder in loggerDict has no handlers
        for handler in list(getattr(logger, "handlers", ())):
            if isinstance(handler, logging.StreamHandler) and handler.stream is stream:
                handler.setStream(to)


@contextlib.contextmanager
def native_stderr_silenced(enabled: bool = True, keep_python_stderr: bool = True):
    """Points file descriptor 2 at /dev/null for native libraries while
    Python's `sys.stderr` keeps writing where it wrote before
    (`keep_python_stderr=False`: file descriptor 2 only, `sys.stderr` left
    alone, as a decoding worker process wants it).

    libmpg123 (inside libsndfile) prints resync notes for a damaged MP3 and
    TFLite announces its delegates, straight to file descriptor 2; a CLI that
    promises one line per problem hides them. Swaps process-wide state: use
    it around work of one thread at a time. A logging handler made meanwhile
    on `sys.stderr` (absl's first log call does `logging.basicConfig()`) is
    pointed back at the `sys.stderr` of before when it ends: no handler
    writes to the stand-in it closes."""
    if not enabled:
        yield
        return
    try:
        python_uses_fd2 = keep_python_stderr and sys.stderr.fileno() == 2
    except (AttributeError, ValueError, io.UnsupportedOperation):
        python_uses_fd2 = False  # captured or replaced: not affected by fd 2
    if keep_python_stderr:
        sys.stderr.flush()
    saved = os.dup(2)
    original, stand_in = sys.stderr, None
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        if python_uses_fd2:
            stand_in = io.TextIOWrapper(os.fdopen(os.dup(saved), "wb", buffering=0),
                                        encoding=original.encoding, errors="backslashreplace",
                                        line_buffering=True, write_through=True)
            sys.stderr = stand_in
        yield
    finally:
        if stand_in is not None:
            stand_in.flush()
            _handlers_moved(stand_in, original)
            stand_in.close()
            sys.stderr = original
        os.dup2(saved, 2)
        os.close(saved)
