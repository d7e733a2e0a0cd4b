"""Writing files the user named: atomic, one-line errors, nothing half-written."""

import errno
import os

import pytest

from tagger import destination, fileio
from tagger.errors import UserError
from tests.checks import recorded_syncs


def test_write_output_creates_parents_and_replaces_atomically(tmp_path):
    path = tmp_path / "a" / "b" / "report.json"
    destination.write_output(str(path), "first", "--out")
    destination.write_output(str(path), b"second", "--out")
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
        destination.write_output(str(path), "x", "--out-json")
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
        destination.write_output(str(path), "new contents", "--out-json")
    assert path.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["metrics.json"]


def test_prepare_output_dir(tmp_path):
    destination.prepare_output_dir(str(tmp_path / "new" / "dir"), "--train-dir")
    assert os.listdir(tmp_path / "new" / "dir") == []
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="--train-dir .*file"):
        destination.prepare_output_dir(str(tmp_path / "file"), "--train-dir")
    with pytest.raises(UserError, match="a part of the path is a file"):
        destination.prepare_output_dir(str(tmp_path / "file" / "sub"), "--train-dir")


def test_gfile_paths(tmp_path):
    destination.write_output("ram://reports/r.txt", "hello", "--out")
    assert fileio.read_text("ram://reports/r.txt") == "hello"
    destination.prepare_output_dir("ram://runs/a", "--train-dir")
    destination.write_output("ram://reports/r.txt", "again", "--out")
    assert fileio.listdir("ram://reports") == ["r.txt"]  # no temporary left


def test_replacing_yields_a_name_beside_the_file_and_renames_it_over(tmp_path):
    path = tmp_path / "index.faiss"
    path.write_text("old")
    with fileio.replacing(str(path)) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path)
        assert fileio.temporary_of(os.path.basename(tmp)) == "index.faiss"
        with open(tmp, "w") as f:
            f.write("new")
        assert path.read_text() == "old"  # not in place until the block ends
    assert path.read_text() == "new" and os.listdir(tmp_path) == ["index.faiss"]


def test_replacing_a_failed_block_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "tags.db"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="half way"):
        with fileio.replacing(str(path), "w") as f:
            f.write("partial")
            raise RuntimeError("half way")
    with pytest.raises(ValueError, match="never made"):
        with fileio.replacing(str(path)):  # the temporary was never made
            raise ValueError("never made")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["tags.db"]


@pytest.mark.parametrize("mode", [None, "wb"])
def test_replacing_syncs_the_file_before_the_rename_and_its_folder_after(tmp_path,
                                                                          monkeypatch, mode):
    calls = recorded_syncs(monkeypatch)
    path = tmp_path / "song.flac"
    path.write_bytes(b"old")
    with fileio.replacing(str(path), mode) as target:
        if mode is None:
            with open(target, "wb") as f:
                f.write(b"new")
        else:
            target.write(b"new")
    assert path.read_bytes() == b"new"
    inode = path.stat().st_ino
    assert calls == [("fsync", inode), ("replace", inode), ("fsync", tmp_path.stat().st_ino)]


def test_move_into_place_syncs_a_file_or_folder_then_renames_it_then_syncs_its_folder(
        tmp_path, monkeypatch):
    calls = recorded_syncs(monkeypatch)
    part = tmp_path / "model.hdf5.part"
    part.write_bytes(b"whole")
    fileio.move_into_place(str(part), str(tmp_path / "model.hdf5"))
    unpacked = tmp_path / "music.partial"
    (unpacked / "a").mkdir(parents=True)
    fileio.move_into_place(str(unpacked), str(tmp_path / "music"))
    assert (tmp_path / "model.hdf5").read_bytes() == b"whole"
    assert sorted(os.listdir(tmp_path)) == ["model.hdf5", "music"]
    assert os.listdir(tmp_path / "music") == ["a"]
    file, folder, inside, parent = ((tmp_path / n).stat().st_ino
                                    for n in ("model.hdf5", "music", "music/a", ""))
    assert calls == [("fsync", file), ("replace", file), ("fsync", parent),
                     ("fsync", inside), ("fsync", folder), ("replace", folder), ("fsync", parent)]


