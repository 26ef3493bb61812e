"""Domain errors and the one table that maps them to gRPC codes and HTTP statuses.

The server aborts an RPC with ``error.grpc_code`` and puts ``error.code`` (a stable,
machine-readable name) in the trailing metadata under ``ERROR_CODE_KEY`` (and, for an
invalid field, its path under ``ERROR_FIELD_KEY``); ``server.rich_errors`` adds the same
as a ``google.rpc.Status``. The REST shim reads them back and answers with
``HTTP_STATUS[grpc_code]``: both faces use this module.
"""

from __future__ import annotations

from typing import ClassVar

import grpc

ERROR_CODE_KEY = "llm-error-code"
# Seconds after which a refused request (overload) is worth retrying; REST Retry-After.
RETRY_AFTER_KEY = "retry-after"
# Ollama's own error text, when the error came from Ollama (the Ollama face shows it
# as Ollama would).
UPSTREAM_ERROR_KEY = "llm-upstream-error"
# The path of the request field an INVALID_ARGUMENT is about, as the caller sent it
# (``max_tokens``, ``messages[2].tool_calls``, ``request.options.num_ctx`` on a stream).
ERROR_FIELD_KEY = "llm-error-field"

# The standard gRPC -> HTTP table (as grpc-gateway and Google APIs use it).
HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
}


def http_status(code: grpc.StatusCode) -> int:
    return HTTP_STATUS.get(code, 500)


class LlmError(Exception):
    """An error a caller should see, with its code on both faces."""

    code: ClassVar[str] = "internal"
    grpc_code: ClassVar[grpc.StatusCode] = grpc.StatusCode.INTERNAL
    # The request field the error is about (a proto field path), when there is one.
    field: str = ""

    def __init__(self, message: str, upstream: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.upstream = upstream

    @property
    def http_status(self) -> int:
        return http_status(self.grpc_code)


class InvalidArgument(LlmError):
    """The request itself is wrong; retrying it unchanged cannot help. ``field`` is the
    path of the offending field in the request message (``options.num_ctx``,
    ``messages[2].tool_calls``, ``input[3]``), sent as data beside the message."""

    code = "invalid_argument"
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class PermissionDenied(LlmError):
    """The caller may not do this (a model outside its allowed models)."""

    code = "permission_denied"
    grpc_code = grpc.StatusCode.PERMISSION_DENIED


class ModelNotFound(LlmError):
    code = "model_not_found"
    grpc_code = grpc.StatusCode.NOT_FOUND


class OllamaBadRequest(LlmError):
    """Ollama answered 400: the model cannot do this (chat with an embedding model...)."""

    code = "ollama_bad_request"
    grpc_code = grpc.StatusCode.INVALID_ARGUMENT


class OllamaUnavailable(LlmError):
    """Ollama cannot be reached (refused connection, DNS, connect timeout)."""

    code = "ollama_unavailable"
    grpc_code = grpc.StatusCode.UNAVAILABLE


class OllamaConnectFailed(OllamaUnavailable):
    """No connection could be made: nothing was sent, so another host may be tried."""


class Overloaded(LlmError):
    """The service's own concurrency cap and queue are full; retry after a while."""

    code = "overloaded"
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QuotaExceeded(Overloaded):
    """The caller is over one of its limits (LLM_CALLERS_FILE); retry when the window
    frees."""

    code = "quota_exceeded"


class LedgerOff(LlmError):
    """Usage was asked for, but the ledger is off (LLM_LEDGER=false)."""

    code = "ledger_off"
    grpc_code = grpc.StatusCode.FAILED_PRECONDITION


class LedgerUnavailable(LlmError):
    """The ledger's store did not answer a usage query."""

    code = "ledger_unavailable"
    grpc_code = grpc.StatusCode.UNAVAILABLE


class Unauthenticated(LlmError):
    code = "unauthenticated"
    grpc_code = grpc.StatusCode.UNAUTHENTICATED


class OllamaTimeout(LlmError):
    code = "ollama_timeout"
    grpc_code = grpc.StatusCode.DEADLINE_EXCEEDED


class OllamaBusy(LlmError):
    """Ollama's queue is full (its 503); the caller should back off and retry."""

    code = "ollama_busy"
    grpc_code = grpc.StatusCode.RESOURCE_EXHAUSTED


class OllamaError(LlmError):
    """Ollama failed while answering (model load failure, runner crash, error line)."""

    code = "ollama_error"
    grpc_code = grpc.StatusCode.INTERNAL


class ReasoningExhausted(LlmError):
    """A reasoning model spent every token it was allowed on reasoning and wrote no
    answer; the caller can raise max_tokens or LLM_REASONING_BUDGET, or lower think."""

    code = "reasoning_exhausted"
    grpc_code = grpc.StatusCode.OUT_OF_RANGE


class StreamInterrupted(LlmError):
    """Ollama's answer stopped before its final chunk (connection cut)."""

    code = "ollama_stream_interrupted"
    grpc_code = grpc.StatusCode.UNAVAILABLE


def quoted(value: object, limit: int = 64) -> str:
    """``value`` as an error message quotes it: its repr, shortened past ``limit``
    characters (a caller's 8,000-character name must not come back 8,000 long)."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} characters)"


# The trailing metadata of a failed RPC (``server.rich_errors`` writes it).
Trailers = tuple[tuple[str, str | bytes], ...]


def metadata_value(metadata: Trailers | None, key: str) -> str | None:
    """The value of ``key`` in a failed RPC's trailing metadata, as text; None without it."""
    for name, value in metadata or ():
        if name == key:
            return value.decode() if isinstance(value, bytes) else value
    return None


def field_from_metadata(metadata: Trailers | None) -> str:
    """The request field a failed RPC was about, as the server sent it ("" for none)."""
    return metadata_value(metadata, ERROR_FIELD_KEY) or ""


def code_from_metadata(metadata: Trailers | None, grpc_code: grpc.StatusCode) -> str:
    """The machine-readable error code of a failed RPC, as the server sent it."""
    code = metadata_value(metadata, ERROR_CODE_KEY)
    if code is not None:
        return code
    name: str = grpc_code.name
    return name.lower()
