"""Ollama's own API on the service: every route one RPC (or two), nothing else.

Errors are Ollama's ``{"error": "<message>"}`` with Ollama's status for the same case:
an unknown model 404, bad input 400, a full queue (the service's or Ollama's) 503
"server busy, please try again.  maximum pending requests exceeded" with Retry-After;
Ollama's own message text when the error came from Ollama. An error after the first
chunk of a stream is one last NDJSON line ``{"error": "..."}``, as Ollama sends it.
Model management (pull, push, create, copy, delete, blobs) is the operators': 403,
never forwarded.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from generated.llm.v1 import llm_service_pb2 as pb
from rest_shim.backend import PROBE_DEADLINE, Backend, backend, fallback_headers, metadata
from rest_shim.errors import ShimError, rpc_error_headers, rpc_error_parts, rpc_error_upstream
from rest_shim.fastjson import JSONResponse, dumps
from rest_shim.http_io import ClientDisconnected, read_json_object, unless_disconnected
from rest_shim.ollama import answers
from rest_shim.ollama.requests import (
    BadRequest,
    chat_request,
    embed_request,
    generate_request,
    model_of,
    stream_of,
)
from rest_shim.streaming import RpcStreamResponse
from rest_shim.stub import StreamCall

Endpoint = Callable[[Request], Awaitable[Response]]
NDJSON = "application/x-ndjson"
BUSY = "server busy, please try again.  maximum pending requests exceeded"
MANAGED = "model management is reserved to the operators of this service"

JsonDict = dict[str, Any]
T = TypeVar("T")
Reply = TypeVar("Reply", pb.ChatResponse, pb.GenerateResponse)
Event = TypeVar("Event", pb.ChatStreamResponse, pb.GenerateStreamResponse)
Answer = pb.ChatResponse | pb.GenerateResponse | pb.ChatStreamResponse | pb.GenerateStreamResponse


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def rpc_error(exc: grpc.aio.AioRpcError, model: str) -> JSONResponse:
    status, code, detail = rpc_error_parts(exc)
    headers = rpc_error_headers(exc, status)
    if code in ("overloaded", "ollama_busy"):
        return error(503, BUSY, headers | {"Retry-After": headers.get("Retry-After", "1")})
    if code == "model_not_found":
        return error(404, f"model '{model}' not found")
    if status == 401:
        headers = {"WWW-Authenticate": 'Bearer, Basic realm="ollama"'}
    return error(status, rpc_error_upstream(exc) or detail, headers)


def _guarded(endpoint: Endpoint) -> Endpoint:
    """Answers the shim's and the RPC's failures in Ollama's error shape."""

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        try:
            return await endpoint(request)
        except BadRequest as exc:
            return error(400, str(exc))
        except ShimError as exc:
            return error(400 if exc.status == 422 else exc.status, exc.detail)
        except grpc.aio.AioRpcError as exc:
            return rpc_error(exc, request.state.model if hasattr(request.state, "model") else "")

    return guarded


async def _body(request: Request, b: Backend) -> dict[str, Any]:
    body = await read_json_object(request, b.settings.max_request_bytes)
    model = body.get("model") or body.get("name")
    request.state.model = model if isinstance(model, str) else ""
    return body


async def _unary(request: Request, call: Awaitable[T]) -> T | None:
    try:
        return await unless_disconnected(request.receive, call)
    except ClientDisconnected:
        return None


def _cancelled() -> JSONResponse:
    return error(499, "the client closed the request")


# --- catalogue --------------------------------------------------------------------


async def version(request: Request) -> Response:
    b = backend(request)
    reply = await b.stub.Health(pb.HealthRequest(), timeout=PROBE_DEADLINE)
    if not reply.ollama.version:
        return error(503, reply.ollama.error or "no Ollama host answers")
    return JSONResponse({"version": reply.ollama.version})


async def tags(request: Request) -> Response:
    b = backend(request)
    reply = await b.stub.ListModels(
        pb.ListModelsRequest(), timeout=b.deadline, metadata=metadata(request)
    )
    return JSONResponse(answers.tags(reply))


async def running(request: Request) -> Response:
    b = backend(request)
    reply = await b.stub.ListRunningModels(
        pb.ListRunningModelsRequest(), timeout=b.deadline, metadata=metadata(request)
    )
    return JSONResponse(answers.running(reply))


async def show(request: Request) -> Response:
    b = backend(request)
    name = model_of(await _body(request, b))
    reply = await b.stub.ShowModel(
        pb.ShowModelRequest(model=name), timeout=b.deadline, metadata=metadata(request)
    )
    return JSONResponse(answers.show(reply))


async def managed(request: Request) -> Response:
    return error(403, f"{request.url.path}: {MANAGED}")


# --- generation -------------------------------------------------------------------


async def chat(request: Request) -> Response:
    b = backend(request)
    body = await _body(request, b)
    rpc = chat_request(body)
    if not rpc.messages:  # loads (or unloads) the model, as Ollama does
        return await _load(request, b, rpc.model, rpc.keep_alive, chat=True)
    if not stream_of(body):
        call = b.stub.Chat(rpc, timeout=b.deadline, metadata=metadata(request))
        return await _answer(request, call, answers.chat_answer, rpc.model)
    stream = b.stub.ChatStream(
        pb.ChatStreamRequest(request=rpc), timeout=b.deadline, metadata=metadata(request)
    )
    return await _ndjson(request, stream, pb.ChatStreamResponse, answers.chat_chunk, rpc.model)


