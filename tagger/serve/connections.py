"""The bounds uvicorn's HTTP/1.1 protocol lacks: a deadline for each request
head, a cap on open connections, and a lingering close.

uvicorn 0.54's HTTP/1.1 protocols (h11 and httptools alike) arm no timer
while a request head arrives: `timeout_keep_alive` starts only once a
response is sent (and stops at the next byte), `limit_concurrency` is
checked only once a whole head has arrived (then answered 503), and
`h11_max_incomplete_event_size` bounds a head's bytes, not its time. A
client that sends half a head and stalls holds its connection forever.
And when a response goes out before the request's body has arrived (a 413
from the Content-Length), uvicorn closes the socket with the rest of the
body unread, so the kernel resets the connection and a client that sends
its whole body before reading (Python's urllib) sees "connection reset"
instead of the answer.

`bounded_protocol` gives uvicorn's h11 protocol these bounds:

- the head deadline: a request head must arrive whole within `head_timeout`
  seconds of the connection opening or of the previous response; else a
  408 (when part of a head came) and the connection is closed;
- the connection cap: beyond `max_connections` open connections, a new one
  is answered 503 and closed at once;
- the lingering close (nginx's `lingering_close`): a connection closed while
  its request's body is still arriving first stops writing (FIN), then
  reads and discards the rest for up to `LINGER_SECONDS` (at most
  `LINGER_IDLE_SECONDS` without data) and `linger_bytes`, then closes, so
  the client reads the answer.

`CloseBeforeBody` is the application's half: a response sent before the
request's body was read says `Connection: close`, so a keep-alive client
does not send its next request on a connection that is ending.
"""

from __future__ import annotations

import http
import json

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

LINGER_SECONDS = 30.0  # nginx's lingering_time
LINGER_IDLE_SECONDS = 5.0  # nginx's lingering_timeout


def raw_response(status: int, message: str, headers: dict | None = None) -> bytes:
    """An HTTP/1.1 response `{"error": message}` that ends the connection,
    written where no request was parsed (the protocol cannot frame it)."""
    body = json.dumps({"error": message}).encode()
    lines = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}",
             "content-type: application/json", f"content-length: {len(body)}",
             "connection: close", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def bounded_protocol(head_timeout: float, max_connections: int, linger_bytes: int) -> type:
    """uvicorn's h11 protocol class with the bounds above; pass it to
    `uvicorn.Config(http=...)`."""
    return type("BoundedH11Protocol", (_BoundedH11Protocol,), {
        "head_timeout": float(head_timeout), "max_connections": int(max_connections),
        "linger_bytes": int(linger_bytes)})


class _Transport:
    """The socket's transport as the h11 protocol sees it: `close()` lingers
    while the request's body is still arriving."""

    def __init__(self, transport, protocol):
        self._transport = transport
        self._protocol = protocol

    def close(self):
        self._protocol.close_or_linger()

    def is_closing(self):
        return self._protocol.lingering or self._transport.is_closing()

    def write(self, data):
        if not self._protocol.lingering:  # the answer is out; nothing more goes
            self._transport.write(data)

    def __getattr__(self, name):
        return getattr(self._transport, name)


class _BoundedH11Protocol(H11Protocol):
    head_timeout: float
    max_connections: int
    linger_bytes: int

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.lingering = False
        self._socket = None  # the real transport
        self._refused = False
        self._head_timer = None
        self._head_bytes = 0  # bytes received since the head deadline was armed
        self._linger_left = 0
        self._linger_timers = []

    # -- the connection cap and the head deadline -------------------------------

    def connection_made(self, transport):
        if len(self.connections) >= self.max_connections:
            self._refused = True
            transport.write(raw_response(
                503, f"the server has {self.max_connections} connections open "
                     "(--max-connections); try again in a moment", {"retry-after": "1"}))
            transport.close()
            return
        self._socket = transport
        super().connection_made(_Transport(transport, self))
        self._await_head()

    def connection_lost(self, exc):
        if self._refused:
            return
        self._cancel(head=True, linger=True)
        self.lingering = False
        super().connection_lost(exc)

    def data_received(self, data):
        if self.lingering:
            self._discard(len(data))
            return
        if self._head_timer is not None:
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_request():
            self._cancel(head=True)

    def on_response_complete(self):
        super().on_response_complete()
        if self.lingering or self._socket.is_closing():
            return
        if self._body_pending():  # a keep-alive answer before the body: end it
            self.close_or_linger()
        elif not self._in_request():  # waiting for the next head (none pipelined)
            self._await_head()

    def shutdown(self):
        if self.lingering:
            self._close()
        else:
            super().shutdown()

    def _in_request(self) -> bool:
        """Whether a request head has arrived and its response is not done."""
        return self.cycle is not None and not self.cycle.response_complete

    def _await_head(self):
        self._cancel(head=True)
        self._head_bytes = 0
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_too_slow)

    def _head_too_slow(self):
        self._head_timer = None
        if self.lingering or self._in_request() or self._socket.is_closing():
            return
        if self._head_bytes:  # part of a head came: say why the connection ends
            self._socket.write(raw_response(
                408, f"the request head did not arrive within {self.head_timeout:g} s "
                     "(--head-timeout); send the request again"))
        self._unset_keepalive_if_required()
        self._socket.close()

    # -- the lingering close -----------------------------------------------------

    def _body_pending(self) -> bool:
        return (self.cycle is not None and not self.cycle.disconnected
                and self.conn.their_state is h11.SEND_BODY)

    def close_or_linger(self):
        """Closes the connection; while the request's body is still arriving,
        stops writing and reads the rest first (within the linger bounds)."""
        if self.lingering:
            return
        if self._socket.is_closing() or not self._body_pending():
            self._socket.close()
            return
        self.lingering = True
        self._cancel(head=True)
        self._unset_keepalive_if_required()
        self._linger_left = self.linger_bytes
        if self._socket.can_write_eof():
            self._socket.write_eof()  # FIN once the answer is written
        self._socket.resume_reading()
        self._linger_timers = [self.loop.call_later(LINGER_SECONDS, self._close),
                               self.loop.call_later(LINGER_IDLE_SECONDS, self._close)]

    def _discard(self, count: int):
        self._linger_left -= count
        if self._linger_left < 0:
            self._close()  # more than the bound: the client gets a reset
            return
        self._linger_timers[1].cancel()
        self._linger_timers[1] = self.loop.call_later(LINGER_IDLE_SECONDS, self._close)

    def _close(self):
        self._cancel(linger=True)
        self._socket.close()

    def _cancel(self, head=False, linger=False):
        if head and self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        if linger:
            for timer in self._linger_timers:
                timer.cancel()
            self._linger_timers = []


class CloseBeforeBody:
    """ASGI middleware: a response that starts before the request's body was
    read whole says `Connection: close` (the server then reads and drops the
    rest, `bounded_protocol`'s lingering close, and ends the connection)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        pending = [headers.get(b"content-length", b"0").strip() not in (b"", b"0")
                   or b"transfer-encoding" in headers]

        async def receive_body():
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body", False):
                pending[0] = False
            return message

        async def send_closing(message):
            if message["type"] == "http.response.start" and pending[0]:
                message = {**message, "headers": [*message.get("headers", []),
                                                  (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive_body, send_closing)
