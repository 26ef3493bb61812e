"""Serving the HTTP faces with uvicorn until the process is told to stop, and
``python -m rest_shim``: the faces alone, calling the gRPC server at GRPC_TARGET.

The process owns SIGTERM (uvicorn's own signal handling is off); a face that cannot
start (port taken...) or stops on its own stops the whole process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Generator

import uvicorn
from starlette.applications import Starlette

from rest_shim.app import create_app
from rest_shim.http_server import uvicorn_config
from server.config import Settings
from server.eventloop import freeze_startup_objects, stop_on_signals
from server.logs import uvicorn_log_config

log = logging.getLogger("llm.runner")

# The app of one face: the REST port's (False) or Ollama's own port's (True).
AppFactory = Callable[[bool], Starlette]


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the runner owns SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None]:
        yield


def http_faces(settings: Settings, make_app: AppFactory) -> list[uvicorn.Server]:
    """The REST port, and Ollama's own port when OLLAMA_API_PORT is set."""
    faces = [_face(settings, make_app(False), settings.port)]
    if settings.ollama_api_port:
        faces.append(_face(settings, make_app(True), settings.ollama_api_port))
    return faces


def _face(settings: Settings, app: Starlette, port: int) -> uvicorn.Server:
    config = uvicorn_config(
        app,
        settings,
        host=settings.host,
        port=port,
        log_level=settings.log_level.lower(),
        log_config=uvicorn_log_config(),
        timeout_graceful_shutdown=int(max(1, settings.shutdown_grace)),
    )
    return _Uvicorn(config)


async def serve_face(rest: uvicorn.Server, stop: asyncio.Event) -> int:
    """Serves one face; if it cannot start (port taken...) or ends on its own, the
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


async def run_rest(settings: Settings) -> int:
    """The faces alone in this process, each on its own channel to GRPC_TARGET."""
    stop = asyncio.Event()
    stop_on_signals(stop)
    faces = http_faces(settings, lambda ollama_only: create_app(settings, ollama_only=ollama_only))
    tasks = [asyncio.create_task(serve_face(face, stop)) for face in faces]
    freeze_startup_objects()
    await stop.wait()
    for face in faces:
        face.should_exit = True
    return max([await task for task in tasks], default=0)
