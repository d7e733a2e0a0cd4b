"""tagger.folder_lock: one writer per folder (the builders and training runs
hold it); a second refuses naming the owner, a dead owner's lock is taken
over with a line saying so."""

import json
import os
import socket
import subprocess
import sys

import pytest

from tagger.errors import UserError
from tagger.folder_lock import folder_lock, read_lock
from tests.checks import HANG_S


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_held_lock_refuses_a_second_writer_naming_the_owner(tmp_path):
    lock = tmp_path / "out" / ".lock.json"
    with folder_lock(str(lock), str(tmp_path / "out"), "training run", "choose another x"):
        owner = read_lock(str(lock))
        assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
        with pytest.raises(UserError, match=rf"another training run \(pid {os.getpid()} on "
                                            r".*\) is writing to .*choose another x"):
            with folder_lock(str(lock), str(tmp_path / "out"), "training run",
                             "choose another x"):
                pass
    assert not lock.exists()


def test_a_waiting_writer_takes_the_lock_once_it_is_free(tmp_path):
    """The pretrained store's entries: a second writer (here a thread of
    this process) waits, with one line naming the owner, instead of
    refusing; it holds the lock when the first has let it go."""
    import threading

    from tests.checks import until

    lock = tmp_path / "locks" / "entry.lock"
    lines, order = [], []

    def second():
        with folder_lock(str(lock), str(tmp_path), "download", log=lines.append, wait=True):
            order.append(("second", read_lock(str(lock))["pid"]))

    with folder_lock(str(lock), str(tmp_path), "download", wait=True):
        owner = read_lock(str(lock))
        thread = threading.Thread(target=second)
        thread.start()
        until(lambda: lines, "the second writer to wait")
        order.append(("first", owner["pid"]))
    thread.join(20)
    assert order == [("first", os.getpid()), ("second", os.getpid())]
    assert lines == [f"waiting for the download of pid {os.getpid()} on "
                     f"{socket.gethostname()}, started {owner['started']} to finish (if no "
                     f"such download runs, remove {lock})"]
    assert not lock.exists() and os.listdir(lock.parent) == []


@pytest.mark.slow
def test_a_dead_owners_lock_is_taken_over_with_a_line(tmp_path):
    lock = tmp_path / ".lock.json"
    pid = dead_pid()
    lock.write_text(json.dumps({"pid": pid, "host": socket.gethostname(),
                                "started": "earlier"}))
    lines = []
    with folder_lock(str(lock), str(tmp_path), "build", "x", log=lines.append):
        assert read_lock(str(lock))["pid"] == os.getpid()
    assert lines == [f"note: taking over the lock of a build that no longer runs "
                     f"(pid {pid} on {socket.gethostname()}, started earlier): {lock}"]


@pytest.mark.slow
def test_the_builders_say_when_they_take_a_stale_lock_over(tmp_path, capsys):
    from tagger.records.writer import build_lock

    (tmp_path / ".build").mkdir()
    pid = dead_pid()
    (tmp_path / ".build" / "lock.json").write_text(json.dumps(
        {"pid": pid, "host": socket.gethostname(), "started": "earlier"}))
    with build_lock(str(tmp_path)):
        pass
    err = capsys.readouterr().err
    assert f"taking over the lock of a build that no longer runs (pid {pid}" in err


@pytest.mark.slow
def test_two_processes_never_hold_one_lock_at_once(tmp_path):
    """Eight processes race for one lock: each holds it alone (the file
    records a holder count that never exceeds one)."""
    script = (
        "import sys, time, pathlib\n"
        "from tagger.errors import UserError\n"
        "from tagger.folder_lock import folder_lock\n"
        "out = pathlib.Path(sys.argv[1])\n"
        "for _ in range(200):\n"
        "    try:\n"
        "        with folder_lock(str(out / '.lock.json'), str(out), 'run', 'x'):\n"
        "            with open(out / 'inside', 'a') as f: f.write('+')\n"
        "            n = (out / 'inside').read_text().count('+') - "
        "(out / 'inside').read_text().count('-')\n"
        "            assert n == 1, n\n"
        "            time.sleep(0.01)\n"
        "            with open(out / 'inside', 'a') as f: f.write('-')\n"
        "        print('held'); break\n"
        "    except UserError:\n"
        "        time.sleep(0.005)\n")
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    runs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(8)]
    results = [run.communicate(timeout=HANG_S) for run in runs]
    assert all(run.returncode == 0 for run in runs), results
    assert sum(out.count("held") for out, _ in results) == 8


@pytest.mark.slow
def test_only_temporaries_whose_writer_is_gone_are_removed(tmp_path):
    from tagger import fileio
    from tagger.folder_lock import remove_stale_temporaries

    here, gone = fileio.host_digest(), dead_pid()
    stale = f".a.flac.tagger-{gone}-{here}-0123abcd.tmp"
    kept = [
        os.path.basename(fileio.temporary_path(str(tmp_path / "b.flac"))),  # this process
        f".c.flac.tagger-{gone}-{fileio.host_digest('elsewhere')}-0123abcd.tmp",  # another host
        ".d.flac.0123456789ab.tmp",  # an older form, naming no writer
        "e.flac.tmp", f"f.flac.tagger-{gone}-{here}-0123abcd.tmp",  # not hidden: a user's
    ]
    for name in [stale, *kept]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "target").write_bytes(b"the user's")
    link = f".g.flac.tagger-{gone}-{here}-0123abcd.tmp"
    os.symlink(tmp_path / "target", tmp_path / link)  # a link of that name: not ours
    folder = f".h.flac.tagger-{gone}-{here}-0123abcd.tmp"
    (tmp_path / folder).mkdir()
    assert remove_stale_temporaries(str(tmp_path)) == [stale]
    assert sorted(os.listdir(tmp_path)) == sorted([*kept, "target", link, folder])
    assert remove_stale_temporaries(str(tmp_path / "missing")) == []
