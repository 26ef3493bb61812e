"""Running the service until SIGTERM/SIGINT, then draining it and exiting 0.

On the signal: health goes NOT_SERVING at once, the REST face stops accepting and
finishes its open requests, and the gRPC server gives in-flight RPCs (streams
included) SHUTDOWN_GRACE seconds before it cancels what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Generator

import uvicorn
from prometheus_client import start_http_server

from rest_shim.app import create_app
from rest_shim.http_server import uvicorn_config
from server.app import LlmServer
from server.config import Settings
from server.logs import uvicorn_log_config

log = logging.getLogger("llm.runner")


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the runner owns SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None]:
        yield


def rest_server(
    settings: Settings, server: LlmServer | None = None, *, ollama_only: bool = False
) -> uvicorn.Server:
    """The REST face; with ``server``, beside it in this process, calling it directly.
    ``ollama_only``: Ollama's face alone, on OLLAMA_API_PORT."""
    if server is None:
        app = create_app(settings, ollama_only=ollama_only)
    else:
        app = create_app(settings, server.metrics, server.local, ollama_only=ollama_only)
    config = uvicorn_config(
        app,
        settings,
        host=settings.host,
        port=settings.ollama_api_port if ollama_only else settings.port,
        log_level=settings.log_level.lower(),
        log_config=uvicorn_log_config(),
        timeout_graceful_shutdown=int(max(1, settings.shutdown_grace)),
    )
    return _Uvicorn(config)


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def _serve_rest(rest: uvicorn.Server, stop: asyncio.Event) -> int:
    """Serves the REST face; if it cannot start (port taken...) or ends on its own, the
    whole process stops, with one log line instead of uvicorn's SystemExit traceback."""
    try:
        await rest.serve()
    except SystemExit as exc:
        log.error("the REST face could not start on %s:%d", rest.config.host, rest.config.port)
        stop.set()
        return int(exc.code or 1)
    if not stop.is_set():
        log.error("the REST face stopped on its own")
        stop.set()
        return 1
    return 0


def _freeze_startup_objects() -> None:
    """Modules, descriptors and servers built at start-up live as long as the process:
    moved out of the collector's generations, they are not traversed again by every
    full collection (a pause of tens of ms in the middle of streams)."""
    gc.collect()
    gc.freeze()


async def run_grpc(settings: Settings, with_rest: bool) -> int:
    stop = asyncio.Event()
    _stop_on_signals(stop)
    server = LlmServer(settings)
    try:
        await server.start()
    except RuntimeError as exc:  # grpc cannot bind the port
        log.error("the gRPC server could not start on port %d: %s", settings.grpc_port, exc)
        await server.stop(0)
        return 1
    if settings.metrics_port:
        start_http_server(settings.metrics_port, settings.host, registry=server.metrics.registry)
    faces = _http_faces(settings, server) if with_rest else []
    tasks = [asyncio.create_task(_serve_rest(face, stop)) for face in faces]
    _freeze_startup_objects()
    await stop.wait()
    log.info("shutting down: draining for up to %g s", settings.shutdown_grace)
    # Every face stops taking new work at once (health goes NOT_SERVING) and gives what
    # is in flight (streams included) the grace period, side by side.
    stopping = asyncio.ensure_future(server.stop(settings.shutdown_grace))
    for face in faces:
        face.should_exit = True
    codes = [await task for task in tasks]
    await stopping
    log.info("stopped")
    return max(codes, default=0)


def _http_faces(settings: Settings, server: LlmServer | None) -> list[uvicorn.Server]:
    """The REST port, and Ollama's own port when OLLAMA_API_PORT is set."""
    faces = [rest_server(settings, server)]
    if settings.ollama_api_port:
        faces.append(rest_server(settings, server, ollama_only=True))
    return faces


async def run_rest(settings: Settings) -> int:
    stop = asyncio.Event()
    _stop_on_signals(stop)
    faces = _http_faces(settings, None)
    tasks = [asyncio.create_task(_serve_rest(face, stop)) for face in faces]
    _freeze_startup_objects()
    await stop.wait()
    for face in faces:
        face.should_exit = True
    return max([await task for task in tasks], default=0)
