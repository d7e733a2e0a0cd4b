"""A request's audio, read into the server's private temporary folder.

Two ways to send a file to `POST /v1/tag`:

- the raw body, with `Content-Type: audio/...` (audio/mpeg, audio/wav, ...)
  or `application/octet-stream`: `curl --data-binary @song.mp3 -H
  "Content-Type: audio/mpeg"`;
- `multipart/form-data` with one file part (the field `file`, or any part
  with a file name): what a browser's form sends, `curl -F file=@song.mp3`.

The body is streamed into a fresh file (mode 0600) in the server's folder
(made by `private_folder`, mode 0700, named after the server's process)
while its size is counted, so a body above the limit is refused as soon as
it passes it (413; at once when its Content-Length says so), not after it
was read. The file is named by the
server, never by the client; the caller removes it when done
(`Upload.remove`), and a body that fails half way (too large, malformed, the
client gone, too slow) leaves nothing behind.

A body is bounded in time too, as Apache's `RequestReadTimeout
body=20,MinRate=500` bounds it: it must arrive whole within `timeout`
seconds of its start plus one second for every `min_rate` bytes received
(a client that keeps up `min_rate` bytes a second may take as long as its
upload needs, one that trickles is refused once its `timeout` seconds of
grace are spent), and no wait for its next bytes may last IDLE_SECONDS.
Either is a 408, so a slow client holds its place in the queue
(`--max-queue`) no longer than `timeout + max_bytes / min_rate` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import shutil
import socket
import tempfile

from tagger.folder_lock import is_stale
from tagger.serve.problems import Problem

RAW_TYPES = ("application/octet-stream",)  # and every audio/*
MULTIPART = "multipart/form-data"
FOLDER_PREFIX = "tagger-serve-"  # then the server's pid
FILE_FIELD = "file"
QUERY_OPTIONS = ("model", "k", "taggram", "embeddings", "attention")  # /v1/tag's query
MULTIPART_SLACK = 1 << 20  # bytes of multipart framing and small fields allowed on top
IDLE_SECONDS = 30.0  # an upload that sends nothing for this long is refused (408)
HOW_TO_SEND = ("send the file as multipart/form-data (the field 'file') or as the raw body "
               "with Content-Type audio/... or application/octet-stream")


@dataclasses.dataclass
class Upload:
    path: str  # the file in the server's folder
    size: int  # bytes
    filename: str | None = None  # as the client named it (display only, never a path)

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.remove(self.path)


def private_folder(parent: str | None = None) -> str:
    """A new folder only this user can enter (tempfile.mkdtemp: mode 0700)
    for the uploads in flight, `tagger-serve-<pid>-*` under `parent` (the
    temporary folder); `remove_folder` at shutdown. The folders of this
    user's servers that died without removing theirs (SIGKILL, a crash) go
    first."""
    parent = parent or tempfile.gettempdir()
    remove_abandoned_folders(parent)
    return tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-", dir=parent)


def remove_abandoned_folders(parent: str) -> list:
    """Removes the `tagger-serve-<pid>-*` folders under `parent` that
    belong to this user and whose server process is gone; returns their
    paths. A folder whose process still runs (or whose pid was taken by
    another process since) is left alone."""
    removed = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        match = re.fullmatch(rf"{FOLDER_PREFIX}(\d+)-\w+", entry.name)
        try:
            if (match is None or not entry.is_dir(follow_symlinks=False)
                    or entry.stat(follow_symlinks=False).st_uid != os.getuid()):
                continue
        except OSError:
            continue
        if is_stale({"pid": int(match[1]), "host": socket.gethostname()}):
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    return removed


def remove_folder(folder: str) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def body_kind(content_type: str | None) -> str:
    """'raw' or 'multipart' for a request's Content-Type; anything else is a
    415 Problem."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media == MULTIPART:
        return "multipart"
    if media.startswith("audio/") or media in RAW_TYPES:
        return "raw"
    shown = f"Content-Type {media}" if media else "no Content-Type"
    hint = ""
    if media == "application/x-www-form-urlencoded":  # what curl --data-binary sends
        hint = " (with curl: -H 'Content-Type: application/octet-stream', or -F file=@FILE)"
    raise Problem(415, f"{shown} is not audio; {HOW_TO_SEND}{hint}")


def too_large(max_bytes: int) -> Problem:
    return Problem(413, f"the upload is larger than the limit of {max_bytes / 2**20:.3g} MB "
                        "(--max-upload-mb); send a smaller file")


def check_declared_size(content_length: str | None, kind: str, max_bytes: int) -> None:
    """A 413 Problem when the request's Content-Length is above the limit
    (its body is then never read)."""
    if content_length is None:
        return
    try:
        declared = int(content_length)
    except ValueError:
        raise Problem(400, f"Content-Length {content_length!r} is not a number") from None
    allowed = max_bytes + (MULTIPART_SLACK if kind == "multipart" else 0)
    if declared > allowed:
        raise too_large(max_bytes)


