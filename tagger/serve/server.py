"""`serve(ServeConfig)`: the library call behind tagger-serve.

Binds the address first (a port in use is a one-line error before any
model is loaded), loads the models, then runs the application under
uvicorn until Ctrl-C or SIGTERM, which finish the requests in progress
(for up to `GRACEFUL_SECONDS`) before the command ends with exit code 0.
uvicorn speaks HTTP/1.1 through its h11 protocol with the bounds of
`connections.py` (a deadline for each request head, a cap on connections,
a lingering close); websockets are off (the API has none).
"""

from __future__ import annotations

import socket
import sys

from tagger.errors import UserError

GRACEFUL_SECONDS = 30
EXTRA = "pip install -r requirements-serve.txt (or pip install \".[serve]\")"


def check_installed() -> None:
    """The web stack is the `serve` extra; without it, one line saying so."""
    try:
        import fastapi  # noqa: F401
        import fastapi_offline  # noqa: F401
        import python_multipart  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as error:
        raise UserError(f"tagger-serve needs {error.name}, which is not installed: "
                        f"{EXTRA}") from None


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); UserError when it cannot be had."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise UserError(f"--host {host!r} is not an address of this machine "
                        f"({error.strerror}); use 127.0.0.1, or 0.0.0.0 for every "
                        "interface") from None
    family, kind, protocol, _, address = infos[0]
    sock = socket.socket(family, kind, protocol)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as error:
        sock.close()
        hint = "; choose another --port (0: any free port)" if port else ""
        raise UserError(f"cannot listen on {host}:{port}: {error.strerror or error}"
                        f"{hint}") from None
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket, root_path: str = "") -> str:
    host, port = sock.getsockname()[:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}{root_path}/"


def serve(config, log=None) -> int:
    """Serves `config.models` on `config.host`:`config.port` until stopped."""
    say = log or (lambda line: print(line, file=sys.stderr, flush=True))
    check_installed()
    import uvicorn

    from tagger.serve.app import create_app
    from tagger.serve.connections import bounded_protocol
    from tagger.serve.models import load_models

    sock = bind(config.host, config.port)
    try:
        models = load_models(config, log=say)
        app = create_app(models, config)
        url = url_of(sock, config.root_path)
        for model in models:
            say(f"model {model.name}: {model.path} (sha256 {model.fingerprint[:12]}, "
                f"{len(model.tag_names)} tags, windows of "
                f"{model.window_samples / model.sample_rate:.2f} s)")
        if config.public:
            say(f"listening on {config.host}, reachable from other machines: put it behind "
                "a reverse proxy with TLS (docs/commands/serve.md)")
        say(f"serving on {url} (API: {url}docs; Ctrl-C stops)")
        protocol = bounded_protocol(config.head_timeout, config.max_connections,
                                    config.linger_bytes)
        server = _graceful_server(uvicorn.Config(
            app, log_level="warning", timeout_graceful_shutdown=GRACEFUL_SECONDS,
            root_path=config.root_path, server_header=False, lifespan="on",
            http=protocol, ws="none"))
        app.state.connections = server.server_state.connections  # for /healthz
        server.run(sockets=[sock])
    finally:
        sock.close()
    say("stopped")
    return 0


def _graceful_server(config):
    """uvicorn's server, except that Ctrl-C or SIGTERM, once the requests in
    progress are answered, ends the command with exit code 0 (a server's
    normal end) instead of being raised again once uvicorn has stopped."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame):
            super().handle_exit(sig, frame)
            captured = getattr(self, "_captured_signals", None)
            if isinstance(captured, list):
                captured.clear()

    return Server(config)