def test_move_into_place_syncs_every_file_and_folder_inside_a_folder_before_the_rename(
        tmp_path, monkeypatch):
    """A folder moved into place is whole after a power cut: each file and
    folder inside flushed before the rename, a folder after what it holds;
    a link, its target outside, and a FIFO are not opened (the folder
    holding them records them)."""
    outside = tmp_path / "outside.txt"
    outside.write_text("not moved")
    unpacked = tmp_path / "music.partial"
    (unpacked / "a" / "deep").mkdir(parents=True)
    (unpacked / "empty").mkdir()
    for name in ("c.txt", "a/b.wav", "a/deep/d.wav", "a/deep/e.wav"):
        (unpacked / name).write_bytes(name.encode())
    (unpacked / "link").symlink_to(outside)
    os.mkfifo(unpacked / "fifo")
    calls = recorded_syncs(monkeypatch)
    fileio.move_into_place(str(unpacked), str(tmp_path / "music"))
    moved = tmp_path / "music"
    assert (moved / "a" / "deep" / "d.wav").read_bytes() == b"a/deep/d.wav"
    inode = {name: (moved / name).stat().st_ino
             for name in ("", "c.txt", "a", "a/b.wav", "a/deep", "a/deep/d.wav", "a/deep/e.wav",
                          "empty")}
    rename = calls.index(("replace", inode[""]))
    before = [value for kind, value in calls[:rename] if kind == "fsync"]
    assert sorted(before) == sorted(inode.values())  # each once; not the link's target
    for folder, inside in [("a/deep", ["a/deep/d.wav", "a/deep/e.wav"]),
                           ("a", ["a/b.wav", "a/deep"]), ("", ["c.txt", "a", "empty"])]:
        assert all(before.index(inode[name]) < before.index(inode[folder]) for name in inside)
    assert calls[rename + 1:] == [("fsync", tmp_path.stat().st_ino)]


def test_replacing_leaves_the_file_when_the_check_before_the_rename_refuses(tmp_path):
    path = tmp_path / "song.flac"
    path.write_bytes(b"old")

    def refuse():
        raise RuntimeError("changed meanwhile")

    with pytest.raises(RuntimeError, match="changed meanwhile"):
        with fileio.replacing(str(path), "wb", check=refuse) as f:
            f.write(b"new")
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["song.flac"]


def test_replacing_a_gfile_path():
    with fileio.replacing("ram://replacing/out.bin", "wb") as f:
        f.write(b"\x00\x01")
    assert fileio.read_bytes("ram://replacing/out.bin") == b"\x00\x01"
    assert fileio.listdir("ram://replacing") == ["out.bin"]  # no temporary left


def test_a_users_tmp_file_beside_the_output_survives(tmp_path):
    (tmp_path / "out.json.tmp").write_text("mine")
    destination.write_output(str(tmp_path / "out.json"), "first", "--out")
    fileio.write_atomic(str(tmp_path / "out.json"), "second")
    assert (tmp_path / "out.json.tmp").read_text() == "mine"
    assert sorted(os.listdir(tmp_path)) == ["out.json", "out.json.tmp"]


def test_temporary_names_are_unique_hidden_and_in_the_same_folder():
    first, second = (fileio.temporary_path("gs://bucket/runs/out.json") for _ in range(2))
    assert first != second and first.startswith("gs://bucket/runs/.out.json.")
    assert fileio.temporary_of(first.rsplit("/", 1)[1]) == "out.json"
    assert fileio.temporary_of("out.json.tmp") is None
    assert fileio.temporary_of(".out.json.0123456789ab.tmp") == "out.json"  # an older form


