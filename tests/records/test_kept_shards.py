"""A rerun of a build checks the finished shards it keeps against their
manifests: a shard damaged or replaced since is named, counted and written
again; --verify reads every byte of every kept shard."""

import json
import os
import pathlib
import shutil
import struct

import pytest

from tagger.commands import build_mtt as build_mtt_cli
from tests.checks import build_mtt, call_main, files_digest, other_audio_shard
from tests.presets import CLIPS_PER_SHARD


def flip_a_data_byte(path) -> str:
    data = bytearray(path.read_bytes())
    (length,) = struct.unpack_from("<Q", data, 0)
    data[16 + length + 12 + 1000] ^= 0x01  # inside the second record's data
    path.write_bytes(bytes(data))
    return f"the data of its record at byte {16 + length} does not match its CRC32C"


def cut_by_100_bytes(path) -> str:
    size = path.stat().st_size
    path.write_bytes(path.read_bytes()[:-100])
    return f"it holds {size - 100} bytes, the build wrote {size}"


def another_builds_shard(path) -> str:
    other_audio_shard(path)
    return "its records are not the ones the build wrote (their lengths and CRC32Cs differ)"


def copied(raw_records, tmp_path):
    """A copy of the raw records with their resume state (times kept), the
    name of one train shard, and the number of shards."""
    out = tmp_path / "records"
    shutil.copytree(raw_records[0], out)
    info = raw_records[1]
    return out, info.splits["train"]["shards"][1], sum(len(s["shards"])
                                                        for s in info.splits.values())


@pytest.mark.parametrize("damage", [flip_a_data_byte, cut_by_100_bytes, another_builds_shard])
def test_a_rerun_writes_again_a_shard_damaged_or_replaced_after_the_build(
        damage, synthetic_mtt, raw_records, tmp_path, capsys):
    out, name, shards = copied(raw_records, tmp_path)
    why = damage(out / name)
    assert files_digest(out)[name] != files_digest(raw_records[0])[name]
    others = {n: (out / n).stat().st_mtime_ns for n in files_digest(out)
              if n.endswith(".tfrecord") and n != name}
    capsys.readouterr()
    build_mtt(synthetic_mtt[0], out)
    assert capsys.readouterr().err.splitlines() == [
        f"{out / name}: {why}; writing it again",
        f"1 of {shards} finished shard(s) differ from what the build wrote; writing them again"]
    assert files_digest(out) == files_digest(raw_records[0])
    assert others == {n: (out / n).stat().st_mtime_ns for n in others}  # kept
    build_mtt(synthetic_mtt[0], out)  # all as the build wrote them: nothing to say
    assert capsys.readouterr().err == ""


def test_verify_reads_every_byte_and_finds_what_kept_the_size_and_time(
        synthetic_mtt, raw_records, tmp_path, capsys):
    """Another build's shard put in place with the size and modification
    time of the one it replaced is kept by a plain rerun (which reads no
    shard whose size and time are the recorded ones) and found by --verify."""
    out, name, shards = copied(raw_records, tmp_path)
    stat = (out / name).stat()
    why = another_builds_shard(out / name)
    os.utime(out / name, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    argv = ["--data-dir", synthetic_mtt[0], "--out-dir", out, "--workers", 1,
            "--num-audios-per-shard", CLIPS_PER_SHARD, "--no-progress"]
    assert call_main(build_mtt_cli.main, capsys, *argv)[::2] == (0, "")
    assert files_digest(out)[name] != files_digest(raw_records[0])[name]

    code, _, err = call_main(build_mtt_cli.main, capsys, *argv, "--verify")
    assert code == 0 and err.splitlines() == [
        f"{out / name}: {why}; writing it again",
        f"1 of {shards} finished shard(s) differ from what the build wrote (--verify: every "
        f"byte of the {shards} read); writing them again"]
    assert files_digest(out) == files_digest(raw_records[0])
    code, _, err = call_main(build_mtt_cli.main, capsys, *argv, "--verify")
    assert code == 0 and err.splitlines() == [
        f"0 of {shards} finished shard(s) differ from what the build wrote (--verify: every "
        f"byte of the {shards} read)"]


@pytest.mark.parametrize("text", [b"{\"size\": 12", b"[1, 2]", b"\xff\xfe"])
def test_a_rerun_writes_again_a_shard_whose_manifest_is_damaged(
        text, synthetic_mtt, raw_records, tmp_path, capsys):
    out, name, _ = copied(raw_records, tmp_path)
    manifest = out / ".build" / f"{name}.json"
    manifest.write_bytes(text)
    capsys.readouterr()
    build_mtt(synthetic_mtt[0], out)
    assert capsys.readouterr().err.splitlines() == [
        f"{manifest}: not the manifest the build wrote (not a JSON object); writing "
        f"{name} again"]
    assert files_digest(out) == files_digest(raw_records[0])
    kept = json.loads((pathlib.Path(raw_records[0]) / ".build" / f"{name}.json").read_text())
    assert json.loads(manifest.read_text())["framing_sha256"] == kept["framing_sha256"]


def test_a_rerun_writes_the_framing_index_a_kept_shard_lacks(synthetic_mtt, raw_records,
                                                              tmp_path, capsys):
    """Shards written before the build wrote framing indexes, or whose
    index was lost: a rerun keeps each shard and writes its index, the
    bytes the build writes."""
    out, name, _ = copied(raw_records, tmp_path)
    indexes = sorted(n for n in os.listdir(out) if n.endswith(".framing"))
    assert name.replace(".tfrecord", ".framing") in indexes
    for index in indexes:
        (out / index).unlink()
    (out / indexes[0]).write_bytes(b"\0" * 16)  # another's
    kept = {n: (out / n).stat().st_mtime_ns for n in files_digest(out) if n != "dataset_info.json"}
    capsys.readouterr()
    build_mtt(synthetic_mtt[0], out)
    assert capsys.readouterr().err == ""
    assert kept == {n: (out / n).stat().st_mtime_ns for n in kept}
    built = pathlib.Path(raw_records[0])
    assert {n: (out / n).read_bytes() for n in indexes} == {
        n: (built / n).read_bytes() for n in indexes}
