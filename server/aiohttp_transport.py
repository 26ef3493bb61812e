"""An httpx transport on aiohttp: the httpx API the service is written against, with
aiohttp's faster connection handling underneath (httpcore and anyio cost most of the
server's time per request).

aiohttp's exceptions are mapped to the httpx ones they mean, so ``OllamaClient`` keeps
one error boundary: a refused connection is ``ConnectError``, a connection that is not
accepted in time ``ConnectTimeout``, a silent socket ``ReadTimeout``, and a connection
cut mid-answer ``RemoteProtocolError``. Closing a response before its end closes its
connection (never returned to the pool half-read), which is how Ollama learns to stop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
import httpx


@contextmanager
def _mapped(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except aiohttp.ClientConnectorError as exc:
        raise httpx.ConnectError(str(exc) or "connection refused", request=request) from exc
    except aiohttp.ConnectionTimeoutError as exc:
        raise httpx.ConnectTimeout(str(exc) or "connect timeout", request=request) from exc
    except TimeoutError as exc:  # aiohttp's SocketTimeoutError: the answer is late
        raise httpx.ReadTimeout("read timeout", request=request) from exc
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as exc:
        raise httpx.RemoteProtocolError(
            f"peer closed connection without sending complete message body ({exc})",
            request=request,
        ) from exc
    except aiohttp.ClientError as exc:
        raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped(self._request):
            async for chunk in self._response.content.iter_any():
                yield chunk

    async def aclose(self) -> None:
        if self._response.content.at_eof():
            self._response.release()
        else:
            self._response.close()  # half-read: drop the connection, Ollama stops


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session (created on first use, in the running loop)."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # Idle connections are dropped before a server's usual 5 s keep-alive ends,
            # so a request never goes out on a connection the server is closing.
            connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=4)
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,  # httpx decodes by Content-Encoding itself
                skip_auto_headers=("User-Agent", "Accept-Encoding"),
                trust_env=False,
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts: dict[str, Any] = request.extensions.get("timeout", {})
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=timeouts.get("connect"), sock_read=timeouts.get("read")
        )
        body = await request.aread()
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        session = self._get_session()
        with _mapped(request):
            response = await session.request(
                request.method,
                str(request.url),
                headers=headers,
                data=body or None,
                timeout=timeout,
                allow_redirects=False,
            )
        return httpx.Response(
            status_code=response.status,
            headers=[(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers],
            stream=_Body(response, request),
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def aclose(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
            await asyncio.sleep(0)  # let aiohttp close its transports in this loop pass
