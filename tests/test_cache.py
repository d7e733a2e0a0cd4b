"""tagger.cache: the records that vouch for what the cache keeps (the
pretrained store's originals, tag.py's int8 models): written after the
file, read back only when whole, compared size first, then sha256."""

import hashlib
import json

import pytest

from tagger import cache
from tagger.cache import Checksum


def test_a_record_holds_the_fields_and_the_files_size_and_sha256(tmp_path):
    data = b"weights" * 100
    (tmp_path / "model.pt").write_bytes(data)
    found = Checksum.of(str(tmp_path / "model.pt"))
    assert found == Checksum.of_bytes(data) == Checksum(700, hashlib.sha256(data).hexdigest())
    cache.write_record(str(tmp_path / "model.pt.json"), found, url="file:///m", version=3)
    record = json.loads((tmp_path / "model.pt.json").read_text())
    assert record == {"url": "file:///m", "version": 3, "bytes": 700,
                      "sha256": hashlib.sha256(data).hexdigest()}
    assert cache.read_record(str(tmp_path / "model.pt.json")) == record
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt", "model.pt.json"]


@pytest.mark.parametrize("text", [None, '{"bytes": 7, "sha2', "[1, 2]",
                                  '{"sha256": "ab"}', '{"bytes": "7", "sha256": "ab"}',
                                  '{"bytes": 7, "sha256": null}'])
def test_a_record_that_is_missing_cut_short_or_incomplete_vouches_for_nothing(tmp_path,
                                                                               text):
    path = tmp_path / "entry.json"
    if text is not None:
        path.write_text(text)
    assert cache.read_record(str(path)) is None


def test_mismatch_compares_the_size_first_then_the_sha256(tmp_path):
    path = tmp_path / "file.bin"
    path.write_bytes(b"abcd")
    right = Checksum.of_bytes(b"abcd")
    assert cache.mismatch(str(path), right) == ("", right)
    assert cache.mismatch(str(path), Checksum(5, right.sha256)) == ("4 bytes, not 5", None)
    other = Checksum.of_bytes(b"abce")
    assert cache.mismatch(str(path), other) == (
        f"sha256 {right.sha256[:12]}..., not {other.sha256[:12]}...", right)
