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


@pytest.fixture
def before_jax(monkeypatch, tmp_path):
    """A process that has not imported JAX yet, TAGGER_HOME a team's shared
    folder, XDG_CACHE_HOME the user's own; the lines said, in a list."""
    import sys

    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.delitem(sys.modules, "jax", raising=False)
    monkeypatch.setenv("TAGGER_HOME", str(tmp_path / "team"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "own"))
    monkeypatch.setattr(cache, "_SAID", set())
    return []


def test_jax_keeps_its_programs_in_the_users_own_folder_not_a_shared_home(before_jax,
                                                                           tmp_path):
    import os
    import stat

    earlier = tmp_path / "own" / "tagger" / "jax"  # an earlier version's, group-writable
    earlier.mkdir(parents=True, mode=0o775)
    earlier.chmod(0o775)
    cache.keep_jax_programs(before_jax.append)
    folder = tmp_path / "own" / "tagger" / cache.JAX_FOLDER
    assert os.environ["JAX_COMPILATION_CACHE_DIR"] == str(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700 and before_jax == []
    assert not (tmp_path / "team" / "jax").exists()


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o703])
def test_a_jax_folder_others_may_write_to_is_not_used_and_said_once(before_jax, tmp_path,
                                                                    mode):
    import os

    folder = tmp_path / "own" / "tagger" / cache.JAX_FOLDER
    folder.mkdir(parents=True)
    folder.chmod(mode)
    cache.keep_jax_programs(before_jax.append)
    cache.keep_jax_programs(before_jax.append)
    assert "JAX_COMPILATION_CACHE_DIR" not in os.environ
    assert before_jax == [
        f"warning: JAX's compiled programs are not kept in {folder}: others may write to it "
        f"(mode {mode:o}), and JAX would run the code it finds there; make it yours alone "
        "(chmod 700) or remove it"]


def test_a_jax_folder_of_another_user_is_not_used(before_jax, tmp_path, monkeypatch):
    import os

    folder = tmp_path / "own" / "tagger" / cache.JAX_FOLDER
    folder.mkdir(parents=True, mode=0o700)
    owner = folder.stat().st_uid
    monkeypatch.setattr(os, "getuid", lambda: owner + 1)
    cache.keep_jax_programs(before_jax.append)
    assert "JAX_COMPILATION_CACHE_DIR" not in os.environ
    assert len(before_jax) == 1 and (f"belongs to user id {owner}, not to you ({owner + 1})"
                                     in before_jax[0])
