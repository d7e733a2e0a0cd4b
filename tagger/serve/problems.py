"""`Problem`: a request the server refuses, as an HTTP status and one line."""

from __future__ import annotations


class Problem(Exception):
    """An HTTP error answered as `{"error": message}` with `status` (and
    `headers`, e.g. Retry-After); the message says what was wrong and what
    to do."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status = int(status)
        self.message = message
        self.headers = dict(headers or {})
