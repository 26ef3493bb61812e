"""The life of an inference response (generate, chat, embed): queue, model load, faults, body.

Once a request is valid its handler returns an ``InferenceResponse`` (each through
``planned_response``). The response is an ASGI callable, so everything after validation
(the busy check, the load delay, the fault injection and the body itself) runs while the
server sends, with the client's ``http.disconnect`` watched the whole time. A client that
goes away before the response finished is counted once in ``EmulatorState.disconnects``.

Deliberate connection cuts (``cut_after_chunks``) close the socket through
``EmulatorState.connection_closer`` (set by ``Emulator`` and the CLI) so the client
sees a truncated answer and the server logs nothing; a deliberate cut is not counted
as a client disconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from ollama_emulator.models import ModelSpec
from ollama_emulator.state import EmulatorState, Faults
from ollama_emulator.validation import ApiError, parse_body
from ollama_emulator.wire import BUSY_MESSAGE, JSON, NDJSON, dumps, error_response

_CUT_WAIT = 2.0
"""Seconds to wait for the server to notice a connection the emulator closed itself."""


class ConnectionCut(RuntimeError):
    """Raised to drop a connection when no ``connection_closer`` is available."""


class DisconnectWatch:
    """Listens for ``http.disconnect`` in the background; ``gone`` is set when it arrives."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.gone = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> DisconnectWatch:
        self._task = asyncio.create_task(self._listen())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _listen(self) -> None:
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                self.gone.set()
                return


@dataclass
class Exchange:
    """One response in progress: what producers use to pace, write and fail it."""

    scope: Scope
    send: Send
    watch: DisconnectWatch
    state: EmulatorState
    faults: Faults
    started_ns: int
    loaded_ns: int = 0
    headers_sent: bool = False
    _abandoned: bool = field(default=False, repr=False)

    def client_gone(self) -> bool:
        """True once the client has gone away; counts the abandoned response once."""
        if self.watch.gone.is_set() and not self._abandoned:
            self._abandoned = True
            self.state.client_disconnected()
        return self._abandoned

    async def pause(self, seconds: float) -> bool:
        """Waits ``seconds`` (yields at least once); True if the client went away meanwhile."""
        if seconds <= 0:
            await asyncio.sleep(0)
        else:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.watch.gone.wait(), seconds)
        return self.client_gone()

    async def send_json(self, status: int, content: Any) -> None:
        """A complete JSON answer (only before anything else was sent)."""
        body = dumps(content)
        await self.send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", JSON.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        self.headers_sent = True
        await self.send({"type": "http.response.body", "body": body, "more_body": False})

    async def write_line(self, content: Any) -> None:
        """One NDJSON line; the 200 headers go out with the first one, as with gin."""
        await self.write_lines([content])

    async def write_lines(self, contents: list[Any]) -> None:
        """NDJSON lines in one write."""
        if not self.headers_sent:
            await self.send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", NDJSON.encode())],
                }
            )
            self.headers_sent = True
        await self._send_watched(
            {
                "type": "http.response.body",
                "body": b"".join(dumps(c) + b"\n" for c in contents),
                "more_body": True,
            }
        )

    async def _send_watched(self, message: Message) -> None:
        """Sends ``message``, counting it in ``EmulatorState.blocked_writes`` while it
        waits for the client to read (a send that completes without yielding to the
        loop was never blocked; one still pending at the loop's next turn is)."""
        state = self.state
        blocked = False
        sending = True

        def check() -> None:
            nonlocal blocked
            if sending:
                blocked = True
                state.write_blocked(True)

        asyncio.get_running_loop().call_soon(check)
        try:
            await self.send(message)
        finally:
            sending = False
            if blocked:
                state.write_blocked(False)

    async def end_stream(self) -> None:
        await self.send({"type": "http.response.body", "body": b"", "more_body": False})

    async def stream_error(self, message: str) -> None:
        """An error mid-stream: a final ``{"error": ...}`` line (a 500 if nothing was sent yet)."""
        if not self.headers_sent:
            await self.send_json(500, {"error": message})
            return
        await self.write_line({"error": message})
        await self.end_stream()

    async def drop_connection(self) -> None:
        """Closes the connection without finishing the response."""
        closer = self.state.connection_closer
        client = self.scope.get("client")
        if closer is not None and client is not None and closer((str(client[0]), int(client[1]))):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.watch.gone.wait(), _CUT_WAIT)
            self._abandoned = True  # our own doing: not a client disconnect
            return
        raise ConnectionCut("connection deliberately cut by the emulator")

    def durations(self) -> tuple[int, int, int]:
        """(total, load, since-load) in nanoseconds, each at least 1."""
        now = time.monotonic_ns()
        return (
            max(1, now - self.started_ns),
            max(1, self.loaded_ns - self.started_ns),
            max(1, now - self.loaded_ns),
        )


