"""Originals published as a wheel on the package index (the musicnn
package's checkpoints), fetched with the user's own pip and never
installed.

`fetch(wheel, dest)` runs `python -m pip download --no-deps --only-binary
:all: <project>==<version>` into a scratch folder beside `dest`, so the
index, mirror, proxy and certificates the user configured for pip (pip.conf,
PIP_* variables) apply; the one file that comes is checked against the
pinned size and sha256 and only then renamed to `dest`. Whatever fails
(pip, the size, the checksum, an unexpected file) leaves nothing in the
cache and is one line saying what to fetch by hand and where to put it;
where pip itself fails (the index cannot be reached, pip is missing or
stalls) the error is a `NotFetched`, apart from a file that came and is
not the pinned one.

`installed(wheel)` finds the same release already installed (without
importing it: `importlib.metadata`) and checks the files a conversion
reads against the pinned sha256 of the wheel's RECORD; the package's
folder is then read in place. `--weights FILE` gives the wheel by hand
(checked like a fetched one by the store). Standard library only.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile

from tagger import fileio
from tagger.cache import Checksum, mismatch
from tagger.errors import UserError

PIP_TIMEOUT_S = 1800  # pip's own timeouts and retries end a dead connection well before


class NotFetched(UserError):
    """pip brought no file: the index could not be reached, or pip could not
    run or did not finish; unlike a file that came and is not the pinned one."""


@dataclasses.dataclass(frozen=True)
class Wheel:
    """One release on the package index: `project==version`, its wheel's
    file name and Checksum (pinned), and the sha256 (hex) of the files of
    the installed package a conversion reads, from the wheel's RECORD."""

    project: str
    version: str
    file_name: str
    checksum: Checksum
    files: tuple = ()  # (path relative to site-packages, sha256 hex)

    @property
    def requirement(self) -> str:
        return f"{self.project}=={self.version}"

    def by_hand(self, dest: str) -> str:
        """What to do where pip cannot reach the index: one sentence."""
        return (f"where pip can reach the index, run `python -m pip download --no-deps "
                f"--only-binary :all: {self.requirement}` and put {self.file_name} at {dest} "
                "(or pass it with --weights FILE)")


def _pip_reason(output: str) -> str:
    """pip's own reason in one line: where it looked, and why the index did
    not answer when it says so, else its last ERROR line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    where = next((line.split(":", 1)[1].strip() for line in lines
                  if line.startswith("Looking in indexes:")), "")
    refused = re.search(r"Failed to establish a new connection: ([^'\"]+)", output)
    errors = [line for line in lines if line.startswith("ERROR:")]
    reason = (f"the index did not answer: {refused.group(1).strip()}" if refused else
              (errors or lines or ["no output"])[-1].removeprefix("ERROR: "))
    return (f"from {where[:120]}: " if where else "") + reason[:200]


def fetch(wheel: Wheel, dest: str, log=None, progress: bool = False) -> str:
    """Downloads the pinned wheel with pip to `dest` (checked, then renamed
    into place); returns dest. UserError (one line) for every failure,
    NotFetched where pip brought no file, with nothing left beside `dest`.
    `log` gets a line when the wheel is in place (and, with `progress`, one
    before pip starts)."""
    folder = os.path.dirname(dest) or "."
    os.makedirs(folder, exist_ok=True)
    what = (f"{wheel.requirement} from the package index with pip "
            f"({wheel.checksum.size / 1e6:.1f} MB)")
    if log is not None and progress:
        log(f"fetching {what} -> {dest}")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "--disable-pip-version-check", "--no-input", "--progress-bar", "off",
               "--dest"]
    scratch = tempfile.mkdtemp(prefix=".pip-download-", dir=folder)
    try:
        try:
            result = subprocess.run([*command, scratch, wheel.requirement],
                                    capture_output=True, text=True, timeout=PIP_TIMEOUT_S,
                                    stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise NotFetched(f"pip did not fetch {wheel.requirement} within "
                            f"{PIP_TIMEOUT_S // 60} minutes; {wheel.by_hand(dest)}") from None
        except OSError as error:
            raise NotFetched(f"cannot run pip ({error.strerror or error}); "
                            f"{wheel.by_hand(dest)}") from None
        if result.returncode != 0:
            reason = _pip_reason(result.stderr + "\n" + result.stdout)
            if "No module named pip" in result.stderr:
                reason = f"this Python ({sys.executable}) has no pip"
            raise NotFetched(f"pip could not fetch {wheel.requirement} ({reason}); "
                            f"{wheel.by_hand(dest)}")
        found = sorted(os.listdir(scratch))
        if found != [wheel.file_name]:
            raise UserError(f"pip fetched {', '.join(found) or 'nothing'} for "
                            f"{wheel.requirement}, not {wheel.file_name}; nothing was kept; "
                            f"{wheel.by_hand(dest)}")
        part = os.path.join(scratch, wheel.file_name)
        differs, _ = mismatch(part, wheel.checksum)
        if differs:
            raise UserError(f"the {wheel.file_name} pip fetched from the index is not the "
                            f"pinned one ({differs}); nothing was kept (check the index or "
                            "mirror pip uses)")
        fileio.move_into_place(part, dest)
        if log is not None:
            log(f"fetched {what} -> {dest}")
        return dest
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def installed(wheel: Wheel) -> str | None:
    """The folder of an installed `wheel.project` of `wheel.version` whose
    files in `wheel.files` all have their pinned sha256 (the package's own
    folder, `.../site-packages/<project>`), else None. Nothing of it is
    imported."""
    from importlib import metadata

    try:
        found = metadata.distribution(wheel.project)
    except metadata.PackageNotFoundError:
        return None
    if found.version != wheel.version or not wheel.files:
        return None
    root = str(found.locate_file(""))
    for path, digest in wheel.files:
        full = os.path.join(root, path)
        if not os.path.isfile(full) or Checksum.of(full).sha256 != digest:
            return None
    return os.path.join(root, wheel.project)
