"""OpenAI-compatible routes: ``/v1/chat/completions``, ``/v1/models``, ``/v1/embeddings``.

Each route is one RPC (Chat or ChatStream, ListModels, Embed), like the rest of the
shim; ``rest_shim.openai_chat`` and ``rest_shim.openai_mapping`` do the JSON <->
protobuf part. Errors use OpenAI's
shape ``{"error": {"message", "type", "code", "param"}}`` with the shim's usual HTTP
status (the shared gRPC -> HTTP table), except that a body of the wrong shape is 400,
as OpenAI answers it, where the native routes say 422. A server rejection's ``param``
comes from the field the server names as data (``rest_shim.openai_params``).

Streaming follows ``rest_shim.sse``: the first ChatStream message is awaited before the
response starts (an unknown model is still a 404), a failure after that is a
``data: {"error": ...}`` event before ``data: [DONE]``, and a client that disconnects
cancels the RPC, which closes the server's request to Ollama.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from generated.llm.v1 import llm_service_pb2 as pb
from rest_shim.backend import Backend, backend, fallback_headers, metadata
from rest_shim.errors import ShimError, rpc_error_field, rpc_error_headers, rpc_error_parts
from rest_shim.fastjson import JSONResponse
from rest_shim.http_io import ClientDisconnected, read_json_object, unless_disconnected
from rest_shim.openai_answers import ChunkFactory, chat_completion
from rest_shim.openai_chat import ChatCompletionRequest, chat_completion_request
from rest_shim.openai_images import fetch_images
from rest_shim.openai_mapping import (
    RequestError,
    embedding_list,
    embedding_request,
    find_model,
    model_list,
    model_object,
)
from rest_shim.openai_params import openai_param
from rest_shim.sse import SSE_HEADERS, sse_event
from rest_shim.streaming import RpcStreamResponse
from rest_shim.stub import StreamCall
from server.errors import quoted
from server.validation import MAX_MODEL_NAME

Endpoint = Callable[[Request], Awaitable[Response]]

DONE = b"data: [DONE]\n\n"

# --- errors -------------------------------------------------------------------------


def error_type(status: int) -> str:
    if status == 401:
        return "authentication_error"
    if status == 403:
        return "permission_error"
    if status == 404:
        return "not_found_error"
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "api_error"
    return "invalid_request_error"


def error_object(status: int, message: str, code: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type(status), "code": code, "param": param}}


def openai_error(
    status: int,
    message: str,
    code: str,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_object(status, message, code, param), status, headers)


def rpc_error(exc: grpc.aio.AioRpcError, max_tokens_param: str = "max_tokens") -> JSONResponse:
    """A failed RPC in OpenAI's shape, with the headers every face sends for it (the
    server's Retry-After hint on 429/503, the WWW-Authenticate challenge on 401)."""
    status, code, detail = rpc_error_parts(exc)
    param = openai_param(code, rpc_error_field(exc), max_tokens_param)
    return openai_error(status, detail, code, param, rpc_error_headers(exc, status))


def _cancelled() -> JSONResponse:
    return openai_error(499, "the client closed the request", "cancelled")


def _openai_errors(endpoint: Endpoint) -> Endpoint:
    """Answers the shim's own and the RPC's failures in OpenAI's error shape."""

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        try:
            return await endpoint(request)
        except RequestError as exc:
            return openai_error(400, str(exc), exc.code, exc.param)
        except ShimError as exc:
            # read_json_object says 422 for JSON that is not an object; OpenAI says 400.
            return openai_error(400 if exc.status == 422 else exc.status, exc.detail, exc.code)
        except grpc.aio.AioRpcError as exc:
            return rpc_error(exc)

    return guarded


async def _read_body(request: Request, b: Backend) -> dict[str, Any]:
    return await read_json_object(request, b.settings.max_request_bytes)


# --- chat completions -----------------------------------------------------------------


