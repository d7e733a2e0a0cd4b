"""build_mtt under faults: special files, huge or endless input, NaN audio, a
decoder that dies, two builds at once, foreign files, a full disk."""

import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import sys

import numpy as np
import pytest
import soundfile

from tagger.errors import UserError
from tagger.records import writer
from tests.checks import build_mtt, files_digest
from tests.records import dying_decoder


@pytest.fixture(autouse=True)
def no_hang():
    def fail(*_):
        raise TimeoutError("the build blocked")
    previous = signal.signal(signal.SIGALRM, fail)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def data_copy(synthetic_mtt, tmp_path):
    target = tmp_path / "data"
    shutil.copytree(synthetic_mtt[0], target)
    return target


def decoded_paths(data_dir, split="train"):
    from tagger.datasets.mtt import plan_mtt

    return [c.path for c in plan_mtt(str(data_dir)).splits[split]]


def skip_reasons(info):
    return {s["path"]: s["reason"] for s in info.skipped}


def test_special_and_oversized_files_are_skipped_with_reasons(data_copy, raw_records, tmp_path):
    reference = skip_reasons(raw_records[1])
    paths = [p for p in decoded_paths(data_copy) if p not in reference][:6]
    mp3 = data_copy / "mp3"
    fifo, folder, zero, loop, big, nan = (mp3 / p for p in paths)
    for path in paths:
        (mp3 / path).unlink()
    os.mkfifo(fifo)
    folder.mkdir()
    os.symlink("/dev/zero", zero)
    os.symlink(loop, loop)
    big.write_bytes(b"\xff" * (3 * 2**20))  # 3 MB of nothing, named .mp3
    t = np.arange(3 * 16000) / 16000
    data = np.sin(2 * np.pi * 220 * t).astype(np.float32)
    data[1000] = np.nan
    soundfile.write(str(nan), data, 16000, format="WAV", subtype="FLOAT")
    info = build_mtt(data_copy, tmp_path / "out", max_file_mb=1.0)
    reasons = skip_reasons(info)
    assert reasons[paths[0]] == "not a regular file (a FIFO)"
    assert reasons[paths[1]] == "not a regular file (a folder)"
    assert reasons[paths[2]] == "not a regular file (a character device)"
    assert reasons[paths[3]] == "symlink loop"
    assert reasons[paths[4]] == "file of 3.0 MB is above the limit of 1 MB (--max-file-mb)"
    assert reasons[paths[5]] == "the audio holds NaN or infinite samples"
    assert len(reasons) == len(reference) + 6
    assert info.splits["train"]["clips"] == raw_records[1].splits["train"]["clips"] - 6


def test_long_clips_are_cut_and_listed(synthetic_mtt, raw_records, tmp_path):
    data_dir, _ = synthetic_mtt
    info = build_mtt(data_dir, tmp_path / "out", max_seconds=3.0)
    clips = sum(s["clips"] for s in info.splits.values())
    assert clips == sum(s["clips"] for s in raw_records[1].splits.values())
    assert sum(s["segments"] for s in info.splits.values()) == clips  # one 2.68 s segment
    assert len(info.cut) == clips and info.max_seconds == 3.0
    assert all(c["seconds"] == pytest.approx(6.0, abs=0.1) for c in info.cut)
    stored = json.loads((tmp_path / "out" / "dataset_info.json").read_text())
    assert stored["cut"] == info.cut
    assert raw_records[1].cut == []
    from tagger.records.info import describe
    assert f"cut {clips} clip(s) longer than 3 s" in describe(info, str(tmp_path / "out"))


@pytest.mark.slow
def test_a_decoder_that_dies_skips_its_clip_and_the_build_finishes(
        synthetic_mtt, raw_records, tmp_path, monkeypatch):
    data_dir, _ = synthetic_mtt
    victims = [p for p in decoded_paths(data_dir) + decoded_paths(data_dir, "test")
               if dying_decoder.MARK in p and p not in skip_reasons(raw_records[1])]
    assert victims
    monkeypatch.setattr(writer, "decode_clip", dying_decoder.decode_or_die)
    info = build_mtt(data_dir, tmp_path / "out", workers=2)
    reasons = skip_reasons(info)
    for path in victims:
        assert reasons[path] == ("the decoding process died on it twice "
                                 "(killed by SIGKILL (out of memory?))")
    clips = sum(s["clips"] for s in info.splits.values())
    assert clips == sum(s["clips"] for s in raw_records[1].splits.values()) - len(victims)


