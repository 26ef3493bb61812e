"""The one boundary between the service and Ollama's HTTP API.

Every transport failure and every Ollama error status becomes a domain error from
``server.errors`` here, with a message that says what happened and to which model.
Closing a streamed response closes its connection, and Ollama stops generating.

Chats and embeddings (the hot path) go through the lean client of
``server.ollama_http``; the rare catalogue calls (version, tags) through one
``httpx.AsyncClient``. Both raise httpx's exceptions, mapped here in one place.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator
from typing import Any

import httpx
import orjson

from server.config import without_credentials
from server.errors import (
    LlmError,
    ModelNotFound,
    OllamaBadRequest,
    OllamaBusy,
    OllamaConnectFailed,
    OllamaError,
    OllamaTimeout,
    OllamaUnavailable,
    StreamInterrupted,
)
from server.ollama_http import HttpPool, Response, url_credentials

JsonObject = dict[str, Any]

# Most of an error body read from Ollama (Ollama's own are a line); the rest is dropped
# with the connection.
MAX_ERROR_BODY = 64 * 1024
# Most of Ollama's error text repeated to callers.
MAX_ERROR_TEXT = 500


class OllamaClient:
    """Async client of one Ollama server, sharing one connection pool."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        connect_timeout: float,
        max_line_bytes: int = 16 * 1024 * 1024,
        headers: dict[str, str] | None = None,
    ) -> None:
        # Shown in errors without the user and password; the requests still carry them.
        self.base_url = without_credentials(base_url)
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._max_line = max_line_bytes
        self._pool = HttpPool(base_url, headers=headers)
        credentials = url_credentials(base_url)
        auth = httpx.BasicAuth(*credentials) if credentials is not None else None
        # The URL without credentials (httpx logs its requests' URLs); they go as auth.
        # Idle connections are dropped before a server's usual 5 s keep-alive ends.
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            auth=auth,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            limits=httpx.Limits(max_keepalive_connections=4, keepalive_expiry=4.0),
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()
        await self._http.aclose()

    async def version(self) -> str:
        data = await self._get_json("/api/version")
        return str(data.get("version", ""))

    async def tags(self) -> list[JsonObject]:
        return await self._models("/api/tags")

    async def chat(self, payload: JsonObject, timeout: float) -> JsonObject:
        """Non-streaming /api/chat; ``timeout`` bounds the whole call, in seconds."""
        return await self._answer("/api/chat", payload, timeout)

    async def generate(self, payload: JsonObject, timeout: float) -> JsonObject:
        """Non-streaming /api/generate."""
        return await self._answer("/api/generate", payload, timeout)

    async def _answer(self, path: str, payload: JsonObject, timeout: float) -> JsonObject:
        model = str(payload.get("model", ""))
        data = await self._post_json(path, {**payload, "stream": False}, model, timeout)
        if "error" in data:
            text = _shorten(data["error"])
            raise OllamaError(f"Ollama failed to answer with model '{model}': {text}", text)
        return data

    async def open_stream(self, path: str, payload: JsonObject, timeout: float) -> Response:
        """Starts a streaming /api/chat or /api/generate and checks its status; the
        caller reads the body with ``chunks`` and must ``aclose()`` the response (which
        closes the connection and stops Ollama generating)."""
        model = str(payload.get("model", ""))
        response = await self._post(path, {**payload, "stream": True}, model, timeout)
        if response.status_code != 200:
            raise await self._error(response, model, timeout)
        return response

    async def show(self, model: str, timeout: float) -> JsonObject:
        return await self._post_json("/api/show", {"model": model}, model, timeout)

    async def running(self) -> list[JsonObject]:
        """/api/ps: the models loaded in memory."""
        return await self._models("/api/ps")

    async def _models(self, path: str) -> list[JsonObject]:
        """The ``models`` list of a GET answer (/api/tags, /api/ps)."""
        data = await self._get_json(path)
        models = data.get("models") or []
        if not isinstance(models, list):
            raise OllamaError(f"Ollama's {path} answer has no model list")
        return [m for m in models if isinstance(m, dict)]

    def chunks(self, response: Response, model: str, timeout: float) -> AsyncGenerator[JsonObject]:
        """Ollama's NDJSON chunks. Raises ``OllamaError`` on an ``{"error"}`` line and
        ``StreamInterrupted`` when the stream ends without a ``done: true`` chunk."""
        return self._chunks(response, model, timeout)

    async def _chunks(
        self, response: Response, model: str, timeout: float
    ) -> AsyncGenerator[JsonObject]:
        try:
            lines = body_lines(response, self._max_line, model)
            async for line in lines:
                chunk = parse_object(line, model)
                if "error" in chunk:
                    text = _shorten(chunk["error"])
                    raise OllamaError(
                        f"Ollama failed mid-answer with model '{model}': {text}", text
                    )
                if chunk.get("done"):
                    # Read to the end of the body first, so the connection goes back to
                    # the pool instead of being closed.
                    async for _ in lines:
                        pass
                    yield chunk
                    return
                yield chunk
        except httpx.HTTPError as exc:
            if isinstance(exc, httpx.TimeoutException):
                raise self._transport_error(exc, model, timeout) from exc
            raise StreamInterrupted(
                f"Ollama's answer with model '{model}' was cut off: {_describe(exc)}"
            ) from exc
        raise StreamInterrupted(f"Ollama's answer with model '{model}' ended before it was done")

    async def embed(self, payload: JsonObject, timeout: float) -> JsonObject:
        return await self._post_json("/api/embed", payload, str(payload.get("model", "")), timeout)

    async def _post_json(
        self, path: str, body: JsonObject, model: str, timeout: float
    ) -> JsonObject:
        response = await self._post(path, body, model, timeout)
        if response.status_code != 200:
            raise await self._error(response, model, timeout)
        content, whole = await self._read(response, model, timeout, self._max_line)
        if not whole:
            raise OllamaError(
                f"Ollama's answer for model '{model}' is over {self._max_line} bytes "
                "(OLLAMA_MAX_LINE_BYTES)"
            )
        return parse_object(content, model)

    async def _post(self, path: str, body: JsonObject, model: str, timeout: float) -> Response:
        try:
            return await self._pool.post(
                path,
                orjson.dumps(body),
                connect_timeout=min(self._connect_timeout, timeout),
                read_timeout=timeout,
            )
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, model, timeout) from exc

    async def _error(self, response: Response, model: str, timeout: float) -> LlmError:
        """The domain error for an answer with an error status, from at most
        ``MAX_ERROR_BODY`` bytes of its body."""
        content, _ = await self._read(response, model, timeout, MAX_ERROR_BODY)
        return self._status_error(response.status_code, content, model)

    def _status_error(self, status: int, content: bytes, model: str) -> LlmError:
        """The domain error for an error ``status`` and its body (the upstream's table;
        Ollama's: see ollama/ollama server/routes.go)."""
        text = _error_text(content)
        if status == 404:
            return ModelNotFound(f"model '{model}' not found in Ollama ({text})", text)
        if status in (400, 501):  # 501: the model lacks the capability (embeddings)
            return OllamaBadRequest(
                f"Ollama rejected the request for model '{model}': {text}", text
            )
        if status == 503:
            return OllamaBusy(f"Ollama is busy (model '{model}'): {text}", text)
        return OllamaError(f"Ollama answered {status} for model '{model}': {text}", text)

    async def _read(
        self, response: Response, model: str, timeout: float, limit: int
    ) -> tuple[bytes, bool]:
        """The body, and whether it was whole: reading stops past ``limit`` bytes and
        the connection is closed (never returned to the pool half read)."""
        parts: list[bytes] = []
        size = 0
        chunks = response.aiter_raw()
        try:
            async for data in chunks:
                size += len(data)
                if size > limit:
                    parts.append(data[: max(0, limit - size + len(data))])
                    return b"".join(parts), False
                parts.append(data)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, model, timeout) from exc
        finally:
            await chunks.aclose()
            await response.aclose()
        return b"".join(parts), True

    async def _get_json(self, path: str) -> JsonObject:
        try:
            async with self._http.stream("GET", path) as response:
                limit = self._max_line if response.status_code == 200 else MAX_ERROR_BODY
                parts: list[bytes] = []
                size = 0
                async for data in response.aiter_bytes():
                    size += len(data)
                    if size > limit:
                        break
                    parts.append(data)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, "", self._timeout) from exc
        content = b"".join(parts)
        if response.status_code != 200:
            raise self._status_error(response.status_code, content, "")
        if size > limit:
            raise OllamaError(f"Ollama's answer to {path} is over {limit} bytes")
        return parse_object(content, "")

    def _transport_error(self, exc: httpx.HTTPError, model: str, timeout: float) -> LlmError:
        about = f" with model '{model}'" if model else ""
        if isinstance(exc, httpx.ConnectTimeout):
            connect = min(self._connect_timeout, timeout)
            return OllamaConnectFailed(
                f"connect timeout: Ollama at {self.base_url} did not accept a connection "
                f"within {connect:g} s{about}"
            )
        if isinstance(exc, httpx.TimeoutException):
            return OllamaTimeout(f"read timeout: Ollama did not answer{about} within {timeout:g} s")
        if isinstance(exc, httpx.ConnectError):
            return OllamaConnectFailed(
                f"Ollama at {self.base_url} is unreachable{about}: {_describe(exc)}"
            )
        return OllamaUnavailable(f"Ollama at {self.base_url} failed{about}: {_describe(exc)}")


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return text or type(exc).__name__


async def body_lines(response: Response, limit: int, model: str) -> AsyncGenerator[bytes]:
    """The non-empty lines of an NDJSON body, as they arrive. A line longer than
    ``limit`` bytes fails the answer (``OllamaError``) before more of it is held."""
    pending: list[bytes] = []  # the start of a line still arriving
    size = 0
    async for data in response.aiter_raw():
        lines = data.split(b"\n")
        if len(lines) > 1:
            lines[0] = b"".join((*pending, lines[0]))
            pending, size = [], 0
            for line in lines[:-1]:
                if len(line) > limit:
                    raise _line_too_long(limit, model)
                if line.strip():
                    yield line
        if lines[-1]:
            pending.append(lines[-1])
            size += len(lines[-1])
            if size > limit:
                raise _line_too_long(limit, model)
    last = b"".join(pending)
    if last.strip():
        yield last


def _line_too_long(limit: int, model: str) -> OllamaError:
    return OllamaError(
        f"Ollama sent a line over {limit} bytes for model '{model}' (OLLAMA_MAX_LINE_BYTES)"
    )


def parse_object(content: bytes, model: str, sender: str = "Ollama") -> JsonObject:
    """``content`` as a JSON object; anything else fails the answer (``OllamaError``)."""
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        raise OllamaError(f"{sender} sent an answer that is not JSON (model '{model}')") from None
    if not isinstance(data, dict):
        raise OllamaError(f"{sender} sent an answer that is not a JSON object (model '{model}')")
    return data


def _shorten(text: object) -> str:
    value = str(text).strip()
    if len(value) <= MAX_ERROR_TEXT:
        return value
    return f"{value[:MAX_ERROR_TEXT]}... ({len(value)} characters)"


def _error_text(content: bytes) -> str:
    """Ollama's message from an error body (``{"error": ...}``), shortened."""
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        return _shorten(content.decode(errors="replace"))
    if isinstance(data, dict) and "error" in data:
        return _shorten(data["error"])
    return _shorten(data)


def elapsed_ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
