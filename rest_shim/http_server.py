"""The REST port's HTTP server: uvicorn (httptools) with limits a client cannot get past.

uvicorn reads a request head of any size and waits for it without end, and accepts
any number of connections. ``LimitedHttpProtocol`` adds, per connection:

- ``MAX_HEADER_BYTES``: a request head (request line and headers) over this size is
  answered 431 and the connection closed; at most one read buffer more than the limit
  is ever held;
- ``REQUEST_HEAD_TIMEOUT``: a request head must arrive whole within this many seconds
  of the connection opening or of its first byte (slowloris); otherwise 408 and close;
- ``MAX_CONNECTIONS``: connections beyond this many at once are answered 503 at once
  and closed, so memory stays bounded however many sockets a client opens.

The body limit (``MAX_REQUEST_BYTES``) is checked by the routes that read bodies.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import Any, cast

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from rest_shim.fastjson import dumps
from server.config import Settings

REASONS = {
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class HttpLimits:
    max_header_bytes: int
    head_timeout: float
    max_connections: int

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpLimits:
        return cls(
            settings.max_header_bytes, settings.request_head_timeout, settings.max_connections
        )


def refusal(status: int, code: str, detail: str, extra: str = "") -> bytes:
    """A whole HTTP/1.1 answer in the REST face's error shape, closing the connection."""
    body = dumps({"status": "error", "code": code, "detail": detail})
    head = (
        f"HTTP/1.1 {status} {REASONS[status]}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n{extra}\r\n"
    )
    return head.encode("latin-1") + body


class LimitedHttpProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, limits: HttpLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = limits
        self._in_head = True  # until the first request's headers are complete
        self._head_bytes = 0
        self._refused = False
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self._limits.max_connections:
            self._refuse(
                refusal(
                    503,
                    "too_many_connections",
                    f"the server holds {self._limits.max_connections} connections; retry later",
                    "retry-after: 1\r\n",
                )
            )
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        if not self._in_head or self.transport.is_closing():
            return
        # A head still arriving: refused once over the limit, so at most one read
        # more than the limit is ever held.
        self._head_bytes += len(data)
        if self._head_bytes > self._limits.max_header_bytes:
            self._refuse_head()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0
        if self._head_timer is None:
            self._arm_head_timer()

    def on_url(self, url: bytes) -> None:
        if not self._refused:
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._refused:
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._in_head = False
        self._disarm_head_timer()
        # A head that arrived within one read: its size, as parsed.
        size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
        if size > self._limits.max_header_bytes:
            self._refuse_head()
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            super().on_message_complete()

    def _refuse_head(self) -> None:
        limit = self._limits.max_header_bytes
        self._refuse(refusal(431, "headers_too_large", f"the request head is over {limit} bytes"))

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self._limits.head_timeout, self._head_timed_out)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._in_head or self.transport.is_closing():
            return
        timeout = self._limits.head_timeout
        self._refuse(
            refusal(408, "request_timeout", f"the request head did not arrive within {timeout:g} s")
        )

    def _refuse(self, answer: bytes) -> None:
        """Answers at once and closes; nothing more of this connection is read or run."""
        self._refused = True
        self._disarm_head_timer()
        self._in_head = False
        self.transport.write(answer)
        self.transport.close()


def uvicorn_config(app: Any, settings: Settings, **options: Any) -> uvicorn.Config:
    """uvicorn's configuration for the REST face, with the limits above."""
    protocol = functools.partial(LimitedHttpProtocol, limits=HttpLimits.from_settings(settings))
    return uvicorn.Config(
        app,
        http=cast(type[asyncio.Protocol], protocol),
        ws="none",
        access_log=False,
        **options,
    )
