"""The trailers of a failed RPC: the service's own (``llm-error-code``, ``x-request-id``,
``retry-after``, ``llm-error-field``, ``llm-upstream-error``) and gRPC's rich error
model, a ``google.rpc.Status`` in ``grpc-status-details-bin`` that any gRPC client reads
with ``grpc_status.rpc_status.from_call``:

- ``google.rpc.ErrorInfo``: ``reason`` the error's code upper-cased (``QUOTA_EXCEEDED``),
  ``domain`` ``DOMAIN``, ``metadata`` with ``code`` (the ``llm-error-code``) and
  ``request_id``;
- ``google.rpc.RetryInfo`` (``retry_delay``) when the error says when to retry;
- ``google.rpc.BadRequest`` with one ``FieldViolation`` when the error is about a
  request field.

The server (``server.calls``, ``server.auth``) and the in-process stub
(``server.inprocess``) abort with these, so both REST modes read the same trailers.
"""

from __future__ import annotations

from google.protobuf import any_pb2, duration_pb2
from google.rpc.error_details_pb2 import BadRequest, ErrorInfo, RetryInfo
from google.rpc.status_pb2 import Status
from grpc_status import rpc_status

from server.errors import (
    ERROR_CODE_KEY,
    ERROR_FIELD_KEY,
    RETRY_AFTER_KEY,
    UPSTREAM_ERROR_KEY,
    LlmError,
    Overloaded,
)
from server.errors import Trailers as Trailers  # re-exported: what trailers() returns
from server.logs import REQUEST_ID_HEADER

# ErrorInfo.domain of every error this service sends: the service's full name.
DOMAIN = "llm.v1.LlmService"


def status(exc: LlmError, request_id: str) -> Status:
    """``exc`` as a ``google.rpc.Status``: the RPC's code and message, and the details."""
    info = ErrorInfo(
        reason=exc.code.upper(),
        domain=DOMAIN,
        metadata={"code": exc.code, "request_id": request_id},
    )
    details: list[ErrorInfo | RetryInfo | BadRequest] = [info]
    if isinstance(exc, Overloaded):
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(round(max(0.0, exc.retry_after) * 1e9))
        details.append(RetryInfo(retry_delay=delay))
    if exc.field:
        violation = BadRequest.FieldViolation(field=exc.field, description=exc.message)
        details.append(BadRequest(field_violations=[violation]))
    packed = []
    for detail in details:
        wrapped = any_pb2.Any()
        wrapped.Pack(detail)
        packed.append(wrapped)
    return Status(code=exc.grpc_code.value[0], message=exc.message, details=packed)


def trailers(exc: LlmError, request_id: str) -> Trailers:
    """Every trailer an RPC that failed with ``exc`` ends with."""
    out: Trailers = ((ERROR_CODE_KEY, exc.code), (REQUEST_ID_HEADER, request_id))
    if isinstance(exc, Overloaded):
        out += ((RETRY_AFTER_KEY, f"{exc.retry_after:g}"),)
    if exc.field:
        out += ((ERROR_FIELD_KEY, ascii_text(exc.field)),)
    if exc.upstream:
        out += ((UPSTREAM_ERROR_KEY, ascii_text(exc.upstream)),)
    # grpc-status-details-bin, as grpc_status writes it for context.abort_with_status
    return (*out, *rpc_status.to_status(status(exc, request_id)).trailing_metadata)


def ascii_text(text: str) -> str:
    """gRPC metadata values are printable ASCII: anything else is escaped."""
    return "".join(c if " " <= c <= "~" else f"\\u{ord(c):04x}" for c in text)
