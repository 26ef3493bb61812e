"""API keys for the gRPC face (and, through the shim, the REST face).

Off unless keys are configured. Then every RPC needs ``authorization: Bearer <key>``
metadata, except the probes: grpc.health.v1, LlmService/Health and server reflection.
Keys are compared as SHA-256 digests in constant time, against every configured key,
and never logged.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any

import grpc

from server.errors import Unauthenticated
from server.logs import REQUEST_ID_HEADER, new_request_id
from server.rich_errors import Trailers, trailers
from server.usage.callers import digest

OPEN_METHODS = frozenset(
    {
        "/grpc.health.v1.Health/Check",
        "/grpc.health.v1.Health/Watch",
        "/llm.v1.LlmService/Health",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    }
)


class KeyChecker:
    """The keys' SHA-256 digests (``server.usage.callers.digest``), from the callers."""

    def __init__(self, digests: Iterable[bytes]) -> None:
        self._digests = list(digests)

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def admits(self, method: str, metadata: Iterable[tuple[str, str | bytes]] | None) -> bool:
        """Whether a call of ``method`` (``/package.Service/Method``) with this metadata
        may go ahead: probes always, everything while no keys are configured."""
        if not self._digests or method in OPEN_METHODS:
            return True
        auth = None
        for key, value in metadata or ():
            if key == "authorization":
                auth = value if isinstance(value, str) else value.decode(errors="replace")
        return self.allows(auth)

    def allows(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` value carries one of the keys."""
        if not self._digests:
            return True
        scheme, _, token = (authorization or "").partition(" ")
        candidate = digest(token.strip())
        matched = False
        for known in self._digests:  # no early exit: the same work for every key
            matched |= hmac.compare_digest(candidate, known)
        return matched and scheme.lower() == "bearer"


if TYPE_CHECKING:
    Handler = grpc.RpcMethodHandler[Any, Any]
    Interceptor = grpc.aio.ServerInterceptor[Any, Any]
else:
    Handler = grpc.RpcMethodHandler
    Interceptor = grpc.aio.ServerInterceptor

DENIED = "missing or invalid API key: send 'authorization: Bearer <key>'"


def denial(metadata: Iterable[tuple[str, str | bytes]] | None) -> tuple[Unauthenticated, Trailers]:
    """A refused call's error and trailers (with the caller's request id when sane)."""
    offered = next((v for k, v in metadata or () if k == REQUEST_ID_HEADER), None)
    text = offered.decode(errors="replace") if isinstance(offered, bytes) else offered
    error = Unauthenticated(DENIED)
    return error, trailers(error, new_request_id(text))


async def _deny(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    error, metadata = denial(context.invocation_metadata())
    await context.abort(error.grpc_code, error.message, trailing_metadata=metadata)


class ApiKeyInterceptor(Interceptor):
    def __init__(self, checker: KeyChecker) -> None:
        self._checker = checker

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(handler_call_details)
        details = handler_call_details
        if handler is None or self._checker.admits(details.method, details.invocation_metadata):
            return handler
        if handler.response_streaming:
            return grpc.unary_stream_rpc_method_handler(
                _deny,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        return grpc.unary_unary_rpc_method_handler(
            _deny,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