def test_temporary_names_say_their_writer_and_fit_the_file_system(tmp_path):
    import socket

    name = os.path.basename(fileio.temporary_path(str(tmp_path / "song.flac")))
    assert fileio.temporary_writer(name) == {"pid": os.getpid(), "host": socket.gethostname()}
    elsewhere = f".song.flac.tagger-12-{fileio.host_digest('elsewhere')}-0123abcd.tmp"
    assert fileio.temporary_writer(elsewhere) == {"pid": 12,
                                                  "host": fileio.host_digest("elsewhere")}
    assert fileio.temporary_writer(".song.flac.0123456789ab.tmp") is None  # names no writer
    for long in ("\u00e9" * 120 + ".flac", "x" + "\u00e9" * 120 + ".flac"):
        # 245 and 246 bytes: too long with the suffix; shortened to whole characters
        # wherever the cut falls (the suffix's length varies with the pid)
        tmp = fileio.temporary_path(str(tmp_path / long))
        assert len(os.path.basename(tmp).encode()) <= 255  # valid UTF-8 too
        with open(tmp, "wb"):  # the file system takes it
            pass
        assert long.startswith(fileio.temporary_of(os.path.basename(tmp)))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_is_never_replaced(tmp_path):
    import stat

    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    with pytest.raises(UserError) as error:
        destination.write_output(str(fifo), "x", "--out")
    assert str(error.value) == (f"cannot write --out '{fifo}': it is a FIFO (named pipe), "
                                "not a regular file, and writing would replace it; "
                                "give a file's name")
    with pytest.raises(UserError, match=f"cannot write '{fifo}': it is a FIFO"):
        fileio.write_atomic(str(fifo), "x")
    with pytest.raises(UserError, match=f"cannot write --out '{fifo}': it is a FIFO"):
        destination.check_output_file(str(fifo), "--out")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert os.listdir(tmp_path) == ["out.fifo"]


def test_a_device_is_never_replaced(tmp_path):
    import stat

    device = tmp_path / "null"  # never the system's /dev/null: a broken build would replace it
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (OSError, AttributeError):
        pytest.skip("cannot make a device node here (needs root)")
    with pytest.raises(UserError, match=f"cannot write --out '{device}': it is a device"):
        destination.write_output(str(device), "x", "--out")
    assert stat.S_ISCHR(os.stat(device).st_mode) and os.listdir(tmp_path) == ["null"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "out.json"
    path.write_text("old")
    (tmp_path / "out.json.tmp").write_text("mine")

    def fail(src, dst):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(fileio, "rename", fail)
    with pytest.raises(OSError):
        fileio.write_atomic(str(path), "new")
    assert path.read_text() == "old" and (tmp_path / "out.json.tmp").read_text() == "mine"
    assert sorted(os.listdir(tmp_path)) == ["out.json", "out.json.tmp"]


def test_embedding_archive_keeps_a_users_tmp_file_and_refuses_a_fifo(tmp_path):
    from tagger.inference.library.embeddings import EmbeddingWriter

    (tmp_path / "e.npz.tmp").write_text("mine")
    with EmbeddingWriter(str(tmp_path / "e.npz")) as writer:
        writer.add("a.wav", [[1.0, 2.0]])
    assert (tmp_path / "e.npz.tmp").read_text() == "mine"
    assert sorted(os.listdir(tmp_path)) == ["e.npz", "e.npz.tmp"]
    os.mkfifo(tmp_path / "e.fifo")
    with pytest.raises(OSError, match="it is a FIFO"):
        EmbeddingWriter(str(tmp_path / "e.fifo"))
    assert sorted(os.listdir(tmp_path)) == ["e.fifo", "e.npz", "e.npz.tmp"]


def test_a_rebuild_removes_its_own_temporaries_only(tmp_path):
    from tagger.records import writer

    own = fileio.temporary_path(str(tmp_path / writer.INFO_FILE))
    open(own, "w").close()
    (tmp_path / "notes.json.tmp").write_text("mine")
    writer._remove_outputs(str(tmp_path))
    assert os.listdir(tmp_path) == ["notes.json.tmp"]


def test_parquet_footer_is_the_tail_of_a_parquet_file_only(tmp_path):
    parquet = tmp_path / "rows.parquet"
    body = b"PAR1" + bytes(range(256)) * 300 + b"mark" + b"PAR1"
    parquet.write_bytes(body)
    assert fileio.parquet_footer(str(parquet)) == body[-(1 << 16):]
    assert fileio.parquet_footer(str(parquet), size=8) == b"markPAR1"
    small = tmp_path / "small.parquet"
    small.write_bytes(b"PAR1 key PAR1")
    assert fileio.parquet_footer(str(small)) == b"PAR1 key PAR1"
    (tmp_path / "rows.csv").write_text("path,tags\nPAR1\n")
    assert fileio.parquet_footer(str(tmp_path / "rows.csv")) is None