async def generate(request: Request) -> Response:
    b = backend(request)
    body = await _body(request, b)
    rpc = generate_request(body)
    if not rpc.prompt and not rpc.images:
        return await _load(request, b, rpc.model, rpc.keep_alive, chat=False)
    if not stream_of(body):
        call = b.stub.Generate(rpc, timeout=b.deadline, metadata=metadata(request))
        return await _answer(request, call, answers.generate_answer, rpc.model)
    stream = b.stub.GenerateStream(
        pb.GenerateStreamRequest(request=rpc), timeout=b.deadline, metadata=metadata(request)
    )
    return await _ndjson(
        request, stream, pb.GenerateStreamResponse, answers.generate_chunk, rpc.model
    )


def _answered_by(reply: Answer, asked: str) -> str:
    """The model an answer names: the one asked for, as Ollama echoes it, or the
    fallback model that answered instead."""
    return str(reply.model) if reply.fallback_from else asked


async def _answer(
    request: Request, call: Awaitable[Reply], render: Callable[[Reply, str], JsonDict], asked: str
) -> Response:
    """The RPC's reply as one JSON object (``render`` given the model it names)."""
    reply = await _unary(request, call)
    if reply is None:
        return _cancelled()
    return JSONResponse(render(reply, _answered_by(reply, asked)), headers=fallback_headers(reply))


async def _load(request: Request, b: Backend, model: str, keep_alive: str, chat: bool) -> Response:
    rpc = pb.GenerateRequest(model=model, keep_alive=keep_alive, model_defaults=True)
    reply = await _unary(
        request, b.stub.Generate(rpc, timeout=b.deadline, metadata=metadata(request))
    )
    return _cancelled() if reply is None else JSONResponse(answers.loaded(model, reply, chat))


async def _ndjson(
    request: Request,
    call: StreamCall,
    kind: type[Event],
    render: Callable[[Event, str], JsonDict],
    asked: str,
) -> Response:
    """One NDJSON line per event (of type ``kind``, ``render`` given the model it names);
    the first is awaited before the answer starts, so an unknown model is still a 404."""
    try:
        first = await unless_disconnected(request.receive, call.read())
    except ClientDisconnected:
        call.cancel()
        return _cancelled()
    return RpcStreamResponse(
        _lines(call, first, kind, render, asked),
        call,
        media_type=NDJSON,
        headers=fallback_headers(first),
    )


async def _lines(
    call: StreamCall,
    first: object,
    kind: type[Event],
    render: Callable[[Event, str], JsonDict],
    asked: str,
) -> AsyncGenerator[bytes]:
    message = first
    try:
        while isinstance(message, kind):  # until EOF
            yield dumps(render(message, _answered_by(message, asked))) + b"\n"
            message = await call.read()
    except grpc.aio.AioRpcError as exc:
        yield dumps({"error": rpc_error_upstream(exc) or rpc_error_parts(exc)[2]}) + b"\n"


async def embed(request: Request) -> Response:
    b = backend(request)
    rpc = embed_request(await _body(request, b), legacy=False)
    if not rpc.input:  # loads the model, as Ollama does
        return JSONResponse({"model": rpc.model, "embeddings": []})
    reply = await _unary(request, b.stub.Embed(rpc, timeout=b.deadline, metadata=metadata(request)))
    if reply is None:
        return _cancelled()
    return JSONResponse(answers.embed(reply), headers=fallback_headers(reply))


async def embeddings(request: Request) -> Response:
    """The legacy /api/embeddings: one ``prompt``, one ``embedding``."""
    b = backend(request)
    rpc = embed_request(await _body(request, b), legacy=True)
    if not rpc.input[0]:
        return JSONResponse({"embedding": []})
    reply = await _unary(request, b.stub.Embed(rpc, timeout=b.deadline, metadata=metadata(request)))
    if reply is None:
        return _cancelled()
    return JSONResponse({"embedding": list(reply.embeddings[0].values)})


async def running_text(request: Request) -> Response:
    return PlainTextResponse("Ollama is running")


def ollama_routes() -> list[Route]:
    """Ollama's routes, for the REST port (and the optional port of their own)."""
    routes = [
        Route("/api/version", _guarded(version), methods=["GET", "HEAD"]),
        Route("/api/tags", _guarded(tags), methods=["GET", "HEAD"]),
        Route("/api/ps", _guarded(running), methods=["GET"]),
        Route("/api/show", _guarded(show), methods=["POST"]),
        Route("/api/chat", _guarded(chat), methods=["POST"]),
        Route("/api/generate", _guarded(generate), methods=["POST"]),
        Route("/api/embed", _guarded(embed), methods=["POST"]),
        Route("/api/embeddings", _guarded(embeddings), methods=["POST"]),
    ]
    for path, methods in (
        ("/api/pull", ["POST"]),
        ("/api/push", ["POST"]),
        ("/api/create", ["POST"]),
        ("/api/copy", ["POST"]),
        ("/api/delete", ["DELETE"]),
        ("/api/blobs/{digest}", ["HEAD", "POST"]),
    ):
        routes.append(Route(path, managed, methods=methods))
    return routes
