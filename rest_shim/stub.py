"""The stub the HTTP faces call: LlmService's client methods, as a typed protocol.

Two stubs match it, and the faces know neither: grpc.aio's generated stub on a channel
(``LlmServiceAsyncStub``, what ``python -m rest_shim`` opens), and the server's
in-process stub (``server.inprocess.InProcessStub``, which ``python -m server
--with-rest`` hands to the app). Either way a failed call raises
``grpc.aio.AioRpcError``.

A unary method gives an awaitable reply. A streaming method gives a call whose
``read()`` returns the next message, or ``grpc.aio.EOF`` once the stream has ended
(grpc's own typing says ``object``: readers narrow it with ``isinstance`` on the
message type), and whose ``cancel()`` ends the call.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol, TypeVar

from generated.llm.v1 import llm_service_pb2 as pb

RequestT = TypeVar("RequestT", contravariant=True)
ReplyT = TypeVar("ReplyT", covariant=True)
# What the faces send: the request id, the face, the caller's authorization.
Metadata = tuple[tuple[str, str], ...]


class UnaryMethod(Protocol[RequestT, ReplyT]):
    def __call__(
        self, request: RequestT, timeout: float | None = ..., metadata: Metadata = ...
    ) -> Awaitable[ReplyT]: ...


class StreamCall(Protocol):
    async def read(self) -> object: ...

    def cancel(self) -> bool: ...


class StreamMethod(Protocol[RequestT]):
    def __call__(
        self, request: RequestT, timeout: float | None = ..., metadata: Metadata = ...
    ) -> StreamCall: ...


class LlmStub(Protocol):
    """LlmService's methods, as the faces call them (read-only: any stub whose
    methods take at least these arguments matches)."""

    @property
    def Chat(self) -> UnaryMethod[pb.ChatRequest, pb.ChatResponse]: ...
    @property
    def ChatStream(self) -> StreamMethod[pb.ChatStreamRequest]: ...
    @property
    def Generate(self) -> UnaryMethod[pb.GenerateRequest, pb.GenerateResponse]: ...
    @property
    def GenerateStream(self) -> StreamMethod[pb.GenerateStreamRequest]: ...
    @property
    def Embed(self) -> UnaryMethod[pb.EmbedRequest, pb.EmbedResponse]: ...
    @property
    def ListModels(self) -> UnaryMethod[pb.ListModelsRequest, pb.ListModelsResponse]: ...
    @property
    def ShowModel(self) -> UnaryMethod[pb.ShowModelRequest, pb.ShowModelResponse]: ...
    @property
    def ListRunningModels(
        self,
    ) -> UnaryMethod[pb.ListRunningModelsRequest, pb.ListRunningModelsResponse]: ...
    @property
    def Health(self) -> UnaryMethod[pb.HealthRequest, pb.HealthResponse]: ...
    @property
    def Stats(self) -> UnaryMethod[pb.StatsRequest, pb.StatsResponse]: ...
    @property
    def Usage(self) -> UnaryMethod[pb.UsageRequest, pb.UsageResponse]: ...
