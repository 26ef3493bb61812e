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
from server.ollama_http import HttpPool, Response

JsonObject = dict[str, Any]


class OllamaClient:
    """Async client of one Ollama server, sharing one connection pool."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        connect_timeout: float,
    ) -> None:
        self.base_url = base_url
        self._timeout = timeout
        self._connect_timeout = connect_timeout
        self._pool = HttpPool(base_url)
        # Idle connections are dropped before a server's usual 5 s keep-alive ends.
        self._http = httpx.AsyncClient(
            base_url=base_url,
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
        data = await self._get_json("/api/tags")
        models = data.get("models") or []
        if not isinstance(models, list):
            raise OllamaError("Ollama's /api/tags answer has no model list")
        return [m for m in models if isinstance(m, dict)]

    async def chat(self, payload: JsonObject, timeout: float) -> JsonObject:
        """Non-streaming /api/chat; ``timeout`` bounds the whole call, in seconds."""
        model = str(payload.get("model", ""))
        data = await self._post_json("/api/chat", {**payload, "stream": False}, model, timeout)
        if "error" in data:
            raise OllamaError(f"Ollama failed to answer with model '{model}': {data['error']}")
        return data

    async def open_chat_stream(self, payload: JsonObject, timeout: float) -> Response:
        """Starts a streaming /api/chat and checks its status; the caller reads the body
        with ``chunks`` and must ``aclose()`` the response (which closes the connection
        and stops Ollama generating)."""
        model = str(payload.get("model", ""))
        response = await self._post("/api/chat", {**payload, "stream": True}, model, timeout)
        if response.status_code != 200:
            content = await self._read(response, model, timeout)
            raise _status_error(response.status_code, content, model)
        return response

    def chunks(self, response: Response, model: str, timeout: float) -> AsyncGenerator[JsonObject]:
        """Ollama's NDJSON chunks. Raises ``OllamaError`` on an ``{"error"}`` line and
        ``StreamInterrupted`` when the stream ends without a ``done: true`` chunk."""
        return self._chunks(response, model, timeout)

    async def _chunks(
        self, response: Response, model: str, timeout: float
    ) -> AsyncGenerator[JsonObject]:
        try:
            lines = _ndjson_lines(response)
            async for line in lines:
                chunk = _parse_object(line, model)
                if "error" in chunk:
                    raise OllamaError(
                        f"Ollama failed mid-answer with model '{model}': {chunk['error']}"
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
        content = await self._read(response, model, timeout)
        if response.status_code != 200:
            raise _status_error(response.status_code, content, model)
        return _parse_object(content, model)

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

    async def _read(self, response: Response, model: str, timeout: float) -> bytes:
        try:
            return await response.aread()
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, model, timeout) from exc

    async def _get_json(self, path: str) -> JsonObject:
        try:
            response = await self._http.get(path)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, "", self._timeout) from exc
        if response.status_code != 200:
            raise _status_error(response.status_code, response.content, "")
        return _parse_object(response.content, "")

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


async def _ndjson_lines(response: Response) -> AsyncGenerator[bytes]:
    """The non-empty lines of an NDJSON body, as they arrive."""
    pending = b""
    async for data in response.aiter_raw():
        pending += data
        *lines, pending = pending.split(b"\n")
        for line in lines:
            if line.strip():
                yield line
    if pending.strip():
        yield pending


def _parse_object(content: bytes, model: str) -> JsonObject:
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        raise OllamaError(f"Ollama sent an answer that is not JSON (model '{model}')") from None
    if not isinstance(data, dict):
        raise OllamaError(f"Ollama sent an answer that is not a JSON object (model '{model}')")
    return data


def _error_text(content: bytes) -> str:
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        return content.decode(errors="replace").strip()[:300]
    if isinstance(data, dict) and "error" in data:
        return str(data["error"])
    return str(data)[:300]


def _status_error(status: int, content: bytes, model: str) -> LlmError:
    """Ollama's error statuses, as domain errors (see ollama/ollama server/routes.go)."""
    text = _error_text(content)
    if status == 404:
        return ModelNotFound(f"model '{model}' not found in Ollama ({text})")
    if status in (400, 501):  # 501: the model lacks the capability (embeddings)
        return OllamaBadRequest(f"Ollama rejected the request for model '{model}': {text}")
    if status == 503:
        return OllamaBusy(f"Ollama is busy (model '{model}'): {text}")
    return OllamaError(f"Ollama answered {status} for model '{model}': {text}")


def elapsed_ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0
