"""Writing files the user named: atomic, one-line errors, nothing half-written."""

import errno
import os

import pytest

from tagger import fileio
from tagger.errors import UserError


def test_write_output_creates_parents_and_replaces_atomically(tmp_path):
    path = tmp_path / "a" / "b" / "report.json"
    fileio.write_output(str(path), "first", "--out")
    fileio.write_output(str(path), b"second", "--out")
    assert path.read_bytes() == b"second"
    assert sorted(os.listdir(path.parent)) == ["report.json"]


@pytest.mark.parametrize("layout, reason", [
    ("folder", "it is a folder"),
    ("parent_is_file", "a part of the path is a file"),
])
def test_write_output_refuses_impossible_paths(tmp_path, layout, reason):
    (tmp_path / "file").write_text("keep me")
    (tmp_path / "folder").mkdir()
    path = {"folder": tmp_path / "folder",
            "parent_is_file": tmp_path / "file" / "report.json"}[layout]
    with pytest.raises(UserError, match=f"cannot write --out-json '{path}': {reason}"):
        fileio.write_output(str(path), "x", "--out-json")
    assert (tmp_path / "file").read_text() == "keep me"


def test_a_full_disk_leaves_the_old_file_and_no_partial_one(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    path.write_text("old")
    real_open = fileio.open_file

    class FullDisk:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            self.handle.write(data[:3])
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio, "open_file",
                        lambda p, mode="r": FullDisk(real_open(p, mode)))
    with pytest.raises(UserError, match="the disk is full: free some space"):
        fileio.write_output(str(path), "new contents", "--out-json")
    assert path.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["metrics.json"]


def test_prepare_output_dir(tmp_path):
    fileio.prepare_output_dir(str(tmp_path / "new" / "dir"), "--train-dir")
    assert os.listdir(tmp_path / "new" / "dir") == []
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="--train-dir .*file"):
        fileio.prepare_output_dir(str(tmp_path / "file"), "--train-dir")
    with pytest.raises(UserError, match="a part of the path is a file"):
        fileio.prepare_output_dir(str(tmp_path / "file" / "sub"), "--train-dir")


def test_gfile_paths(tmp_path):
    fileio.write_output("ram://reports/r.txt", "hello", "--out")
    assert fileio.read_text("ram://reports/r.txt") == "hello"
    fileio.prepare_output_dir("ram://runs/a", "--train-dir")
