"""The private state of Python's multiprocessing that tagger.parallel and
its fork server rely on, read and written by tagger/multiprocessing_internals.py
alone: each function checked against what multiprocessing itself does, so
that a Python whose multiprocessing changes fails here, by name."""

import multiprocessing
import multiprocessing.spawn
import multiprocessing.util
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from tagger import multiprocessing_internals as internals
from tagger.parallel import forget_temporary_folder, stop_fork_server
from tests.checks import HANG_S, ROOT


def test_the_temporary_folder_is_the_one_multiprocessing_makes(monkeypatch):
    folder = tempfile.mkdtemp(prefix="mpi-")
    try:
        stop_fork_server()
        forget_temporary_folder()
        assert internals.temporary_folder() is None
        monkeypatch.setattr(tempfile, "tempdir", folder)
        made = multiprocessing.util.get_temp_dir()  # public: made at its first need
        assert internals.temporary_folder() == made and made.startswith(folder + os.sep)
        assert internals.forget_temporary_folder() == made
        assert internals.temporary_folder() is None and os.path.isdir(made)
        again = multiprocessing.util.get_temp_dir()  # a new one, the old not reused
        assert again != made and internals.temporary_folder() == again
        assert internals.forget_temporary_folder() == again
    finally:
        shutil.rmtree(folder, ignore_errors=True)


FORGOTTEN_AT_EXIT = """
import multiprocessing.util, sys, tempfile
from tagger import multiprocessing_internals as internals
tempfile.tempdir = sys.argv[1]
print(multiprocessing.util.get_temp_dir())
if sys.argv[2] == "forget":
    internals.forget_temporary_folder()
"""


@pytest.mark.slow
@pytest.mark.parametrize("forget, kept", [("forget", True), ("keep", False)])
def test_a_forgotten_temporary_folder_is_not_removed_at_exit(tmp_path, forget, kept):
    """multiprocessing removes its folder at exit; not one forgotten (a
    fork server may still listen in it)."""
    done = subprocess.run([sys.executable, "-c", FORGOTTEN_AT_EXIT, str(tmp_path), forget],
                          cwd=ROOT, capture_output=True, text=True, timeout=HANG_S)
    assert done.returncode == 0, done.stderr
    made = done.stdout.strip()
    assert made.startswith(str(tmp_path)) and os.path.isdir(made) == kept


def test_loading_the_main_module_is_marked_as_multiprocessing_marks_it():
    assert not internals.is_loading_main()
    with internals.main_loading():
        assert internals.is_loading_main()
        # multiprocessing's own check: no process starts while the main module loads
        with pytest.raises(RuntimeError, match="bootstrapping phase"):
            multiprocessing.spawn.get_preparation_data("a worker")
    assert not internals.is_loading_main()


@pytest.mark.slow
def test_the_fork_server_is_the_running_one_and_left_for_a_new_one(short_folder):
    context = multiprocessing.get_context("forkserver")
    stop_fork_server()
    assert internals.fork_server_address() is None and internals.leave_fork_server() is None
    run(context)
    address = internals.fork_server_address()
    assert os.path.exists(address)
    pid, left_address = internals.leave_fork_server()
    assert left_address == address and internals.fork_server_address() is None
    run(context)  # a new server, its own socket
    assert internals.fork_server_address() not in (None, address)
    os.waitpid(pid, 0)  # the left server ended: its workers had
    stop_fork_server()


def run(context):
    worker = context.Process(target=os.getpid)
    worker.start()
    worker.join()
    assert worker.exitcode == 0


@pytest.fixture
def short_folder(monkeypatch):
    """`tempfile`'s folder, short: the fork server's socket lies in it."""
    folder = tempfile.mkdtemp(prefix="mpi-")
    stop_fork_server()
    forget_temporary_folder()
    monkeypatch.setattr(tempfile, "tempdir", folder)
    yield folder
    stop_fork_server()
    forget_temporary_folder()
    shutil.rmtree(folder, ignore_errors=True)
