"""Error answers of the REST face: ``{"status": "error", "code", "detail"}`` with the
HTTP status that the shared table in ``server.errors`` gives the gRPC code."""

from __future__ import annotations

from typing import Any

import grpc
from starlette.requests import Request

from rest_shim.fastjson import JSONResponse
from server.errors import (
    ERROR_CODE_KEY,
    RETRY_AFTER_KEY,
    UPSTREAM_ERROR_KEY,
    Trailers,
    code_from_metadata,
    field_from_metadata,
    http_status,
    metadata_value,
)


class ShimError(Exception):
    """An error the shim itself finds (body too large, malformed JSON, wrong shape)."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


def error_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"status": "error", "code": code, "detail": detail}, status_code=status, headers=headers
    )


def rpc_error_parts(exc: grpc.aio.AioRpcError) -> tuple[int, str, str]:
    """HTTP status, machine-readable code and message of a failed RPC."""
    code = exc.code()
    detail = exc.details() or code.name
    if code is grpc.StatusCode.UNAVAILABLE and not _from_service(exc):
        detail = f"the LLM gRPC server cannot be reached: {detail}"
    return http_status(code), code_from_metadata(_metadata(exc), code), detail


def rpc_error_field(exc: grpc.aio.AioRpcError) -> str:
    """The request field a failed RPC was about, as the server named it ("" for none)."""
    return field_from_metadata(_metadata(exc))


def rpc_error_upstream(exc: grpc.aio.AioRpcError) -> str:
    """Ollama's own error message, when the failure came from Ollama ("" otherwise)."""
    return metadata_value(_metadata(exc), UPSTREAM_ERROR_KEY) or ""


def _metadata(exc: grpc.aio.AioRpcError) -> Trailers:
    pairs: Any = exc.trailing_metadata() or ()
    return tuple((str(k), v) for k, v in pairs)


def _from_service(exc: grpc.aio.AioRpcError) -> bool:
    return metadata_value(_metadata(exc), ERROR_CODE_KEY) is not None


def rpc_error_headers(exc: grpc.aio.AioRpcError, status: int) -> dict[str, str]:
    """Retry-After on 429/503 (the server's hint when it gave one), and the
    WWW-Authenticate challenge on 401."""
    if status == 401:
        return {"WWW-Authenticate": "Bearer"}
    if status in (429, 503):
        seconds = metadata_value(_metadata(exc), RETRY_AFTER_KEY) or "1"
        return {"Retry-After": str(max(1, round(float(seconds))))}
    return {}


def rpc_error_response(exc: grpc.aio.AioRpcError) -> JSONResponse:
    status, code, detail = rpc_error_parts(exc)
    return error_response(status, code, detail, rpc_error_headers(exc, status))


async def shim_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ShimError)
    return error_response(exc.status, exc.code, exc.detail)


async def rpc_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, grpc.aio.AioRpcError)
    return rpc_error_response(exc)
