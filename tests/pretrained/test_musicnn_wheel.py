"""The musicnn package's models by name, fetched from the package index with
the user's own pip configuration: here a local find-links folder
(PIP_NO_INDEX, PIP_FIND_LINKS), so no network is needed; a substituted,
truncated or unreachable wheel is refused in one line with nothing left in
the cache; an installed package whose files match is read in place; and
nothing is ever installed."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import os
import shutil
import socket
import sys
import zipfile

import pytest

from tagger import pretrained
from tagger.cache import Checksum
from tagger.commands import pretrained as pretrained_cmd
from tagger.errors import UserError
from tagger.pretrained import registry
from tagger.pretrained.registry import MUSICNN_WHEEL
from tagger.pretrained.wheel import NotFetched
from tests import checks
from tests.checks import call_main, one_line_error

WHEEL = MUSICNN_WHEEL.file_name


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """A cache of the test's own, and a pip that reads no configuration file
    (PIP_CONFIG_FILE=os.devnull) and keeps no cache: only what a test sets."""
    monkeypatch.setenv("TAGGER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("TAGGER_WEIGHTS_URL", raising=False)
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX",
                 "PIP_DEFAULT_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "home"


def find_links(monkeypatch, folder, wheel_bytes=None, source=None):
    """pip configured by environment to read only `folder`, holding the
    wheel (`source` copied, or `wheel_bytes` written under its name)."""
    folder.mkdir(parents=True, exist_ok=True)
    if source is not None:
        shutil.copyfile(source, folder / WHEEL)
    else:
        (folder / WHEEL).write_bytes(wheel_bytes)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(folder))


def left_in_cache(home) -> list:
    found = []
    for root, folders, files in os.walk(home):
        found += [os.path.relpath(os.path.join(root, f), home) for f in files + folders]
    return sorted(f for f in found if not f.startswith("locks"))


def assert_not_installed():
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution("musicnn")
    assert "musicnn" not in sys.modules


@pytest.mark.slow  # runs pip
def test_by_name_with_the_users_pip_configuration(musicnn_wheel, home, tmp_path, monkeypatch,
                                                   capsys):
    find_links(monkeypatch, tmp_path / "links", source=musicnn_wheel)
    code, out, err = call_main(pretrained_cmd.main, capsys, "download", "MTT_vgg")
    assert code == 0, err
    assert "fetched musicnn==0.1.0 from the package index with pip" in err
    assert out.strip() == str(home / "models" / "mtat-pons-vgg.keras")
    assert left_in_cache(home) == sorted([
        "models", "models/mtat-pons-vgg.json", "models/mtat-pons-vgg.keras", "originals",
        f"originals/{WHEEL}", f"originals/{WHEEL}.json"])
    # the other three come from the same wheel, without pip
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "nowhere"))
    code, out, err = call_main(pretrained_cmd.main, capsys, "path", "msd-pons-musicnn")
    assert code == 0, err
    assert "pip" not in err and out.strip().endswith("msd-pons-musicnn.keras")
    assert_not_installed()


def _substituted(source, target):
    """The wheel with one checkpoint byte changed: a valid wheel, another file."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for member in old.infolist():
            data = old.read(member)
            if member.filename == "musicnn/MTT_vgg/.data-00000-of-00001":
                data = bytes([data[0] ^ 1]) + data[1:]
            new.writestr(member, data)
    return target


