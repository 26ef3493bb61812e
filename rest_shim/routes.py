"""The REST routes: each is one RPC plus JSON mapping; no business logic lives here."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import grpc
from starlette.requests import Request
from starlette.responses import Response

from generated.llm.v1 import llm_service_pb2 as pb
from rest_shim import mapping
from rest_shim.backend import PROBE_DEADLINE, Backend, backend, fallback_headers, metadata
from rest_shim.errors import ShimError, error_response, rpc_error_parts
from rest_shim.fastjson import JSONResponse
from rest_shim.http_io import ClientDisconnected, read_json_object, unless_disconnected
from rest_shim.sse import stream_chat
from server.version import SERVICE_VERSION

T = TypeVar("T")

SERVICE_NAME = "vllm-ollama-integration"
ENDPOINTS = {
    "root": "/",
    "health": "/health",
    "models": "/models",
    "chat": "/chat",
    "chat_stream": "/chat/stream",
    "embeddings": "/embeddings",
    "stats": "/stats",
    "usage": "/usage",
    "livez": "/livez",
    "readyz": "/readyz",
    "openapi": "/openapi.json",
    "docs": "/docs",
    "openai_chat_completions": "/v1/chat/completions",
    "openai_models": "/v1/models",
    "openai_embeddings": "/v1/embeddings",
    "console": "/console",
}


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


async def root(request: Request) -> Response:
    b = backend(request)
    stats = await b.stub.Stats(
        pb.StatsRequest(), timeout=PROBE_DEADLINE, metadata=metadata(request)
    )
    return JSONResponse(
        {
            "service": SERVICE_NAME,
            "version": SERVICE_VERSION,
            "description": "gRPC LLM service in front of Ollama, with this REST face",
            "endpoints": ENDPOINTS,
            "configuration": mapping.to_plain(stats.configuration),
            "timestamp": now_iso(),
        }
    )


async def health(request: Request) -> Response:
    """Same shape in every state: 200 healthy/degraded, 503 unhealthy."""
    b = backend(request)
    try:
        reply = await b.stub.Health(pb.HealthRequest(), timeout=PROBE_DEADLINE)
    except grpc.aio.AioRpcError as exc:
        _, code, detail = rpc_error_parts(exc)
        ollama = {
            "status": "unknown",
            "ollama_url": "",
            "available_models": [],
            "bge_m3_available": False,
            "gpt_oss_available": False,
            "total_models": 0,
            "last_check": None,
            "response_time_ms": 0.0,
            "error": detail,
        }
        body: dict[str, Any] = {
            "status": "unhealthy",
            "services": {"ollama": ollama, "grpc_server": {"status": "unhealthy", "code": code}},
            "configuration": {},
            "timestamp": now_iso(),
        }
        return JSONResponse(body, status_code=503)
    status = 503 if reply.status == "unhealthy" else 200
    return JSONResponse(mapping.health_reply(reply), status_code=status)


async def livez(request: Request) -> Response:
    return JSONResponse({"status": "alive", "timestamp": now_iso()})


async def readyz(request: Request) -> Response:
    b = backend(request)
    try:
        reply = await b.stub.Health(pb.HealthRequest(), timeout=PROBE_DEADLINE)
    except grpc.aio.AioRpcError as exc:
        _, code, detail = rpc_error_parts(exc)
        return error_response(503, code, detail)
    if reply.status == "unhealthy":
        return error_response(503, "ollama_unavailable", reply.ollama.error or "Ollama is down")
    return JSONResponse({"status": "ready", "health": reply.status, "timestamp": now_iso()})


async def models(request: Request) -> Response:
    b = backend(request)
    reply = await b.stub.ListModels(
        pb.ListModelsRequest(), timeout=b.deadline, metadata=metadata(request)
    )
    return JSONResponse(mapping.models_reply(reply))


async def stats(request: Request) -> Response:
    b = backend(request)
    reply = await b.stub.Stats(
        pb.StatsRequest(), timeout=PROBE_DEADLINE, metadata=metadata(request)
    )
    return JSONResponse(mapping.stats_reply(reply))


def _shape(exc: mapping.BodyShapeError) -> ShimError:
    return ShimError(422, "invalid_body", str(exc))


async def _chat_body(request: Request, b: Backend) -> tuple[pb.ChatRequest, bool]:
    body = await read_json_object(request, b.settings.max_request_bytes)
    stream = body.pop("stream", None)
    if stream is not None and not isinstance(stream, bool):
        raise ShimError(422, "invalid_body", "stream: must be true or false")
    try:
        return mapping.chat_request(body), bool(stream)
    except mapping.BodyShapeError as exc:
        raise _shape(exc) from None


async def chat(request: Request) -> Response:
    """The answer as JSON, or as Server-Sent Events when the body says stream: true."""
    b = backend(request)
    rpc_request, stream = await _chat_body(request, b)
    if stream:
        return await stream_chat(request, b, rpc_request)
    call = b.stub.Chat(rpc_request, timeout=b.deadline, metadata=metadata(request))
    return await _answer(request, call, mapping.chat_reply)


async def chat_stream(request: Request) -> Response:
    b = backend(request)
    rpc_request, _ = await _chat_body(request, b)
    return await stream_chat(request, b, rpc_request)


async def embeddings(request: Request) -> Response:
    b = backend(request)
    body = await read_json_object(request, b.settings.max_request_bytes)
    try:
        rpc_request = mapping.embed_request(body)
    except mapping.BodyShapeError as exc:
        raise _shape(exc) from None
    call = b.stub.Embed(rpc_request, timeout=b.deadline, metadata=metadata(request))
    return await _answer(request, call, mapping.embed_reply)


async def _answer(
    request: Request, call: Awaitable[T], shape: Callable[[T], dict[str, Any]]
) -> Response:
    """The RPC's reply as JSON; the RPC is cancelled if the client leaves first."""
    try:
        reply = await unless_disconnected(request.receive, call)
    except ClientDisconnected:
        return error_response(499, "cancelled", "the client closed the request")
    return JSONResponse(shape(reply), headers=fallback_headers(reply))
