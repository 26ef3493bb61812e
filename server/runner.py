"""The composition root: ``python -m server [--with-rest]``, run until SIGTERM/SIGINT,
then drained, exiting 0.

The only module of ``server`` that imports ``rest_shim`` (tests/test_layers.py): it
hands the HTTP faces what they call in this process, the servicer's in-process stub
and the server's metrics, so the faces know nothing of the server's internals.

On the signal: health goes NOT_SERVING at once, the REST face stops accepting and
finishes its open requests, and the gRPC server gives in-flight RPCs (streams
included) SHUTDOWN_GRACE seconds before it cancels what is left.
"""

from __future__ import annotations

import asyncio
import logging

from prometheus_client import start_http_server
from starlette.applications import Starlette

from rest_shim.app import create_app
from rest_shim.serving import http_faces, serve_face
from server.app import LlmServer
from server.config import Settings
from server.eventloop import freeze_startup_objects, stop_on_signals

log = logging.getLogger("llm.runner")


def rest_app(
    server: LlmServer, settings: Settings | None = None, *, ollama_only: bool = False
) -> Starlette:
    """The HTTP faces in ``server``'s process: they call its servicer through the
    in-process stub, and serve its metrics on /metrics next to their own (distinct
    names, so nothing is counted twice). ``ollama_only``: Ollama's face alone, for
    OLLAMA_API_PORT."""
    return create_app(
        settings or server.settings,
        server.local,
        server_metrics=server.metrics.exposition,
        ollama_only=ollama_only,
    )


async def run_grpc(settings: Settings, with_rest: bool) -> int:
    stop = asyncio.Event()
    stop_on_signals(stop)
    server = LlmServer(settings)
    try:
        await server.start()
    except RuntimeError as exc:  # grpc cannot bind the port
        log.error("the gRPC server could not start on port %d: %s", settings.grpc_port, exc)
        await server.stop(0)
        return 1
    if settings.metrics_port:
        start_http_server(settings.metrics_port, settings.host, registry=server.metrics.registry)
    faces = []
    if with_rest:
        faces = http_faces(settings, lambda ollama_only: rest_app(server, ollama_only=ollama_only))
    tasks = [asyncio.create_task(serve_face(face, stop)) for face in faces]
    freeze_startup_objects()
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
