"""The real gRPC server on an event loop of its own, in a background thread.

Synchronous test drivers (schemathesis, which sends its requests with ``requests``, and
hypothesis, whose test bodies are plain functions) cannot share the pytest-asyncio loop
with ``LlmServer``: a blocking call would stall the server it waits for. Here the server
lives on a loop in a thread (``asyncio.run``), reached only through thread-safe calls.

Nothing here reads the environment: the caller passes ``Settings``, and the server binds
127.0.0.1 port 0.
"""

from __future__ import annotations

import asyncio
import threading
from types import TracebackType
from typing import Self

from server.app import LlmServer
from server.config import Settings


class ThreadedGrpcServer:
    """``LlmServer(settings)`` on 127.0.0.1, an ephemeral port, its own loop and thread."""

    def __init__(
        self, settings: Settings, *, startup_timeout: float = 10.0, stop_timeout: float = 10.0
    ) -> None:
        self.settings = settings
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.port = 0
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: LlmServer | None = None
        self._finish: asyncio.Event | None = None
        self._error: BaseException | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def server(self) -> LlmServer:
        if self._server is None:
            raise RuntimeError("the gRPC server is not running")
        return self._server

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("gRPC server already started")
        self._thread = threading.Thread(target=self._run, name="grpc-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(self.startup_timeout) or self._error is not None:
            error = self._error
            self._error = None
            self.stop()
            raise RuntimeError("the gRPC server did not start") from error
        return self

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # reported by start() (or seen by stop())
            self._error = exc
        finally:
            self._ready.set()

    async def _serve(self) -> None:
        # LlmServer (grpc.aio.server, httpx clients) is built on the loop that runs it.
        self._loop = asyncio.get_running_loop()
        self._finish = asyncio.Event()
        server = LlmServer(self.settings)
        self.port = await server.start(host="127.0.0.1", port=0)
        self._server = server
        self._ready.set()
        await self._finish.wait()

    async def _shutdown(self) -> None:
        try:
            if self._server is not None:
                await self._server.stop(0)
        finally:
            if self._finish is not None:
                self._finish.set()

    def stop(self) -> None:
        """Stops the server (``LlmServer.stop(0)`` on its loop) and joins the thread;
        raises what the server's thread failed with, if anything."""
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        try:
            if loop is not None and thread.is_alive() and not loop.is_closed():
                future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
                future.result(self.stop_timeout)
        finally:
            thread.join(self.stop_timeout)
            alive, error = thread.is_alive(), self._error
            self._thread, self._loop, self._server, self._finish = None, None, None, None
            self._error = None
        if alive:
            raise RuntimeError("the gRPC server thread did not finish")
        if error is not None:
            raise RuntimeError("the gRPC server thread failed") from error

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