@pytest.mark.slow
def test_second_build_into_the_same_folder_refuses(synthetic_mtt, tmp_path):
    data_dir, _ = synthetic_mtt
    out = tmp_path / "out"
    (out / ".build").mkdir(parents=True)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = {"pid": sleeper.pid, "host": socket.gethostname(), "started": "earlier"}
        (out / ".build" / "lock.json").write_text(json.dumps(lock))
        with pytest.raises(UserError, match=rf"another build \(pid {sleeper.pid} on "):
            build_mtt(data_dir, out)
        assert sorted(os.listdir(out)) == [".build"]
        assert os.listdir(out / ".build") == ["lock.json"]
    finally:
        sleeper.kill()
        sleeper.wait()
    # the holder is gone: its lock is stale and is taken over
    info = build_mtt(data_dir, out)
    assert info.splits["train"]["clips"] > 0
    assert not (out / ".build" / "lock.json").exists()


def test_foreign_files_are_not_replaced_without_overwrite(synthetic_mtt, raw_records, tmp_path):
    data_dir, _ = synthetic_mtt
    out = tmp_path / "out"
    out.mkdir()
    (out / "dataset_info.json").write_text('{"mine": true}\n')
    (out / "notes.txt").write_text("keep me")
    with pytest.raises(UserError, match=r"files this builder did not write \(dataset_info"):
        build_mtt(data_dir, out)
    assert sorted(os.listdir(out)) == ["dataset_info.json", "notes.txt"]
    assert (out / "dataset_info.json").read_text() == '{"mine": true}\n'
    info = build_mtt(data_dir, out, overwrite=True)
    assert json.loads((out / "dataset_info.json").read_text()) == info.to_json()
    assert (out / "notes.txt").read_text() == "keep me"


def test_foreign_shard_is_not_replaced_without_overwrite(synthetic_mtt, tmp_path):
    data_dir, _ = synthetic_mtt
    out = tmp_path / "out"
    out.mkdir()
    (out / "train-0000-of-0009.tfrecord").write_bytes(b"someone else's")
    with pytest.raises(UserError, match="train-0000-of-0009.tfrecord"):
        build_mtt(data_dir, out)
    assert (out / "train-0000-of-0009.tfrecord").read_bytes() == b"someone else's"


def test_overwrite_keeps_files_the_builder_did_not_write(synthetic_mtt, tmp_path):
    data_dir, _ = synthetic_mtt
    out = tmp_path / "out"
    build_mtt(data_dir, out, top_k=10)
    (out / "README.txt").write_text("mine")
    (out / "mine.tfrecord").write_bytes(b"mine")
    (out / ".build" / "notes").write_text("mine")
    build_mtt(data_dir, out, top_k=12, overwrite=True)
    assert (out / "README.txt").read_text() == "mine"
    assert (out / "mine.tfrecord").read_bytes() == b"mine"
    assert (out / ".build" / "notes").read_text() == "mine"


class FullDisk:
    """A record writer that runs out of space after `room` records."""

    def __init__(self, path, room):
        self.file = open(path, "wb")
        self.room = room

    def write(self, record):
        if self.room == 0:
            self.file.write(record[:1000])  # a partial write, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= 1
        self.file.write(record)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


def test_full_disk_removes_the_partial_shard_and_the_rerun_resumes(
        synthetic_mtt, raw_records, tmp_path, monkeypatch):
    data_dir, _ = synthetic_mtt
    out = tmp_path / "out"
    calls = []
    original = writer._open_record_writer

    def open_writer(path):
        calls.append(path)
        return original(path) if len(calls) < 3 else FullDisk(path, room=1)

    monkeypatch.setattr(writer, "_open_record_writer", open_writer)
    with pytest.raises(UserError) as error:
        build_mtt(data_dir, out)
    message = str(error.value)
    assert "the disk is full: free at least" in message and "MB" in message
    assert "run the same command again" in message and "\n" not in message
    names = os.listdir(out)
    assert not any(n.endswith(".tmp") for n in names)
    assert len([n for n in names if n.endswith(".tfrecord")]) == 2
    assert "dataset_info.json" not in names
    monkeypatch.setattr(writer, "_open_record_writer", original)
    build_mtt(data_dir, out)
    assert files_digest(out) == files_digest(raw_records[0])


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_tensorflow_full_disk_error_reads_as_a_full_disk(synthetic_mtt, tmp_path, monkeypatch):
    from tagger.records.tfrecord import open_record_file

    data_dir, _ = synthetic_mtt
    original = writer._open_record_writer
    calls = []

    def open_writer(path):  # the third shard goes to a device that is always full,
        calls.append(path)  # written through tf.io.gfile as a gs:// shard would be
        if len(calls) < 3:
            return original(path)
        open(path, "wb").close()
        return open_record_file("file:///dev/full")

    monkeypatch.setattr(writer, "_open_record_writer", open_writer)
    with pytest.raises(UserError, match="the disk is full: free at least"):
        build_mtt(data_dir, tmp_path / "out")
    assert not any(n.endswith(".tmp") for n in os.listdir(tmp_path / "out"))