async def receive(stream, folder: str, kind: str, content_type: str, max_bytes: int,
                  timeout: float, min_rate: float) -> Upload:
    """Reads the body chunks of `stream` (an async iterator of bytes, e.g.
    starlette's `request.stream()`) into a new file in `folder`. Problems:
    400 for an empty file, a multipart body without one file part or
    malformed; 408 when the body stalls or comes too slowly (`timeout`
    seconds, `min_rate` bytes/s: the module docstring); 413 above
    `max_bytes`. Whatever `stream` raises (the client gone) passes through;
    the partial file is removed in every failure."""
    stream = _in_time(stream, timeout, min_rate)
    fd, path = tempfile.mkstemp(dir=folder, suffix=".upload")
    try:
        with os.fdopen(fd, "wb") as out:
            if kind == "raw":
                size, filename = await _raw(stream, out, max_bytes), None
            else:
                size, filename = await _multipart(stream, out, content_type, max_bytes)
        if size == 0:
            raise Problem(400, "the upload is empty (0 bytes); send an audio file")
        return Upload(path, size, filename)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
        raise


async def _in_time(stream, timeout: float, min_rate: float):
    """The chunks of `stream`, each within IDLE_SECONDS of the last and all
    within `timeout` seconds plus one for every `min_rate` bytes received;
    a 408 Problem past either bound."""
    loop = asyncio.get_running_loop()
    chunks = stream.__aiter__()
    started, received = loop.time(), 0
    while True:
        deadline = started + timeout + received / min_rate
        wait = min(IDLE_SECONDS, deadline - loop.time())
        try:
            chunk = await asyncio.wait_for(chunks.__anext__(), max(wait, 0.0))
        except StopAsyncIteration:
            return
        except asyncio.TimeoutError:
            if wait == IDLE_SECONDS:
                raise Problem(408, f"the upload stalled: nothing arrived for "
                                   f"{IDLE_SECONDS:g} s; send it again") from None
            raise Problem(408, f"the upload came too slowly: {received} bytes in "
                               f"{loop.time() - started:.3g} s, where {timeout:g} s and one "
                               f"more for every {min_rate / 2**10:g} KB are allowed "
                               "(--body-timeout, --body-min-rate); send it again over a "
                               "faster connection") from None
        received += len(chunk)
        yield chunk


async def _raw(stream, out, max_bytes: int) -> int:
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > max_bytes:
            raise too_large(max_bytes)
        out.write(chunk)
    return size


async def _multipart(stream, out, content_type: str, max_bytes: int):
    """(file bytes, file name) of the one file part, written to `out`."""
    from python_multipart import MultipartParser
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import parse_options_header

    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise Problem(400, "the multipart/form-data Content-Type has no boundary")
    state = dict(headers={}, field=b"", value=b"", is_file=False, files=0, size=0,
                 filename=None, ended=False)

    def header_field(data, start, end):
        state["field"] += data[start:end]

    def header_value(data, start, end):
        state["value"] += data[start:end]

    def header_end():
        state["headers"][state["field"].lower()] = state["value"]
        state["field"], state["value"] = b"", b""

    def headers_finished():
        _, disposition = parse_options_header(state["headers"].get(b"content-disposition"))
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        filename = disposition.get(b"filename")
        state["headers"] = {}
        state["is_file"] = filename is not None or name == FILE_FIELD
        if not state["is_file"]:  # another field is not read (a form's button, a note) ...
            if name in QUERY_OPTIONS:  # ... nor is an option given here: said, not ignored
                raise Problem(422, f"the multipart body holds the option {name!r} as a form "
                                   f"field; send it in the query string (/v1/tag?{name}=...)")
            return
        state["files"] += 1
        if state["files"] > 1:
            raise Problem(400, "the multipart body holds more than one file; send one "
                               "file per request")
        if filename is not None:
            state["filename"] = os.path.basename(filename.decode("utf-8", "replace"))

    def part_data(data, start, end):
        if state["is_file"]:
            state["size"] += end - start
            if state["size"] > max_bytes:
                raise too_large(max_bytes)
            out.write(data[start:end])

    def ended():
        state["ended"] = True

    parser = MultipartParser(boundary, {
        "on_header_field": header_field, "on_header_value": header_value,
        "on_header_end": header_end, "on_headers_finished": headers_finished,
        "on_part_data": part_data, "on_end": ended})
    received = 0
    try:
        async for chunk in stream:
            received += len(chunk)
            if received > max_bytes + MULTIPART_SLACK:
                raise too_large(max_bytes)
            parser.write(chunk)
    except FormParserError as error:
        raise Problem(400, f"malformed multipart/form-data body ({error})") from None
    if not state["files"]:
        raise Problem(400, f"the multipart body has no file part; {HOW_TO_SEND}")
    if not state["ended"]:
        raise Problem(400, "the multipart body ended before its closing boundary "
                           "(an interrupted upload?); send it again")
    return state["size"], state["filename"]
