"""The connection bounds of `tagger.serve.connections` on a real uvicorn
server on 127.0.0.1 (in a thread, serving a small ASGI app; no model): the
head deadline, the cap on connections, and the lingering close that lets
a client that sends its whole body first read a refusal. And, with the
tagging app of a tiny model, the bound on an upload's time
(`--body-timeout`, `--body-min-rate`)."""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from tests.checks import http_status_and_error, until, watch_sockets

pytest.importorskip("uvicorn")
pytest.importorskip("h11")

HEAD = 1.0  # seconds: the tests' --head-timeout
HALF_HEAD = b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Ty"
# Seconds a bound may be late: a guard against a bound that never comes
# (the connection would stay open), not a measure; on an idle machine each
# comes within 0.05 s, on a busy one within a second or two.
SLACK = 10.0


async def app(scope, receive, send):
    """/refuse answers 413 before it reads the body; any other path reads
    the whole body and answers its length."""
    size = 0
    if scope["path"] != "/refuse":
        while True:
            message = await receive()
            size += len(message.get("body", b""))
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
    status, body = (413, {"error": "too large"}) if scope["path"] == "/refuse" else (
        200, {"bytes": size})
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())]})
    await send({"type": "http.response.body", "body": data})


@contextlib.contextmanager
def serving(max_connections=16, linger_bytes=8 << 20, tagging=None):
    """((host, port), its open connections: a set) of a uvicorn server with
    the bounded protocol, stopped at the end; serving `app`, or `tagging`
    (an app of `tagger.serve.app.create_app`, started and shut down)."""
    import uvicorn

    from tagger.serve.connections import CloseBeforeBody, bounded_protocol
    from tagger.serve.server import bind

    sock = bind("127.0.0.1", 0)
    config = uvicorn.Config(
        CloseBeforeBody(app) if tagging is None else tagging, ws="none", log_level="error",
        http=bounded_protocol(HEAD, max_connections, linger_bytes),
        lifespan="off" if tagging is None else "on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        until(lambda: server.started, "the server to start")
        yield sock.getsockname()[:2], server.server_state.connections
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()
    assert not thread.is_alive()


def read_until_closed(sock, seconds=HEAD + SLACK + 5) -> tuple[bytes, float]:
    """(everything the server sent, when it closed: monotonic seconds)."""
    sock.settimeout(seconds)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data, time.monotonic()


def post(address, path, body, headers=None) -> tuple[int, dict]:
    """urllib's POST (the whole body first, then the answer)."""
    request = urllib.request.Request(f"http://{address[0]}:{address[1]}{path}", data=body,
                                     headers={"Content-Type": "audio/wav", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_request_head_must_arrive_within_the_deadline():
    with serving() as (address, _):
        started = time.monotonic()
        silent = socket.create_connection(address)
        half = socket.create_connection(address)
        half.sendall(HALF_HEAD)
        # a client that trickles its head, a byte every 0.1 s, gets no more time
        trickle = socket.create_connection(address)
        # a whole request meanwhile is answered at once
        assert post(address, "/echo", b"x" * 1000) == (200, {"bytes": 1000})
        sent = []

        def next_byte():
            if len(sent) < len(HALF_HEAD):
                with contextlib.suppress(OSError):
                    trickle.send(HALF_HEAD[len(sent):len(sent) + 1])
                    sent.append(1)

        seen = watch_sockets([silent, half, trickle], HEAD + SLACK + 5, tick=next_byte)
        for client in (silent, half, trickle):
            client.close()
            data, closed = seen[client]
            assert HEAD - 0.05 <= closed - started <= HEAD + SLACK
            if client is silent:  # nothing came: closed without a word
                assert data == b""
            else:
                status, error = http_status_and_error(data)
                assert status == 408 and "--head-timeout" in error, data
        assert 2 <= len(sent) < len(HALF_HEAD)  # it trickled, and was cut off

        # on a kept-alive connection, the next head has the same deadline
        with socket.create_connection(address) as client:
            asked = time.monotonic()  # before the server can start the next head's deadline
            client.sendall(b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\n\r\nabc")
            client.settimeout(5)
            first = b""
            while not first.endswith(b"}"):
                first += client.recv(65536)
            answered = time.monotonic()
            assert first.startswith(b"HTTP/1.1 200") and first.endswith(b'{"bytes": 3}')
            client.sendall(HALF_HEAD)
            data, closed = read_until_closed(client)
        assert http_status_and_error(data)[0] == 408
        assert closed - asked >= HEAD - 0.05 and closed - answered <= HEAD + SLACK


def test_connections_beyond_the_limit_are_refused():
    with serving(max_connections=4) as (address, _):
        held = [socket.create_connection(address) for _ in range(4)]
        for client in held:
            client.sendall(HALF_HEAD)
        with socket.create_connection(address) as fifth:
            data, _ = read_until_closed(fifth, seconds=5)
        status, error = http_status_and_error(data)
        assert status == 503 and "--max-connections" in error
        assert b"retry-after: 1" in data.lower()
        held.pop().close()  # one place free again: a request is answered
        assert until(lambda: _answered(address), "a freed place")
        for client in held:
            client.close()


def _answered(address) -> bool:
    try:
        return post(address, "/echo", b"abc") == (200, {"bytes": 3})
    except OSError:  # refused while the closed connection was still counted
        return False


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_refused_body_sent_whole_gets_its_answer(chunked):
    """urllib sends the whole body before it reads: without the lingering
    close it sees "connection reset" instead of the 413."""
    body = b"\0" * (6 << 20)
    data = iter([body[i:i + 65536] for i in range(0, len(body), 65536)]) if chunked else body
    with serving() as (address, _):
        for _ in range(3):
            assert post(address, "/refuse", data) == (413, {"error": "too large"})
            data = iter([body[i:i + 65536] for i in range(0, len(body), 65536)]) \
                if chunked else body


def test_a_keep_alive_client_is_told_the_connection_ends():
    with serving() as (address, _):
        client = http.client.HTTPConnection(*address, timeout=30)
        client.request("POST", "/refuse", body=b"\0" * (1 << 20))
        response = client.getresponse()
        assert response.status == 413 and response.getheader("connection") == "close"
        assert json.loads(response.read()) == {"error": "too large"}
        client.close()
        client = http.client.HTTPConnection(*address, timeout=30)
        client.request("POST", "/echo", body=b"abc")  # a body read whole: kept alive
        response = client.getresponse()
        assert response.status == 200 and response.getheader("connection") is None
        assert json.loads(response.read()) == {"bytes": 3}
        client.close()


def test_the_lingering_close_is_bounded(monkeypatch):
    from tagger.serve import connections

    # bounds far above the answer's time (milliseconds) and a dribble's gaps (0.1 s)
    idle, total = 2.0, 3.0
    monkeypatch.setattr(connections, "LINGER_IDLE_SECONDS", idle)
    monkeypatch.setattr(connections, "LINGER_SECONDS", total)
    with serving(linger_bytes=1 << 20) as (address, open_connections):
        # more than the bound: the client is cut off, as before
        with pytest.raises(OSError):
            post(address, "/refuse", b"\0" * (64 << 20))
        until(lambda: not open_connections, "the connection closed")
        head = b"POST /refuse HTTP/1.1\r\nHost: test\r\nContent-Length: 1000000\r\n\r\n"
        # a body that stalls: the answer and the end of it (FIN) at once, the
        # connection closed after the idle bound
        with socket.create_connection(address) as client:
            started = time.monotonic()  # before the server can start its bound
            client.sendall(head + b"\0" * 1000)
            data, ended = read_until_closed(client)
            until(lambda: not open_connections, "the connection closed")
            closed = time.monotonic()
        assert http_status_and_error(data)[0] == 413 and ended - started < idle
        assert idle - 0.05 <= closed - started <= idle + SLACK
        # a body that dribbles: closed after the total bound
        with socket.create_connection(address) as client:
            started = time.monotonic()
            client.sendall(head)
            until(lambda: open_connections, "the connection accepted")
            sent = 0
            while open_connections and time.monotonic() - started < total + SLACK:
                client.sendall(b"\0" * 100)
                sent += 1
                time.sleep(0.1)
            closed = time.monotonic()
        assert not open_connections and sent > 10
        assert total - 0.05 <= closed - started <= total + SLACK


BODY = 1.5  # seconds: the tagging app's --body-timeout


@pytest.mark.slow
def test_an_upload_must_keep_up_the_minimum_rate(serve_models, serve_audio):
    """The tagging app with --max-queue 2: an upload that trickles a byte
    every 0.1 s is answered 408 once its --body-timeout is spent, and frees
    its place for the next request; one that takes twice that long but
    keeps up --body-min-rate is tagged. While both upload, a third request
    finds the queue full (503)."""
    from tagger.serve.app import create_app
    from tagger.serve.config import ServeConfig
    from tagger.serve.models import load_models

    with open(serve_audio["song.wav"], "rb") as f:
        song = f.read()
    size = len(song) // 20 + 1
    parts = [song[i:i + size] for i in range(0, len(song), size)]

    def steady_parts():  # the song over twice --body-timeout
        for part in parts:
            yield part
            time.sleep(2 * BODY / len(parts))

    config = ServeConfig(models=(serve_models["cnn"],), max_queue=2, body_timeout=BODY,
                         body_min_rate=len(song) / 2**10 / (2 * BODY) / 2)  # half its rate
    tagging = create_app(load_models(config), config)
    steady, sent, done = {}, [], threading.Event()
    with serving(tagging=tagging) as (address, _), \
            socket.create_connection(address) as trickle:
        started = time.monotonic()  # before the server can start the body's bound
        trickle.sendall(b"POST /v1/tag HTTP/1.1\r\nHost: test\r\nContent-Type: audio/wav\r\n"
                        b"Content-Length: %d\r\n\r\n" % len(song))

        def trickling():
            while not done.wait(0.1):
                with contextlib.suppress(OSError):
                    trickle.send(song[len(sent):len(sent) + 1])
                    sent.append(1)

        threads = [threading.Thread(target=trickling, daemon=True), threading.Thread(
            target=lambda: steady.update(answer=post(address, "/v1/tag", steady_parts(), {
                "Content-Length": str(len(song))})), daemon=True)]
        for thread in threads:
            thread.start()
        try:
            until(lambda: tagging.state.admission.count == 2, "both uploads admitted")
            status, body = post(address, "/v1/tag", song)
            assert status == 503 and "--max-queue" in body["error"], body
            data, ended = read_until_closed(trickle, BODY + SLACK + 5)
        finally:
            done.set()
        status, error = http_status_and_error(data)
        assert status == 408 and "(--body-timeout, --body-min-rate)" in error, data
        received = int(re.match(r"the upload came too slowly: (\d+) bytes in ", error)[1])
        assert 2 <= received <= len(sent)  # it kept sending: not the idle bound
        assert BODY - 0.05 <= ended - started <= BODY + SLACK
        assert threads[1].is_alive()  # the steady upload goes on
        status, served = post(address, "/v1/tag", song)  # in the place the trickle held
        assert status == 200 and served["file"] == "upload", served
        for thread in threads:
            thread.join(30)
        assert time.monotonic() - started >= 2 * BODY
    status, body = steady["answer"]
    assert status == 200 and body["scores"] == served["scores"], body
