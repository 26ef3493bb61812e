"""``ThreadedServer``: any ASGI app served by uvicorn (h11) in a background thread.

The thread runs its own event loop (``asyncio.run``). The listening socket is bound
and put in listen state by ``start`` itself, so the port is known, and connections
queue, before the loop accepts; it has SO_REUSEADDR so a restart on the same port
works. uvicorn installs no signal handlers off the main thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from types import TracebackType
from typing import Any, Self

import uvicorn

_TICK = 0.1
_SETTLE_STEP = 0.005

_LOGGER = "uvicorn.error"


class _Server(uvicorn.Server):
    """uvicorn.Server that stops promptly: tests start and stop servers by the hundred.

    The main loop wakes as soon as exit is requested instead of polling every 100 ms,
    and ``shutdown`` waits for closed connections to go rather than pausing a fixed
    100 ms; otherwise both do what uvicorn's own do.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        await super().startup(sockets=sockets)
        self.ready.set()

    async def main_loop(self) -> None:
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 1) % 864000
            if self._wake is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), _TICK)
            should_exit = await self.on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        await _stop_accepting(self)
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        for _ in range(round(_TICK / _SETTLE_STEP)):
            if not self.server_state.connections:
                break
            await asyncio.sleep(_SETTLE_STEP)
        try:
            await asyncio.wait_for(
                self._wait_tasks_to_complete(), timeout=self.config.timeout_graceful_shutdown
            )
        except TimeoutError:
            logging.getLogger(_LOGGER).error(
                "Cancel %s running task(s), timeout graceful shutdown exceeded",
                len(self.server_state.tasks),
            )
            for task in self.server_state.tasks:
                task.cancel(msg="Task cancelled, timeout graceful shutdown exceeded")
        if not self.force_exit:
            await self.lifespan.shutdown()

    def request_exit(self) -> None:
        """Thread-safe: make ``serve`` return (after uvicorn's graceful shutdown)."""
        self.should_exit = True
        self.call_soon(self._set_wake)

    def _set_wake(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def call_soon(self, callback: Any) -> bool:
        loop = self.loop
        if loop is None or loop.is_closed():
            return False
        try:
            loop.call_soon_threadsafe(callback)
        except RuntimeError:  # the loop closed meanwhile
            return False
        return True


def close_client_connection(server: uvicorn.Server, client: tuple[str, int]) -> bool:
    """Closes ``server``'s connection to ``client`` (call it on the server's loop)."""
    for connection in list(server.server_state.connections):
        if getattr(connection, "client", None) == client:
            transport = getattr(connection, "transport", None)
            if transport is not None:
                transport.close()
                return True
    return False


async def _stop_accepting(server: uvicorn.Server) -> None:
    """Accepts no more connections, then lets those already accepted get their transport.

    asyncio accepts in the listening socket's read callback and sets each connection up
    in a task of its own, whose first step, already queued, makes the transport. Were the
    listener closed before that step, the transport would fail to attach to the closed
    server, and asyncio would drop the error and the connection with it: left open, never
    read, unknown to uvicorn, until garbage collection (CPython gh-109564).
    """
    loop = asyncio.get_running_loop()
    for listener in getattr(server, "servers", []):
        for sock in listener.sockets:
            loop.remove_reader(sock.fileno())
    await asyncio.sleep(0)  # after the set-up steps queued so far


async def _sever(server: uvicorn.Server) -> None:
    """Stops listening and closes every connection, as a dying process would."""
    await _stop_accepting(server)
    for listener in getattr(server, "servers", []):
        listener.close()
    for connection in list(server.server_state.connections):
        transport = getattr(connection, "transport", None)
        if transport is not None:
            transport.close()


class ThreadedServer:
    """Serves ``app`` on ``host:port`` (0 picks a free port) in a daemon thread."""

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        graceful_timeout: int = 5,
        startup_timeout: float = 10.0,
    ) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.graceful_timeout = graceful_timeout
        self.startup_timeout = startup_timeout
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Self:
        if self._thread is not None:
            raise RuntimeError("server already started")
        # proto IPPROTO_TCP, not 0: asyncio only sets TCP_NODELAY on the accepted sockets of
        # a listener created that way, and without it every response waits ~40 ms on Nagle.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            lifespan="auto",
            ws="none",
            http="h11",
            timeout_graceful_shutdown=self.graceful_timeout,
        )
        self._sock, self._server, self._error = sock, _Server(config), None
        self._thread = threading.Thread(target=self._run, name=f"uvicorn-{self.port}", daemon=True)
        self._thread.start()
        if not self._server.ready.wait(self.startup_timeout) or self._error is not None:
            error = self._error
            self.stop()
            raise RuntimeError(f"server on port {self.port} did not start") from error
        return self

    def _run(self) -> None:
        server, sock = self._server, self._sock
        assert server is not None and sock is not None
        try:
            asyncio.run(server.serve(sockets=[sock]))
        except BaseException as exc:  # reported by start()
            self._error = exc
        finally:
            server.ready.set()

    def close_connection(self, client: tuple[str, int]) -> bool:
        """Closes the connection to ``client``; call it on the server's own loop."""
        return self._server is not None and close_client_connection(self._server, client)

    def stop(self, *, abort: bool = False) -> None:
        """Stops serving; afterwards connections to the port are refused.

        ``abort`` first stops listening and closes every open connection (in-flight
        responses are cut, as when a process dies); otherwise uvicorn shuts down
        gracefully, giving in-flight responses up to ``graceful_timeout``.
        """
        server, thread, sock = self._server, self._thread, self._sock
        if server is None or thread is None:
            return
        if abort:
            done = threading.Event()
            severing: list[asyncio.Task[None]] = []  # the loop keeps only weak references

            def sever() -> None:
                severing.append(asyncio.ensure_future(_sever(server)))
                severing[0].add_done_callback(lambda _: done.set())

            if server.call_soon(sever):
                done.wait(self.graceful_timeout)
        server.request_exit()
        thread.join(self.graceful_timeout + 5.0)
        if thread.is_alive():
            server.force_exit = True
            thread.join(5.0)
        if sock is not None:
            sock.close()
        self._server, self._thread, self._sock = None, None, None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
