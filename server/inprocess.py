"""The REST face's stub when it runs in the gRPC server's process (``--with-rest``).

``InProcessStub`` answers the calls the shim makes on ``LlmServiceStub`` (same method
names, same protobuf messages, same ``grpc.aio.AioRpcError`` on failure) by calling the
servicer directly, skipping a loopback gRPC hop that cost more CPU than the rest of a
request. What a real channel gives the servicer is kept:

- a deadline (``timeout``): ``context.time_remaining()`` counts it down and the call
  ends DEADLINE_EXCEEDED when it passes;
- metadata: the request id and the caller's ``authorization``, checked against the API
  keys as the server's interceptor does (Health stays open);
- ``context.abort``: becomes an ``AioRpcError`` with the code, message and trailing
  metadata the servicer gave (``server.rich_errors``: the error code, field and the
  ``google.rpc.Status`` in ``grpc-status-details-bin``, as a channel would carry them);
- cancellation: cancelling the awaiting task (unary) or ``call.cancel()`` (streams)
  cancels the servicer's work, which closes its request to Ollama;
- shutdown: once ``close()`` is called new calls fail UNAVAILABLE, and ``drain(grace)``
  waits for the calls in flight, cancelling what is left when the grace period ends.

A stream runs the servicer in a task of its own, as the gRPC server does; its
``context.write`` hands messages over through a small bounded ``Handover`` (the stream's
flow control), and cancelling the call cancels that task.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Generic, TypeVar

import grpc
from grpc.aio import EOF, Metadata  # type: ignore[attr-defined]  # grpc-stubs lacks EOF

from server.auth import KeyChecker, denial
from server.handover import Handover
from server.rich_errors import Trailers
from server.service import LlmService

log = logging.getLogger("llm.inprocess")

RequestT = TypeVar("RequestT")
ReplyT = TypeVar("ReplyT")
MetadataPairs = tuple[tuple[str, str], ...]
STREAM_BUFFER = 32
SERVICE = "/llm.v1.LlmService/"


class _Aborted(Exception):
    def __init__(self, code: grpc.StatusCode, details: str, trailers: Trailers) -> None:
        super().__init__(details)
        self.code = code
        self.details = details
        self.trailers = trailers


def rpc_error(code: grpc.StatusCode, details: str, trailers: Trailers = ()) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, Metadata(), Metadata(*trailers), details, None)


class _Context:
    """The part of ``grpc.aio.ServicerContext`` the servicer uses."""

    def __init__(
        self,
        metadata: MetadataPairs,
        deadline: float | None,
        channel: Handover[object] | None = None,
    ) -> None:
        self._metadata = metadata
        self._deadline = deadline
        self._channel = channel

    def time_remaining(self) -> float | None:
        if self._deadline is None:
            return None
        return max(0.0, self._deadline - time.monotonic())

    def invocation_metadata(self) -> MetadataPairs:
        return self._metadata

    def set_trailing_metadata(self, trailing_metadata: MetadataPairs) -> None:
        """Trailers of a successful call: no REST route reads them."""

    def done(self) -> bool:
        """Whether the call has ended (an in-process write never fails for that)."""
        return False

    async def write(self, message: object) -> None:
        assert self._channel is not None, "write() on a unary call"
        await self._channel.put(message)

    async def abort(
        self, code: grpc.StatusCode, details: str = "", trailing_metadata: Trailers = ()
    ) -> None:
        raise _Aborted(code, details, tuple(trailing_metadata))


class StreamCall:
    """The shim's side of a server-streaming call: ``await read()`` (a message, or
    ``grpc.aio.EOF`` at the end) and ``cancel()``.

    The servicer runs in a task of its own, as under a gRPC server, and writes into a
    ``Handover``; ``cancel()`` cancels that task, so the servicer unwinds where it
    waits (for Ollama, or for room to write) and releases what it holds.
    """

    def __init__(
        self,
        calls: InProcessStub,
        run: Callable[[_Context], Awaitable[None]],
        metadata: MetadataPairs,
        timeout: float | None,
    ) -> None:
        self._channel: Handover[object] = Handover(STREAM_BUFFER)
        self._ended = False
        context = _Context(tuple(metadata), _deadline(timeout), self._channel)
        self._task = calls.spawn(self._serve(run, context, timeout))

    async def _serve(
        self, run: Callable[[_Context], Awaitable[None]], context: _Context, timeout: float | None
    ) -> None:
        error: BaseException | None = None
        try:
            async with asyncio.timeout(timeout):
                await run(context)
        except asyncio.CancelledError:
            error = rpc_error(grpc.StatusCode.CANCELLED, "Locally cancelled by application!")
            raise
        except Exception as exc:  # handed to the reader, raised there
            error = _as_rpc_error(exc)
        finally:
            self._channel.close(error)

    async def read(self) -> object:
        if self._ended:
            return EOF
        try:
            message = await self._channel.get()
        except BaseException:
            self._ended = True
            raise
        if message is None:
            self._ended = True
            return EOF
        return message

    def cancel(self) -> bool:
        if self._task.done():
            return False
        self._task.cancel()
        return True


def _as_rpc_error(exc: Exception) -> grpc.aio.AioRpcError:
    """What a caller over gRPC would get for ``exc``, raised by a call or its deadline
    (``asyncio.timeout``'s TimeoutError: the servicer turns its own timeouts into aborts)."""
    if isinstance(exc, grpc.aio.AioRpcError):
        return exc
    if isinstance(exc, _Aborted):
        return rpc_error(exc.code, exc.details, exc.trailers)
    if isinstance(exc, TimeoutError):
        return rpc_error(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
    log.exception("in-process call failed unexpectedly")
    return rpc_error(grpc.StatusCode.UNKNOWN, "unexpected error in the server")


class UnaryMethod(Generic[RequestT, ReplyT]):
    """One unary method of the stub, as grpc.aio's: ``await stub.Chat(request, timeout,
    metadata)``. ``method`` is the servicer's; its context is a ``_Context``, which does
    for it what ``grpc.aio.ServicerContext`` does (duck-typed, hence ``Any``)."""

    def __init__(
        self, stub: InProcessStub, name: str, method: Callable[[RequestT, Any], Awaitable[ReplyT]]
    ) -> None:
        self._stub = stub
        self._name = name
        self._method = method

    async def __call__(
        self, request: RequestT, timeout: float | None = None, metadata: MetadataPairs = ()
    ) -> ReplyT:
        stub = self._stub
        stub.admit(self._name, metadata)
        context = _Context(tuple(metadata), _deadline(timeout))
        task = asyncio.current_task()
        assert task is not None
        stub.track(task)
        try:
            async with asyncio.timeout(timeout):
                return await self._method(request, context)
        except Exception as exc:
            raise _as_rpc_error(exc) from None
        finally:
            stub.untrack(task)


class StreamMethod(Generic[RequestT]):
    """One server-streaming method of the stub: ``call = stub.ChatStream(request,
    timeout, metadata)``, then ``await call.read()`` (see ``StreamCall``)."""

    def __init__(
        self, stub: InProcessStub, name: str, method: Callable[[RequestT, Any], Awaitable[None]]
    ) -> None:
        self._stub = stub
        self._name = name
        self._method = method

    def __call__(
        self, request: RequestT, timeout: float | None = None, metadata: MetadataPairs = ()
    ) -> StreamCall:
        async def run(context: _Context) -> None:
            self._stub.admit(self._name, metadata)  # refused at the first read, as over gRPC
            await self._method(request, context)

        return StreamCall(self._stub, run, metadata, timeout)


class InProcessStub:
    """``LlmServiceStub``'s calls, answered by ``service`` in this event loop."""

    def __init__(self, service: LlmService, keys: KeyChecker) -> None:
        self._keys = keys
        self._closed = False
        self._running: set[asyncio.Task[Any]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

        self.Chat = UnaryMethod(self, "Chat", service.Chat)
        self.Embed = UnaryMethod(self, "Embed", service.Embed)
        self.ListModels = UnaryMethod(self, "ListModels", service.ListModels)
        self.Health = UnaryMethod(self, "Health", service.Health)
        self.Stats = UnaryMethod(self, "Stats", service.Stats)
        self.Generate = UnaryMethod(self, "Generate", service.Generate)
        self.ShowModel = UnaryMethod(self, "ShowModel", service.ShowModel)
        self.ListRunningModels = UnaryMethod(self, "ListRunningModels", service.ListRunningModels)
        self.Usage = UnaryMethod(self, "Usage", service.Usage)
        self.ChatStream = StreamMethod(self, "ChatStream", service.ChatStream)
        self.GenerateStream = StreamMethod(self, "GenerateStream", service.GenerateStream)

    def admit(self, name: str, metadata: MetadataPairs) -> None:
        if self._closed:
            raise rpc_error(grpc.StatusCode.UNAVAILABLE, "the server is shutting down")
        if not self._keys.admits(SERVICE + name, metadata):
            error, trailers = denial(metadata)
            raise rpc_error(error.grpc_code, error.message, trailers)

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.ensure_future(work)
        self.track(task)
        task.add_done_callback(self.untrack)
        return task

    def track(self, task: asyncio.Task[Any]) -> None:
        self._running.add(task)
        self._idle.clear()

    def untrack(self, task: asyncio.Task[Any]) -> None:
        self._running.discard(task)
        if not self._running:
            self._idle.set()

    def close(self) -> None:
        """New calls fail UNAVAILABLE from now on."""
        self._closed = True

    async def drain(self, grace: float | None) -> None:
        """Waits up to ``grace`` seconds for the calls in flight, then cancels the rest
        (at once with ``None``, as ``grpc.aio.Server.stop(None)`` does)."""
        try:
            async with asyncio.timeout(grace if grace is not None else 0):
                await self._idle.wait()
        except TimeoutError:
            for task in list(self._running):
                task.cancel()


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout
