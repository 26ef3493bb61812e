"""The client of one OpenAI-compatible server (vLLM, llama.cpp's llama-server, SGLang),
with the interface of ``OllamaClient``: Ollama-shaped requests in, Ollama-shaped answers
out (``openai_mapping`` translates), so routing, lanes, fallbacks and every face work
the same whatever kind an upstream is.

* Models: ``/v1/models`` (each one counts as loaded: the server serves what it loaded).
* Health: ``/health``; 503 there is "not ready" (llama.cpp while it loads the model),
  not "down" (``NotReady``).
* Chats and generations always stream, so ``usage`` and cancellation are the server's
  own (closing the connection stops it); a non-streamed call is the stream gathered.
* Errors map onto the service's table (400 bad request, 404 unknown model, 429/503
  busy, 401/403 a wrong key for the upstream, 5xx the server failed).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Any

import httpx

from server.errors import (
    LlmError,
    ModelNotFound,
    OllamaBadRequest,
    OllamaBusy,
    OllamaError,
    OllamaUnavailable,
    StreamInterrupted,
)
from server.ollama_client import OllamaClient, body_lines, parse_object
from server.ollama_http import Response
from server.upstreams import openai_mapping as mapping

JsonObject = dict[str, Any]


class NotReady(OllamaUnavailable):
    """The server answers but is not ready yet (loading its model)."""


class OpenAIStream:
    """An open streamed answer and what it is (a chat or a completion)."""

    def __init__(self, response: Response, completion: bool) -> None:
        self.response = response
        self.completion = completion

    async def aclose(self) -> None:
        await self.response.aclose()


class OpenAIClient(OllamaClient):
    """Ollama's client interface over an OpenAI-compatible server (see the module)."""

    def _where(self) -> str:
        return f"the OpenAI-compatible server at {self.base_url}"

    # -- catalogue -----------------------------------------------------------------

    async def version(self) -> str:
        try:
            response = await self._http.get("/health")
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, "", self._timeout) from exc
        if response.status_code == 503:
            raise NotReady(f"{self._where()} is not ready: {mapping.error_text(response.content)}")
        if response.status_code != 200:
            raise self._status_error(response.status_code, response.content, "")
        return "openai-compatible"

    async def tags(self) -> list[JsonObject]:
        data = await self._get_json("/v1/models")
        return [
            {
                "name": str(m.get("id")),
                "model": str(m.get("id")),
                "modified_at": _rfc3339(m.get("created")),
                "size": 0,
                "digest": "",
                "details": {"format": "openai", "family": str(m.get("owned_by") or "")},
            }
            for m in data.get("data") or []
            if isinstance(m, dict) and m.get("id")
        ]

    async def running(self) -> list[JsonObject]:
        # Loaded for as long as the server runs: Ollama's "never" (keep_alive -1).
        return [{**m, "size_vram": 0, "expires_at": FOREVER} for m in await self.tags()]

    async def show(self, model: str, timeout: float) -> JsonObject:
        """What an OpenAI-compatible server tells of a model: little. No capability is
        claimed or denied (the server itself refuses what its model cannot do)."""
        for entry in await self.tags():
            if entry["name"] == model:
                return {
                    "details": entry["details"],
                    "model_info": {},
                    "modified_at": entry["modified_at"],
                }
        raise ModelNotFound(f"model '{model}' not found on {self._where()}")

    # -- generation ----------------------------------------------------------------

    async def chat(self, payload: JsonObject, timeout: float) -> JsonObject:
        return await self._whole("/api/chat", payload, timeout)

    async def generate(self, payload: JsonObject, timeout: float) -> JsonObject:
        if not payload.get("prompt") and not payload.get("images"):
            # Ollama's load request: the server has its model loaded already.
            return {"model": payload["model"], "response": "", "done": True, "done_reason": "load"}
        return await self._whole("/api/generate", payload, timeout)

    async def _whole(self, path: str, payload: JsonObject, timeout: float) -> JsonObject:
        stream = await self.open_stream(path, payload, timeout)
        chunks = [c async for c in self.chunks(stream, str(payload["model"]), timeout)]
        return mapping.whole(chunks, stream.completion)

    async def open_stream(  # type: ignore[override]
        self, path: str, payload: JsonObject, timeout: float
    ) -> OpenAIStream:
        model = str(payload.get("model", ""))
        if path == "/api/chat":
            route, body, completion = "/v1/chat/completions", mapping.chat_body(payload), False
        else:
            route, body = mapping.generate_body(payload)
            completion = True
        response = await self._post(route, body, model, timeout)
        if response.status_code != 200:
            raise await self._error(response, model, timeout)
        return OpenAIStream(response, completion)

    def chunks(  # type: ignore[override]
        self, response: OpenAIStream, model: str, timeout: float
    ) -> AsyncGenerator[JsonObject]:
        return self._translated(response, model, timeout)

    async def _translated(
        self, stream: OpenAIStream, model: str, timeout: float
    ) -> AsyncGenerator[JsonObject]:
        translation = mapping.Translation(model, stream.completion)
        ended = False
        try:
            lines = body_lines(stream.response, self._max_line, model)
            async for line in lines:
                if not line.startswith(b"data:"):
                    continue  # comments, event names
                data = line[5:].strip()
                if data == b"[DONE]":
                    # Read to the end of the body, so the connection goes back to the
                    # pool instead of being closed (as Ollama's chunks do after "done").
                    async for _ in lines:
                        pass
                    ended = True
                    break
                chunk = parse_object(data, model, "the upstream")
                if "error" in chunk:
                    text = mapping.error_text(data)
                    raise OllamaError(f"{self._where()} failed mid-answer: {text}", text)
                for out in translation.chunk(chunk):
                    yield out
        except httpx.HTTPError as exc:
            if isinstance(exc, httpx.TimeoutException):
                raise self._transport_error(exc, model, timeout) from exc
            raise StreamInterrupted(f"the answer of {self._where()} was cut off: {exc}") from exc
        if not ended and not translation.finish:
            raise StreamInterrupted(f"the answer of {self._where()} ended before it was done")
        for out in translation.end():
            yield out

    async def embed(self, payload: JsonObject, timeout: float) -> JsonObject:
        model = str(payload.get("model", ""))
        response = await self._post("/v1/embeddings", mapping.embed_body(payload), model, timeout)
        if response.status_code != 200:
            raise await self._error(response, model, timeout)
        content, whole = await self._read(response, model, timeout, self._max_line)
        if not whole:
            raise OllamaError(f"the embeddings of {self._where()} are over {self._max_line} bytes")
        return mapping.embed_answer(parse_object(content, model, "the upstream"), model)

    # -- errors --------------------------------------------------------------------

    def _status_error(self, status: int, content: bytes, model: str) -> LlmError:
        text = mapping.error_text(content)[:500]
        about = f" for model '{model}'" if model else ""
        if status in (400, 422, 501):
            return OllamaBadRequest(f"{self._where()} rejected the request{about}: {text}", text)
        if status == 404:
            return ModelNotFound(f"model '{model}' not found on {self._where()} ({text})", text)
        if status in (429, 503):
            return OllamaBusy(f"{self._where()} is busy{about}: {text}", text)
        if status in (401, 403):
            return OllamaUnavailable(f"{self._where()} refused the service's API key: {text}")
        return OllamaError(f"{self._where()} answered {status}{about}: {text}", text)


FOREVER = "2318-01-01T00:00:00Z"


def _rfc3339(created: Any) -> str:
    """A model's creation time (unix seconds in /v1/models) as Ollama writes times."""
    seconds = created if isinstance(created, int | float) and created > 0 else 0
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
