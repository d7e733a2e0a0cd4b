"""The server's upload folder: private, named after its process, and the
folders of servers that died without removing theirs are removed by the
next server of the same user."""

import os
import subprocess
import sys

import pytest

from tagger.serve import uploads


def a_pid_that_is_gone() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


@pytest.mark.slow
def test_a_new_folder_removes_those_of_servers_that_are_gone(tmp_path):
    gone = a_pid_that_is_gone()
    dead = tmp_path / f"tagger-serve-{gone}-k1ll3d"
    (dead / "sub").mkdir(parents=True)
    (dead / "sub" / "song.upload").write_bytes(b"\0" * 1000)
    running = tmp_path / f"tagger-serve-{os.getpid()}-alive_1"  # a server still running
    running.mkdir()
    kept = [running, tmp_path / "tagger-serve-notapid", tmp_path / "other-123-abc"]
    for folder in kept[1:]:
        folder.mkdir()
    if os.getuid() == 0:  # another user's server, gone too: not ours to remove
        kept.append(tmp_path / f"tagger-serve-{gone}-nobody")
        kept[-1].mkdir()
        os.chown(kept[-1], 65534, 65534)
    not_a_folder = tmp_path / f"tagger-serve-{gone}-file"
    not_a_folder.write_text("a file, not a folder")
    folder = uploads.private_folder(str(tmp_path))
    assert os.path.basename(folder).startswith(f"tagger-serve-{os.getpid()}-")
    assert os.stat(folder).st_mode & 0o777 == 0o700
    assert not dead.exists()
    assert all(path.is_dir() for path in kept)
    assert not_a_folder.read_text() == "a file, not a folder"
    assert uploads.remove_abandoned_folders(str(tmp_path)) == []  # ours is alive
    uploads.remove_folder(folder)
    assert not os.path.exists(folder)
