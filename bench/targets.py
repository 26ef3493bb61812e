"""The ways to send the same chat: straight to Ollama, over gRPC, over REST, and
through the service's Ollama face.

Each target has one long-lived client, built the same way for every path: httpx
(direct and REST) with as many pooled connections as the load has workers, or
``grpc.aio`` channels used round-robin (gRPC). Bodies are serialised once; a request
only checks the status and, for streams, timestamps every chunk as it arrives.

The httpx connections are spread over several ``AsyncClient``s of ``PER_CLIENT``
connections each, used round-robin: httpcore's pool looks at every one of its
connections on every request (``_assign_requests_to_connections``, with a socket
readability check per idle connection), so one client with 64 connections spends
~10 ms of CPU per request and the bench would measure its own client. Eight
connections per client keep that cost near the one-connection cost.

The same request on every path: the direct body is the one the service itself sends
to Ollama for ``{"message": MESSAGE, "model": MODEL}`` (server/validation.py
``chat_payload`` with the default settings).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc
import httpx

from generated.llm.v1 import llm_service_pb2 as pb
from generated.llm.v1 import llm_service_pb2_grpc as pb_grpc
from server.ollama_http import HttpPool

MODEL = "llama3.2"
# Server defaults (OLLAMA_MAX_TOKENS, OLLAMA_TEMPERATURE, OLLAMA_TOP_P) as chat_payload
# puts them in the body it sends to Ollama.
OPTIONS = {"num_predict": 2048, "temperature": 0.7, "top_p": 0.9}
REQUEST_TIMEOUT = 60.0
PER_CLIENT = 8
# Below uvicorn's 5 s keep-alive timeout (the emulator's and the REST face's): a
# connection idle through another target's round is dropped by the client first,
# instead of being reused just as the server closes it (a spurious ReadError).
KEEPALIVE_EXPIRY = 2.0
JSON_HEADERS = {"content-type": "application/json"}


def words(n: int) -> str:
    """A message of ``n`` words: the emulator answers "Echo: " + it, one token per word."""
    return " ".join(f"w{i}" for i in range(n))


@dataclass
class StreamTrace:
    """One streamed answer: when it was asked for, when each token chunk arrived."""

    start: float
    arrivals: list[float] = field(default_factory=list)
    done: bool = False


class Target(Protocol):
    name: str

    async def chat(self) -> None:
        """One non-streamed chat; raises on any failure."""

    async def stream(self, trace: StreamTrace) -> None:
        """One streamed chat, timestamped into ``trace`` as it arrives (so a stream cut
        short still tells what it got); raises on any failure."""

    async def aclose(self) -> None: ...


class BadAnswer(Exception):
    """An answer with the wrong status or shape."""


def _http_clients(base_url: str, connections: int) -> list[httpx.AsyncClient]:
    """``connections`` pooled connections, ``PER_CLIENT`` per client."""
    count = max(1, -(-connections // PER_CLIENT))
    per = -(-connections // count)
    limits = httpx.Limits(
        max_connections=per, max_keepalive_connections=per, keepalive_expiry=KEEPALIVE_EXPIRY
    )
    timeout = httpx.Timeout(REQUEST_TIMEOUT)
    return [
        httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) for _ in range(count)
    ]


async def post_stream(
    client: httpx.AsyncClient,
    name: str,
    path: str,
    body: bytes,
    separator: bytes,
    each: Callable[[float, bytes], None],
) -> None:
    """POSTs ``body`` and hands every ``separator``-delimited piece of the streamed answer
    to ``each``, with the time the chunk that completed it arrived; a status other than
    200 is a ``BadAnswer`` named ``name``."""
    async with client.stream("POST", path, content=body, headers=JSON_HEADERS) as response:
        if response.status_code != 200:
            await response.aread()
            raise BadAnswer(f"{name}: HTTP {response.status_code} {response.text[:200]}")
        pending = b""
        async for data in response.aiter_raw():
            now = time.perf_counter()
            pending += data
            *items, pending = pending.split(separator)
            for item in items:
                each(now, item)


class _HttpTarget:
    """POSTs a pre-serialised body; the stream splits the body on ``separator``."""

    name: str
    _path: str
    _stream_path: str
    _separator: bytes
    _done_marker = b'"done":true'

    def __init__(self, base_url: str, connections: int, chat: bytes, stream: bytes) -> None:
        self.base_url = base_url
        self._clients = _http_clients(base_url, connections)
        self._next = itertools.cycle(self._clients)
        self._chat_body = chat
        self._stream_body = stream

    async def chat(self) -> None:
        response = await next(self._next).post(
            self._path, content=self._chat_body, headers=JSON_HEADERS
        )
        if response.status_code != 200:
            raise BadAnswer(f"{self.name}: HTTP {response.status_code} {response.text[:200]}")

    async def stream(self, trace: StreamTrace) -> None:
        marker = self._done_marker

        def each(now: float, item: bytes) -> None:
            if not item.strip():
                return
            if marker in item:
                trace.done = True
            elif item.startswith(b"event: error"):
                raise BadAnswer(f"{self.name}: {item[:300]!r}")
            else:
                trace.arrivals.append(now)

        await post_stream(
            next(self._next), self.name, self._stream_path, self._stream_body, self._separator, each
        )
        if not trace.done:
            raise BadAnswer(f"{self.name}: stream ended without its final chunk")

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()


def _dumps(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


class DirectTarget(_HttpTarget):
    """Ollama's own API (here the emulator): /api/chat, NDJSON when streamed."""

    name = "direct"
    _path = _stream_path = "/api/chat"
    _separator = b"\n"

    def __init__(self, base_url: str, connections: int, message: str, stream_message: str):
        def body(text: str, stream: bool) -> bytes:
            messages = [{"role": "user", "content": text}]
            return _dumps(
                {"model": MODEL, "messages": messages, "options": OPTIONS, "stream": stream}
            )

        super().__init__(base_url, connections, body(message, False), body(stream_message, True))


