"""Streamed chat as Server-Sent Events: one ChatStream message, one ``data:`` event.

The first message is awaited before the response starts, so a request that fails at
once (unknown model, Ollama down) still gets its real HTTP status. A failure after the
first byte becomes an ``event: error``. A client that disconnects cancels the RPC,
which closes the server's request to Ollama.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import grpc
from starlette.requests import Request
from starlette.responses import Response

from generated.llm.v1 import llm_service_pb2 as pb
from rest_shim import mapping
from rest_shim.backend import Backend, fallback_headers, metadata
from rest_shim.errors import error_response, rpc_error_parts, rpc_error_response
from rest_shim.fastjson import dumps
from rest_shim.http_io import ClientDisconnected, unless_disconnected
from rest_shim.streaming import RpcStreamResponse
from rest_shim.stub import StreamCall

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse_event(data: dict[str, Any], event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return head.encode() + b"data: " + dumps(data) + b"\n\n"


async def stream_chat(request: Request, b: Backend, rpc_request: pb.ChatRequest) -> Response:
    call = b.stub.ChatStream(
        pb.ChatStreamRequest(request=rpc_request), timeout=b.deadline, metadata=metadata(request)
    )
    try:
        first = await unless_disconnected(request.receive, call.read())
    except ClientDisconnected:
        call.cancel()
        return error_response(499, "cancelled", "the client closed the request")
    except grpc.aio.AioRpcError as exc:
        return rpc_error_response(exc)
    headers = fallback_headers(first, SSE_HEADERS)
    return RpcStreamResponse(
        _events(call, first), call, media_type="text/event-stream", headers=headers
    )


async def _events(call: StreamCall, first: object) -> AsyncGenerator[bytes]:
    message = first
    try:
        while isinstance(message, pb.ChatStreamResponse):  # until EOF
            yield sse_event(mapping.stream_event(message))
            message = await call.read()
    except grpc.aio.AioRpcError as exc:
        status, code, detail = rpc_error_parts(exc)
        yield sse_event(
            {"status": "error", "code": code, "detail": detail, "http_status": status},
            event="error",
        )