async def chat_completions(request: Request) -> Response:
    b = backend(request)
    parsed = chat_completion_request(await _read_body(request, b))
    await fetch_images(parsed, b.settings.image_url_hosts)
    if parsed.stream:
        return await _stream(request, b, parsed)
    call = b.stub.Chat(parsed.rpc, timeout=b.deadline, metadata=metadata(request))
    try:
        reply = await unless_disconnected(request.receive, call)
    except ClientDisconnected:
        return _cancelled()
    except grpc.aio.AioRpcError as exc:
        return rpc_error(exc, parsed.max_tokens_param)
    return JSONResponse(chat_completion(reply, parsed.rpc.model), headers=fallback_headers(reply))


async def _stream(request: Request, b: Backend, parsed: ChatCompletionRequest) -> Response:
    call = b.stub.ChatStream(
        pb.ChatStreamRequest(request=parsed.rpc), timeout=b.deadline, metadata=metadata(request)
    )
    try:
        first = await unless_disconnected(request.receive, call.read())
    except ClientDisconnected:
        call.cancel()
        return _cancelled()
    except grpc.aio.AioRpcError as exc:
        return rpc_error(exc, parsed.max_tokens_param)
    model = first.model if isinstance(first, pb.ChatStreamResponse) else ""
    chunks = ChunkFactory.start(model or parsed.rpc.model, parsed.include_usage)
    headers = fallback_headers(first, SSE_HEADERS)
    return RpcStreamResponse(
        _chunks(call, first, chunks), call, media_type="text/event-stream", headers=headers
    )


async def _chunks(call: StreamCall, first: object, chunks: ChunkFactory) -> AsyncGenerator[bytes]:
    """Role chunk, one chunk per delta, the finish (and usage) chunks, ``[DONE]``.

    The RPC is read to its end (EOF) so that the server finishes the call itself; a
    stream that ends without its final event is reported as an error event.
    """
    message, finished = first, False
    try:
        yield sse_event(chunks.delta({"role": "assistant", "content": ""}))
        while isinstance(message, pb.ChatStreamResponse):  # until EOF
            for chunk in chunks.final(message) if message.done else [chunks.event(message)]:
                yield sse_event(chunk)
            finished = finished or message.done
            message = await call.read()
        if not finished:
            yield sse_event(
                error_object(502, "the answer ended before its final event", "incomplete")
            )
    except grpc.aio.AioRpcError as exc:
        status, code, detail = rpc_error_parts(exc)
        yield sse_event(error_object(status, detail, code))
    yield DONE


# --- models and embeddings ----------------------------------------------------------


async def _models(request: Request) -> pb.ListModelsResponse:
    b = backend(request)
    reply: pb.ListModelsResponse = await b.stub.ListModels(
        pb.ListModelsRequest(), timeout=b.deadline, metadata=metadata(request)
    )
    return reply


async def list_models(request: Request) -> Response:
    return JSONResponse(model_list(await _models(request)))


async def retrieve_model(request: Request) -> Response:
    name = str(request.path_params["model"])
    if len(name) > MAX_MODEL_NAME:
        message = f"model name is {len(name)} characters long; at most {MAX_MODEL_NAME} allowed"
        return openai_error(400, message, "invalid_argument", "model")
    found = find_model(await _models(request), name)
    if found is None:
        return openai_error(404, f"model {quoted(name)} not found", "model_not_found", "model")
    return JSONResponse(model_object(found))


async def embeddings(request: Request) -> Response:
    b = backend(request)
    rpc_request, encoding = embedding_request(await _read_body(request, b))
    call = b.stub.Embed(rpc_request, timeout=b.deadline, metadata=metadata(request))
    try:
        reply = await unless_disconnected(request.receive, call)
    except ClientDisconnected:
        return _cancelled()
    return JSONResponse(embedding_list(reply, encoding), headers=fallback_headers(reply))


def openai_routes() -> list[Route]:
    return [
        Route("/v1/chat/completions", _openai_errors(chat_completions), methods=["POST"]),
        Route("/v1/models", _openai_errors(list_models), methods=["GET"]),
        Route("/v1/models/{model:path}", _openai_errors(retrieve_model), methods=["GET"]),
        Route("/v1/embeddings", _openai_errors(embeddings), methods=["POST"]),
    ]
