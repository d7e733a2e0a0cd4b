"""`ServeConfig`: what `tagger-serve` serves, where, and within which limits."""

from __future__ import annotations

import dataclasses

from tagger.errors import UserError

DEFAULT_HOST = "127.0.0.1"  # this machine only: see docs/commands/serve.md for a public host
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
# the largest limits taken: a batch allocated at start-up (4096 windows: about 1 GB
# of one-segment windows of 59049 samples, N times that for N-segment windows), a
# wait past which requests time out anyway, decoder threads
MAX_BATCH, MAX_WAIT_MS, MAX_WORKERS = 4096, 60_000.0, 256


def _default_engine() -> str:
    from tagger.inference.engine.registry import default_engine

    return default_engine()


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    """The settings of `tagger.serve.server.serve`; see tagger-serve --help.

    `models`: what to serve, each a model file, a pretrained name, or
    NAME=PATH to choose the name clients use; the first is the default.
    Memory stays bounded by the limits: at most `max_queue` requests are
    admitted at once (each one's upload on disk, at most `max_upload_mb`),
    decoded audio waits for the model in at most `pending_windows` windows
    per model (plus the `workers` files being decoded), and no file longer
    than `max_seconds` is decoded past that point. Connections are bounded
    too: at most `max_connections` are open, and each request head must
    arrive within `head_timeout` seconds (`connections.py`); so is an
    upload's time: `body_timeout` seconds plus one for every `body_min_rate`
    KB it sends (`uploads.py`).
    """

    models: tuple
    host: str = DEFAULT_HOST
    port: int = 8000  # 0: any free port (the address is printed)
    max_upload_mb: float = 50.0
    max_seconds: float = 900.0
    max_batch: int = 32
    max_wait_ms: float = 5.0
    max_queue: int = 32
    workers: int = 2
    head_timeout: float = 10.0  # seconds for a request head to arrive whole
    body_timeout: float = 20.0  # seconds for an upload, plus one per body_min_rate KB sent
    body_min_rate: float = 32.0  # KB/s
    max_connections: int = 256  # open connections; beyond, a new one is refused (503)
    root_path: str = ""  # the path prefix a reverse proxy serves the app under
    progress: bool = True  # a pretrained model's first download
    # what runs the models: a name of the engine registry (auto, or $TAGGER_ENGINE)
    engine: str = dataclasses.field(default_factory=_default_engine)

    def __post_init__(self):
        if not self.models:
            raise UserError("no model given; name a model file or a pretrained name "
                            "(tagger-pretrained list)")
        if not 0 <= self.port <= 65535:
            raise UserError(f"--port must be in 0..65535 (0: any free port), got {self.port}")
        for flag, value in (("--max-upload-mb", self.max_upload_mb),
                            ("--max-seconds", self.max_seconds),
                            ("--head-timeout", self.head_timeout),
                            ("--body-timeout", self.body_timeout),
                            ("--body-min-rate", self.body_min_rate)):
            if not value > 0:
                raise UserError(f"{flag} must be above 0, got {value}")
        if not 0 <= self.max_wait_ms <= MAX_WAIT_MS:
            raise UserError(f"--max-wait-ms must be in [0, {MAX_WAIT_MS:g}], got "
                            f"{self.max_wait_ms:g}")
        for flag, value, most in (("--max-batch", self.max_batch, MAX_BATCH),
                                  ("--max-queue", self.max_queue, None),
                                  ("--workers", self.workers, MAX_WORKERS)):
            if value < 1 or (most is not None and value > most):
                raise UserError(f"{flag} must be at least 1" + (f" and at most {most}" if most
                                                                   else "") + f", got {value}")
        if self.max_connections < self.max_queue:
            raise UserError(f"--max-connections ({self.max_connections}) must be at least "
                            f"--max-queue ({self.max_queue}): every request in progress "
                            "holds a connection")
        if self.root_path and (not self.root_path.startswith("/")
                               or self.root_path.endswith("/")):
            raise UserError(f"--root-path is a URL path such as /tagger (a leading slash, no "
                            f"trailing one), got {self.root_path!r}")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 2**20)

    @property
    def body_min_rate_bytes(self) -> float:
        """--body-min-rate in bytes a second."""
        return self.body_min_rate * 2**10

    @property
    def linger_bytes(self) -> int:
        """Bytes of a refused body read and dropped before its connection
        closes (so the client reads the refusal): four uploads' worth."""
        return 4 * self.max_upload_bytes

    @property
    def pending_windows(self) -> int:
        """Decoded windows that may wait for one model's batcher: four full
        batches, enough to keep the model busy between two decodes."""
        return 4 * self.max_batch

    @property
    def public(self) -> bool:
        """Whether the address is reachable from other machines."""
        return self.host not in LOCAL_HOSTS