class OllamaFaceTarget(DirectTarget):
    """The service's Ollama face: the very requests ``DirectTarget`` sends to Ollama,
    sent to the service's /api/chat instead (what an Ollama client does)."""

    name = "ollama"


class RestTarget(_HttpTarget):
    """The REST shim: POST /chat (JSON) and POST /chat/stream (Server-Sent Events)."""

    name = "rest"
    _path = "/chat"
    _stream_path = "/chat/stream"
    _separator = b"\n\n"

    def __init__(self, base_url: str, connections: int, message: str, stream_message: str):
        super().__init__(
            base_url,
            connections,
            _dumps({"message": message, "model": MODEL}),
            _dumps({"message": stream_message, "model": MODEL}),
        )


class LeanHttpTarget:
    """The same chat as ``DirectTarget``/``RestTarget`` (``of``), sent with the
    service's own lean HTTP/1.1 client (``server.ollama_http``): about a tenth of
    httpx's CPU per request. Serial latency only: with it the HTTP paths are measured
    with a client as cheap as grpc.aio's, so gRPC's "added" is not flattered by the
    direct client's cost."""

    def __init__(self, of: Target) -> None:
        assert isinstance(of, _HttpTarget)
        self.name = of.name
        self._path = of._path
        self._body = of._chat_body
        self._pool = HttpPool(of.base_url)

    async def chat(self) -> None:
        response = await self._pool.post(
            self._path, self._body, connect_timeout=REQUEST_TIMEOUT, read_timeout=REQUEST_TIMEOUT
        )
        body = await response.aread()
        if response.status_code != 200:
            raise BadAnswer(f"{self.name}: HTTP {response.status_code} {body[:200]!r}")

    async def stream(self, trace: StreamTrace) -> None:
        raise NotImplementedError("the lean client measures serial latency only")

    async def aclose(self) -> None:
        await self._pool.aclose()


class GrpcTarget:
    """``llm.v1.LlmService`` Chat and ChatStream over ``channels`` grpc.aio channels.

    Each channel gets its own subchannel pool, hence its own HTTP/2 connection:
    channels with the same arguments would otherwise share one connection.
    """

    name = "grpc"

    def __init__(self, target: str, channels: int, message: str, stream_message: str):
        options = [("grpc.use_local_subchannel_pool", 1)]
        self._channels = [
            grpc.aio.insecure_channel(target, options=options) for _ in range(max(1, channels))
        ]
        self._stubs = itertools.cycle([pb_grpc.LlmServiceStub(c) for c in self._channels])
        self._request = pb.ChatRequest(message=message, model=MODEL)
        self._stream_request = pb.ChatStreamRequest(
            request=pb.ChatRequest(message=stream_message, model=MODEL)
        )

    async def chat(self) -> None:
        reply = await next(self._stubs).Chat(self._request, timeout=REQUEST_TIMEOUT)
        if not reply.response:
            raise BadAnswer("grpc: empty answer")

    async def stream(self, trace: StreamTrace) -> None:
        call = next(self._stubs).ChatStream(self._stream_request, timeout=REQUEST_TIMEOUT)
        async for event in call:
            if event.done:
                trace.done = True
                break
            trace.arrivals.append(time.perf_counter())
        if not trace.done:
            raise BadAnswer("grpc: stream ended without its final event")

    async def aclose(self) -> None:
        for channel in self._channels:
            await channel.close(None)
