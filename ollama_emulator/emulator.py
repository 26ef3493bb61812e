"""``Emulator``: the Ollama emulator on a real local port, for tests and benchmarks."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from types import TracebackType
from typing import Self

from ollama_emulator.app import create_app
from ollama_emulator.models import ModelSpec
from ollama_emulator.runner import ThreadedServer
from ollama_emulator.state import EmulatorState, Faults, RecordedRequest


def refused_url() -> str:
    """A local URL where nothing listens (a port bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class Emulator:
    """An Ollama look-alike served from a background thread.

    ``stop`` behaves like the Ollama process dying (open connections are cut, the
    port refuses connections); ``restart`` brings it back on the same port with the
    same faults and recorded requests but no model loaded.
    """

    def __init__(
        self, models: Sequence[ModelSpec] | None = None, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.state = EmulatorState(None if models is None else list(models))
        self._app = create_app(self.state)
        self._host = host
        self._port = port
        self._server: ThreadedServer | None = None

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("emulator already running")
        server = ThreadedServer(self._app, self._host, self._port, graceful_timeout=2)
        self.state.connection_closer = server.close_connection
        server.start()
        self._port = server.port
        self._server = server
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self.state.set_stopping(True)
        try:
            server.stop(abort=True)
        finally:
            self.state.set_stopping(False)
            self.state.connection_closer = None
            self.state.forget_loaded()

    def restart(self) -> Self:
        """Stops (if running) and serves again on the same port."""
        self.stop()
        return self.start()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    # -- faults and observations -----------------------------------------------------

    @property
    def faults(self) -> Faults:
        """The live fault settings: change attributes, or assign a whole ``Faults``."""
        return self.state.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self.state.replace_faults(faults)

    @property
    def models(self) -> tuple[ModelSpec, ...]:
        return self.state.catalog.models

    @property
    def loaded(self) -> list[str]:
        """Names (``model:tag``) of the models loaded now, as /api/ps lists them."""
        return [model.key for model, _ in self.state.loaded_models()]

    def load(self, name: str, keep_alive: float | None = None) -> None:
        """Loads ``name`` at once, as a finished request with ``keep_alive`` seconds would."""
        model = self.state.catalog.find(name)
        if model is None:
            raise KeyError(f"model '{name}' not found")
        self.state.mark_loaded(model, keep_alive)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received, oldest first."""
        return self.state.requests

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.state.requests if r.path == path]

    @property
    def disconnects(self) -> int:
        """Responses the client abandoned before they finished (during load or mid-body)."""
        return self.state.disconnects

    @property
    def active_responses(self) -> int:
        """/api/generate, /api/chat and /api/embed(dings) responses being produced right now."""
        return self.state.active_responses

    def reset(self) -> None:
        """Clears faults, recorded requests, counters and loaded models."""
        self.state.reset()

    # -- waiting ---------------------------------------------------------------------

    def wait_for_disconnect(self, timeout: float, n: int = 1) -> bool:
        """Blocks until ``disconnects >= n``; False on timeout."""
        return self.state.wait_for_disconnects(n, timeout)

    async def wait_for_disconnect_async(self, timeout: float, n: int = 1) -> bool:
        return await asyncio.to_thread(self.wait_for_disconnect, timeout, n)

    def wait_for_requests(self, path: str, n: int = 1, *, timeout: float) -> bool:
        """Blocks until ``n`` requests to ``path`` were received; False on timeout."""
        return self.state.wait_for_requests(path, n, timeout)

    async def wait_for_requests_async(self, path: str, n: int = 1, *, timeout: float) -> bool:
        return await asyncio.to_thread(self.wait_for_requests, path, n, timeout=timeout)

    def wait_for_active(self, n: int = 1, *, timeout: float) -> bool:
        """Blocks until at least ``n`` inference responses are in progress; False on timeout."""
        return self.state.wait_for_active(n, timeout)

    async def wait_for_active_async(self, n: int = 1, *, timeout: float) -> bool:
        return await asyncio.to_thread(self.wait_for_active, n, timeout=timeout)

    @property
    def blocked_writes(self) -> int:
        """Streamed responses whose last write waits for the client to read."""
        return self.state.blocked_writes

    async def wait_for_blocked_writes_async(self, n: int = 1, *, timeout: float) -> bool:
        """Until ``n`` streamed responses wait for their reader; False on timeout."""
        return await asyncio.to_thread(self.state.wait_for_blocked_writes, n, timeout)

    def wait_for_idle(self, *, timeout: float) -> bool:
        """Blocks until no inference response is in progress; False on timeout."""
        return self.state.wait_for_idle(timeout)

    async def wait_for_idle_async(self, *, timeout: float) -> bool:
        return await asyncio.to_thread(self.wait_for_idle, timeout=timeout)