@pytest.mark.slow  # runs pip
@pytest.mark.parametrize("kind", ["substituted", "truncated"])
def test_a_bad_wheel_from_the_index_is_one_line_and_nothing_stays(musicnn_wheel, home,
                                                                  tmp_path, monkeypatch,
                                                                  capsys, kind):
    links = tmp_path / "links"
    links.mkdir()
    if kind == "substituted":
        _substituted(musicnn_wheel, links / WHEEL)
        fragments = ["not the pinned one", "not f38a4890c648", "nothing was kept"]
    else:
        with open(musicnn_wheel, "rb") as handle:
            (links / WHEEL).write_bytes(handle.read()[:MUSICNN_WHEEL.checksum.size // 2])
        fragments = ["musicnn==0.1.0", str(home / "originals" / WHEEL)]
    find_links(monkeypatch, links, wheel_bytes=(links / WHEEL).read_bytes())
    code, _, err = call_main(pretrained_cmd.main, capsys, "download", "MTT_musicnn")
    one_line_error(code, err, *fragments)
    assert left_in_cache(home) == ["originals"]  # no wheel, no pip scratch folder, no model
    assert_not_installed()


def unreachable_index(monkeypatch) -> int:
    """pip configured by environment to ask an index on a closed port (its number)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{port}/simple")
    monkeypatch.setenv("PIP_RETRIES", "1")  # pip names the failure when it retries
    monkeypatch.setenv("PIP_TIMEOUT", "5")
    return port


@pytest.mark.slow  # runs pip
def test_an_unreachable_index_says_what_to_fetch_and_where(home, monkeypatch, capsys):
    unreachable_index(monkeypatch)
    code, _, err = call_main(pretrained_cmd.main, capsys, "path", "MSD_vgg")
    one_line_error(code, err, "pip could not fetch musicnn==0.1.0 (from http://127.0.0.1:",
                   "the index did not answer", "Connection refused",
                   "pip download --no-deps --only-binary :all: musicnn==0.1.0",
                   f"put {WHEEL} at {home / 'originals' / WHEEL}", "--weights")
    assert left_in_cache(home) == ["originals"]


@pytest.mark.slow
def test_weights_by_hand_are_checked_against_the_pinned_wheel(musicnn_wheel, home, tmp_path,
                                                               capsys):
    with open(musicnn_wheel, "rb") as handle:
        data = handle.read()
    truncated = tmp_path / "truncated.whl"
    truncated.write_bytes(data[:-100])
    code, _, err = call_main(pretrained_cmd.main, capsys, "download", "mtat-pons-vgg",
                             "--weights", truncated)
    one_line_error(code, err, f"({len(data) - 100:,} bytes, not {len(data):,}; pinned",
                   "nothing was replaced")
    other = _substituted(musicnn_wheel, tmp_path / "other.whl")
    other.write_bytes(other.read_bytes()[:len(data)].ljust(len(data), b"\0"))  # same size
    code, _, err = call_main(pretrained_cmd.main, capsys, "download", "mtat-pons-vgg",
                             "--weights", other)
    one_line_error(code, err, "not f38a4890c648...; pinned in the registry",
                   "nothing was replaced")
    assert left_in_cache(home) == ["originals"]  # an empty folder: nothing of either file

    # a wheel damaged in the cache after it came: removed, one line, the next run fetches
    code, out, err = call_main(pretrained_cmd.main, capsys, "download", "mtat-pons-vgg",
                               "--weights", musicnn_wheel)
    assert code == 0, err
    cached = home / "originals" / WHEEL
    cached.write_bytes(data[:1000])
    os.remove(out.strip())  # the next use converts again, reading the wheel first
    code, _, err = call_main(pretrained_cmd.main, capsys, "path", "mtat-pons-vgg")
    one_line_error(code, err, f"{cached} is not the release's", "it was removed from the cache",
                   "run again")
    assert not cached.exists()
    assert_not_installed()


@pytest.mark.slow
def test_an_installed_package_is_read_in_place_when_its_files_match(musicnn_wheel, home,
                                                                     tmp_path, monkeypatch):
    """A musicnn 0.1.0 on sys.path (its dist-info and files, as pip installs
    them) converts with no pip and no copy; one file changed, it is not
    used (here pip then has nowhere to fetch from: one line)."""
    site = tmp_path / "site"
    with zipfile.ZipFile(musicnn_wheel) as wheel:
        wheel.extractall(site)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip can fetch nothing
    path = pretrained.ensure("MSD_vgg", progress=False, log=lambda line: None)
    assert os.path.isfile(path) and left_in_cache(home) == [  # no copy of the wheel
        "models", "models/msd-pons-vgg.json", "models/msd-pons-vgg.keras", "originals"]
    assert "musicnn" not in sys.modules  # found by its metadata, never imported

    os.remove(path)
    index = site / "musicnn" / "MSD_vgg" / ".index"
    index.write_bytes(index.read_bytes() + b"\0")
    with pytest.raises(pretrained.store.UserError, match="pip could not fetch"):
        pretrained.ensure("MSD_vgg", progress=False, log=lambda line: None)


def test_names_aliases_and_list(capsys):
    assert pretrained.get("MTT_musicnn") is pretrained.get("mtat-pons-musicnn")
    assert pretrained.get("MSD_vgg").tags()[:3] == ("rock", "pop", "alternative")
    code, out, _ = call_main(pretrained_cmd.main, capsys, "list")
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("mtat-pons-musicnn"))
    assert "(MTT_musicnn)" in row and "ISC" in row and "ROC-AUC 0.9067, PR-AUC 0.3831" in row
    assert out.strip().splitlines()[-1] == (
        "sets of bodies for train.py --from, a head on each, their scores averaged: "
        "musicnn-package (MSD_musicnn, MTT_musicnn, MSD_vgg, MTT_vgg)")
    code, out, _ = call_main(pretrained_cmd.main, capsys, "info", "MSD_musicnn")
    assert code == 0
    assert "permission notice appear in all copies" in out  # the ISC notice, kept
    assert "pip download --no-deps --only-binary :all: musicnn==0.1.0" in out
    assert "ROC-AUC 0.8802, PR-AUC 0.2891" in out and "sha256 f38a4890" in out
    assert "tags       50: rock, pop, alternative" in out and "Mellow" in out
    assert_not_installed()


@pytest.mark.slow
def test_a_file_mirror_replaces_pip(musicnn_wheel, home, tmp_path, monkeypatch):
    """TAGGER_WEIGHTS_URL=file://FOLDER holding the wheel: no pip (which
    here could fetch nothing), the same checks."""
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    shutil.copyfile(musicnn_wheel, mirror / WHEEL)
    monkeypatch.setenv("TAGGER_WEIGHTS_URL", f"file://{mirror}")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    path = pretrained.ensure("MTT_vgg", progress=False, log=lambda line: None)
    assert os.path.isfile(path) and (home / "originals" / WHEEL).is_file()
    (mirror / WHEEL).write_bytes(b"not the wheel")
    for done in (home / "originals" / WHEEL, path, path[:-len(".keras")] + ".json"):
        os.remove(done)
    with pytest.raises(pretrained.store.UserError, match="13 bytes, not 29,292,476; pinned"):
        pretrained.ensure("MTT_vgg", progress=False, log=lambda line: None)
    assert left_in_cache(home) == ["models", "originals", f"originals/{WHEEL}.json"]


# the golden tests' wheel (tests.checks.musicnn_wheel, the musicnn_wheel
# fixture): a wheel pip cannot fetch skips them, outside CI only; a wheel
# that comes and is not the pinned one fails them everywhere


@pytest.mark.parametrize("ci, skips", [(None, True), ("", True), ("false", True), ("0", True),
                                       ("true", False), ("1", False)])
def test_what_cannot_be_had_skips_outside_ci_and_fails_under_it(monkeypatch, ci, skips):
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    reason = "the musicnn wheel could not be fetched: pip could not fetch musicnn==0.1.0"
    with pytest.raises(pytest.skip.Exception if skips else pytest.fail.Exception) as outcome:
        checks.skip_unless_ci(reason)
    assert outcome.value.msg == (reason if skips else
                                 f"{reason} (under CI, CI={ci}, this fails rather than skips)")


@pytest.mark.slow  # runs pip
def test_a_wheel_pip_cannot_fetch_is_a_reason_to_skip(tmp_path, monkeypatch):
    port = unreachable_index(monkeypatch)
    path, why = checks.musicnn_wheel(tmp_path / "built")
    assert path is None
    assert why.startswith(f"pip could not fetch musicnn==0.1.0 (from http://127.0.0.1:{port}/")
    assert os.listdir(tmp_path / "built") == []


def _small_wheel(path):
    """A valid wheel under the musicnn wheel's name holding only its metadata."""
    info = "musicnn-0.1.0.dist-info"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(f"{info}/METADATA",
                       "Metadata-Version: 2.1\nName: musicnn\nVersion: 0.1.0\n")
        wheel.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: tests\n"
                                        "Root-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(f"{info}/RECORD", "")
    return path


@pytest.mark.slow  # runs pip
def test_a_wheel_that_is_not_the_pinned_one_fails_the_golden_tests(tmp_path, monkeypatch):
    """The index serves a wheel of the pinned size and another sha256:
    an error, not a reason to skip, with or without CI."""
    monkeypatch.delenv("CI", raising=False)
    links = tmp_path / "links"
    small = _small_wheel(tmp_path / WHEEL)
    find_links(monkeypatch, links, source=small)
    served = Checksum.of(str(small))
    monkeypatch.setattr(registry, "MUSICNN_WHEEL", dataclasses.replace(
        MUSICNN_WHEEL, checksum=Checksum(served.size, "0" * 64)))
    with pytest.raises(UserError) as raised:
        checks.musicnn_wheel(tmp_path / "built")
    assert not isinstance(raised.value, NotFetched)
    assert str(raised.value) == (
        f"the {WHEEL} pip fetched from the index is not the pinned one (sha256 "
        f"{served.sha256[:12]}..., not 000000000000...); nothing was kept (check the index "
        "or mirror pip uses)")
    assert os.listdir(tmp_path / "built") == []


def test_a_fetched_wheel_is_flushed_to_the_disk_before_it_is_renamed_into_place(
        tmp_path, monkeypatch):
    """pip's part (here a stand-in that writes the file where pip would)."""
    import subprocess

    from tagger.pretrained import wheel

    body = b"the wheel's bytes"
    (tmp_path / "made.whl").write_bytes(body)
    pinned = wheel.Wheel("toy", "1.0", "toy-1.0-py3-none-any.whl",
                         Checksum.of(str(tmp_path / "made.whl")))

    def pip(command, **options):
        scratch = command[command.index("--dest") + 1]
        with open(os.path.join(scratch, pinned.file_name), "wb") as f:
            f.write(body)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(wheel.subprocess, "run", pip)
    calls = checks.recorded_syncs(monkeypatch)
    dest = tmp_path / "cache" / pinned.file_name
    assert wheel.fetch(pinned, str(dest)) == str(dest)
    assert dest.read_bytes() == body and os.listdir(dest.parent) == [pinned.file_name]
    inode = dest.stat().st_ino
    assert calls == [("fsync", inode), ("replace", inode), ("fsync", dest.parent.stat().st_ino)]