Producer = Callable[[Exchange], Awaitable[None]]


class InferenceResponse(Response):
    """Emulates Ollama's scheduler (queue full, model load) then runs ``produce``.

    Order, as in Ollama: ``busy`` answers 503 at once; the load passes with nothing
    sent (``cold_load_delay`` when the model is not loaded, plus ``load_delay``);
    ``error_status`` answers after the load (a model that failed to load); then the
    producer writes the body. The model counts as in use (listed by /api/ps) from
    the end of its load until the response ends; then ``keep_alive`` runs.
    """

    def __init__(
        self,
        *,
        state: EmulatorState,
        faults: Faults,
        model: ModelSpec,
        keep_alive: float | None,
        started_ns: int,
        produce: Producer,
    ) -> None:
        super().__init__()
        self._state = state
        self._faults = faults
        self._model = model
        self._keep_alive = keep_alive
        self._started_ns = started_ns
        self._produce = produce

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._state.response_started()
        try:
            async with DisconnectWatch(receive) as watch:
                exchange = Exchange(scope, send, watch, self._state, self._faults, self._started_ns)
                await self._run(exchange)
        finally:
            self._state.response_finished()

    async def _run(self, exchange: Exchange) -> None:
        faults = self._faults
        if faults.busy:
            await exchange.send_json(503, {"error": BUSY_MESSAGE})
            return
        cold = self._state.load_wait(self._model, faults.cold_load_delay)
        if await exchange.pause(cold + faults.load_delay):
            return
        exchange.loaded_ns = time.monotonic_ns()
        self._state.acquire(self._model, self._keep_alive)
        try:
            if faults.error_status is not None:
                await exchange.send_json(faults.error_status, {"error": faults.error_message})
                return
            await self._produce(exchange)
        finally:
            self._state.release(self._model)


class Plan(Protocol):
    """A valid request, ready to be answered: which model, kept loaded how long."""

    @property
    def model(self) -> ModelSpec: ...

    @property
    def keep_alive(self) -> float | None: ...


PlanT = TypeVar("PlanT", bound=Plan)


async def planned_response(
    request: Request,
    state: EmulatorState,
    struct: str,
    plan: Callable[[dict[str, Any], EmulatorState], PlanT | Response],
    produce: Callable[[Exchange, PlanT], Awaitable[None]],
) -> Response:
    """``plan`` validates the body (decoded as ``struct``): its error, or a Response it
    gives for a request answered without the scheduler, goes out at once; a plan is
    answered by ``produce`` through an ``InferenceResponse``."""
    started_ns = time.monotonic_ns()
    try:
        planned = plan(parse_body(await request.body(), struct), state)
    except ApiError as exc:
        return error_response(exc.status, exc.message)
    if isinstance(planned, Response):
        return planned
    return InferenceResponse(
        state=state,
        faults=state.claim_faults(),
        model=planned.model,
        keep_alive=planned.keep_alive,
        started_ns=started_ns,
        produce=lambda exchange: produce(exchange, planned),
    )
