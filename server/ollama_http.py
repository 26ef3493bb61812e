"""A lean HTTP/1.1 client for Ollama's hot path: POST a JSON body, read the answer whole
or chunk by chunk as it arrives.

Every chat and embedding request goes through here; httpx (with httpcore and anyio
underneath) cost several times the CPU of the request itself, which is what a gateway
in front of Ollama is measured by. One ``HttpPool`` per Ollama host keeps idle
keep-alive connections; each connection is an ``asyncio.Protocol`` whose bytes go to
httptools' (llhttp) response parser, which handles Content-Length, chunked bodies and
the keep-alive decision.

Failures are raised as the httpx exceptions they mean, so ``OllamaClient`` keeps one
error boundary: a refused connection is ``ConnectError``, one not accepted in time
``ConnectTimeout``, a silent socket ``ReadTimeout`` (``read_timeout`` is the longest
wait for the next bytes), a connection cut mid-answer ``RemoteProtocolError``. Bytes
that arrived before a cut are still delivered before the error.

A response that is not read to its end (closed early, cancelled, failed) closes its
connection, which is how Ollama learns to stop generating; a complete one returns its
connection to the pool. An idle connection is dropped after ``keepalive`` seconds, before
a server's usual 5 s keep-alive ends; one the server closed anyway before answering is
retried once on a new connection (the server saw nothing, so nothing runs twice).
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import time
from collections import deque
from collections.abc import AsyncGenerator
from typing import cast
from urllib.parse import unquote, urlsplit

import httptools
import httpx

KEEPALIVE = 4.0
# Idle connections kept per host; past that the oldest are closed.
MAX_IDLE = 64
# Reading from the socket pauses while this much of a body waits for its reader.
HIGH_WATER = 256 * 1024


class _Stale(httpx.RemoteProtocolError):
    """The server closed the connection before sending a byte of the answer."""


class _Connection(asyncio.Protocol):
    """One keep-alive connection, one exchange at a time (no pipelining)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.idle_since = 0.0
        self.lost = False
        self.active = False
        self._begin()

    def _begin(self) -> None:
        self.status = 0
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.delimited = False  # Content-Length or chunked: the end is in the stream
        self.received = False
        self.error: httpx.TransportError | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.paused = False
        self.waiter: asyncio.Future[None] | None = None

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not subclasses of asyncio.Transport, only alike.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if not self.active:  # nothing was asked: a confused server
            self._close()
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"invalid HTTP answer from Ollama: {exc}"))
            self._close()

    def eof_received(self) -> bool:
        return False  # close the transport; connection_lost follows

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.active or self.complete:
            return
        if self.headers_done and not self.delimited:
            self.complete = True  # a body delimited by the end of the connection
            self._wake()
        elif not self.received:
            self._fail(_Stale("server disconnected without sending a response"))
        else:
            reason = f" ({exc})" if exc else ""
            self._fail(
                httpx.RemoteProtocolError(
                    f"peer closed connection without sending complete message body{reason}"
                )
            )

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered == b"content-length" or lowered == b"transfer-encoding":
            self.delimited = True

    def on_headers_complete(self) -> None:
        self.status = self.parser.get_status_code()
        if 100 <= self.status < 200:  # an interim answer: the real one follows
            return
        self.headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.headers_done:
            # Only known inside the callback: llhttp resets it once the message is done.
            self.keep_alive = self.parser.should_keep_alive()
            self.complete = True
            self._wake()

    # the exchange
    def start(self, request: bytes) -> None:
        self._begin()
        self.active = True
        assert self.transport is not None
        self.transport.write(request)

    async def wait(self, timeout: float) -> None:
        """Until something new happens (headers, bytes, the end, a failure); raises
        ``ReadTimeout`` after ``timeout`` seconds of nothing. Callers look at ``error``
        themselves, after the bytes that came before it."""
        loop = asyncio.get_running_loop()
        waiter = self.waiter = loop.create_future()
        timer = loop.call_later(timeout, self._time_out, waiter, timeout)
        try:
            await waiter
        finally:
            timer.cancel()
            self.waiter = None

    def take(self) -> bytes:
        data = b"".join(self.chunks) if len(self.chunks) != 1 else self.chunks[0]
        self.chunks.clear()
        self.buffered = 0
        if self.paused and self.transport is not None and not self.lost:
            self.paused = False
            self.transport.resume_reading()
        return data

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.lost

    def _time_out(self, waiter: asyncio.Future[None], timeout: float) -> None:
        if not waiter.done():
            waiter.set_exception(httpx.ReadTimeout(f"no answer from Ollama within {timeout:g} s"))

    def _fail(self, error: httpx.TransportError) -> None:
        if self.error is None:
            self.error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Response:
    """An answer whose status line and headers have arrived; the body follows.

    ``aclose()`` must be called (``aread()`` and a finished ``aiter_raw()`` call it)."""

    def __init__(self, pool: HttpPool, conn: _Connection, read_timeout: float) -> None:
        self._pool = pool
        self._conn: _Connection | None = conn
        self._read_timeout = read_timeout
        self.status_code = conn.status

    async def aread(self) -> bytes:
        parts = [chunk async for chunk in self.aiter_raw()]
        return parts[0] if len(parts) == 1 else b"".join(parts)

    async def aiter_raw(self) -> AsyncGenerator[bytes]:
        """The body as it arrives (chunked framing removed)."""
        conn = self._conn
        if conn is None:
            return
        try:
            while True:
                if conn.chunks:
                    yield conn.take()
                    continue
                if conn.complete:
                    break
                if conn.error is not None:
                    raise conn.error
                await conn.wait(self._read_timeout)
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._pool.release(conn)


def url_credentials(url: str) -> tuple[str, str] | None:
    """The user and password ``url`` carries (decoded), or None when it has none."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return None
    return unquote(parts.username or ""), unquote(parts.password or "")


class HttpPool:
    """Keep-alive connections to one server (``base_url``, maybe with a path prefix)."""

    def __init__(
        self,
        base_url: str,
        *,
        keepalive: float = KEEPALIVE,
        headers: dict[str, str] | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        secure = parts.scheme == "https"
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (443 if secure else 80)
        self._ssl = ssl.create_default_context() if secure else None
        self._prefix = parts.path.rstrip("/")
        authority = parts.netloc.rpartition("@")[2]
        auth = ""
        credentials = url_credentials(base_url)
        if credentials is not None:
            # Credentials in the URL (an authenticating proxy in front of Ollama) go on
            # every request as HTTP Basic, as httpx sends them for the catalogue calls.
            token = base64.b64encode(":".join(credentials).encode()).decode("ascii")
            auth = f"Authorization: Basic {token}\r\n"
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._head = (
            f"Host: {authority}\r\n{auth}{extra}Content-Type: application/json\r\nContent-Length: "
        )
        self._keepalive = keepalive
        self._idle: list[_Connection] = []
        self._open: set[_Connection] = set()

    async def post(
        self, path: str, body: bytes, *, connect_timeout: float, read_timeout: float
    ) -> Response:
        """Sends the request and waits for the answer's headers."""
        head = f"POST {self._prefix}{path} HTTP/1.1\r\n{self._head}{len(body)}\r\n\r\n"
        request = head.encode("latin-1") + body
        while True:
            conn = self._reuse()
            fresh = conn is None
            if conn is None:
                conn = await self._connect(connect_timeout)
            try:
                conn.start(request)
                while not conn.headers_done:
                    await conn.wait(read_timeout)
                    if conn.error is not None:
                        raise conn.error
            except _Stale:
                self._discard(conn)
                if fresh:
                    raise
                continue  # a kept-alive connection the server had just closed
            except BaseException:
                self._discard(conn)
                raise
            return Response(self, conn, read_timeout)

    def release(self, conn: _Connection) -> None:
        conn.active = False
        if not conn.reusable() or conn.chunks:
            self._discard(conn)
            return
        now = time.monotonic()
        conn.idle_since = now
        self._idle.append(conn)
        # Oldest first: close what expired, was closed by the server, or is over the cap.
        idle = self._idle
        while idle and (
            len(idle) > MAX_IDLE or idle[0].lost or now - idle[0].idle_since >= self._keepalive
        ):
            self._discard(idle.pop(0))

    async def aclose(self) -> None:
        for conn in list(self._open):
            self._discard(conn)
        self._idle.clear()
        await asyncio.sleep(0)  # let the transports close in this loop pass

    def _reuse(self) -> _Connection | None:
        now = time.monotonic()
        while self._idle:
            conn = self._idle.pop()
            if not conn.lost and now - conn.idle_since < self._keepalive:
                return conn
            self._discard(conn)
        return None

    async def _connect(self, timeout: float) -> _Connection:
        loop = asyncio.get_running_loop()
        where = f"{self._host}:{self._port}"
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(
                    _Connection,
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl else None,
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"no connection to {where} within {timeout:g} s") from None
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to {where}: {exc}") from exc
        self._open.add(conn)
        return conn

    def _discard(self, conn: _Connection) -> None:
        conn.active = False
        self._open.discard(conn)
        conn._close()
