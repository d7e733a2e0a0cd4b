"""Downloading one file with the standard library: resumable, atomic.

The bytes go to `<dest>.part`; an interrupted transfer is resumed from the
part's size with an HTTP Range request (a server that ignores Range sends
the whole file again, and the part restarts), and the part is renamed to
`dest` only when complete. `file://` URLs (a local mirror) are copied the
same way. A progress bar with size and rate is drawn when asked for.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import urllib.error
import urllib.request

from tagger import fileio
from tagger.errors import UserError

CHUNK = 1 << 16
ATTEMPTS = 3  # transfers per call; each resumes where the last one stopped
TIMEOUT_S = 60


class DownloadFailed(UserError):
    """No complete file came: the message names the URL and what to do."""


def _total(response, offset: int) -> int | None:
    """The whole file's size, from Content-Range or Content-Length."""
    match = re.match(r"bytes \d+-\d+/(\d+)", response.headers.get("Content-Range") or "")
    if match:
        return int(match.group(1))
    length = response.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None


def _transfer(url: str, part: str, bar_factory, on_start) -> tuple[int, int | None]:
    """One request, appending to `part` from its current size; returns
    (bytes now in part, the whole file's size if the server said)."""
    offset = os.path.getsize(part) if os.path.exists(part) else 0
    headers = {"User-Agent": "tagger-pretrained"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as error:
        if error.code == 416 and offset:  # the part already holds the whole file
            return offset, offset
        raise
    with response:
        status = getattr(response, "status", None)
        if offset and status != 206:  # Range ignored (or file://): start again
            offset = 0
        total = _total(response, offset)
        on_start(total, offset)
        mode = "ab" if offset else "wb"
        with open(part, mode) as out, bar_factory(total, offset) as bar:
            while True:
                chunk = response.read(CHUNK)
                if not chunk:
                    break
                out.write(chunk)
                bar.update(len(chunk))
        return os.path.getsize(part), total


def fetch(url: str, dest: str, progress: bool = False, what: str = "", on_start=None) -> str:
    """Downloads `url` to `dest` (resuming `dest + '.part'`); returns dest.
    `on_start(total bytes or None, bytes already there)` is called when the
    server first answers. DownloadFailed (one line) when no complete file
    could be had."""
    part = dest + ".part"
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)

    def bar_factory(total, initial):
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024,
                    desc=what or os.path.basename(dest), leave=False, disable=not progress)

    started = []

    def start(total, offset):
        if not started and on_start is not None:
            on_start(total, offset)
        started.append(total)

    failure = ""
    for _ in range(ATTEMPTS):
        try:
            size, total = _transfer(url, part, bar_factory, start)
        except urllib.error.HTTPError as error:
            raise DownloadFailed(_cannot(url, f"HTTP {error.code} {error.reason}", dest)) \
                from None
        except urllib.error.URLError as error:
            raise DownloadFailed(_cannot(url, str(error.reason), dest)) from None
        except (OSError, ValueError, EOFError, http.client.HTTPException) as error:
            # dropped mid-way, timeouts: the next attempt resumes
            text = str(error).splitlines()[0] if str(error) else type(error).__name__
            failure = f"{type(error).__name__}: {text[:80]}"
            continue
        if total is None or size == total:
            fileio.move_into_place(part, dest)
            return dest
        failure = f"stopped at {size} of {total} bytes"
        if size > total:  # not the file we were resuming: start again
            os.remove(part)
    kept = os.path.getsize(part) if os.path.exists(part) else 0
    raise DownloadFailed(
        f"the download of {url} did not complete ({failure}); {kept} bytes are kept in "
        f"{part}: run again to resume, or put the file by hand at {dest}")


def _cannot(url: str, reason: str, dest: str) -> str:
    return (f"cannot download {url} ({reason}); with no network, download it elsewhere and "
            f"put it at {dest}, or set TAGGER_WEIGHTS_URL to a mirror")


def copy_local(source: str, dest: str) -> str:
    """A file the user gave (`--weights FILE`), copied into place atomically."""
    os.makedirs(os.path.dirname(dest) or ".", exist_ok=True)
    try:
        with fileio.replacing(dest) as part:
            shutil.copyfile(source, part)
    except OSError as error:
        raise UserError(f"cannot copy --weights {source!r} to {dest}: "
                        f"{error.strerror or error}") from None
    return dest
