"""Running the service until SIGTERM/SIGINT, then draining it and exiting 0.

On the signal: health goes NOT_SERVING at once, the REST face stops accepting and
finishes its open requests, and the gRPC server gives in-flight RPCs (streams
included) SHUTDOWN_GRACE seconds before it cancels what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Generator
from dataclasses import replace

import uvicorn
from prometheus_client import start_http_server

from rest_shim.app import create_app
from server.app import LlmServer
from server.config import Settings
from server.metrics import Metrics

log = logging.getLogger("llm.runner")


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the runner owns SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None]:
        yield


def rest_server(settings: Settings, server_metrics: Metrics | None = None) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(settings, server_metrics),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=int(max(1, settings.shutdown_grace)),
        ws="none",
    )
    return _Uvicorn(config)


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def run_grpc(settings: Settings, with_rest: bool) -> int:
    stop = asyncio.Event()
    _stop_on_signals(stop)
    server = LlmServer(settings)
    await server.start()
    if settings.metrics_port:
        start_http_server(settings.metrics_port, settings.host, registry=server.metrics.registry)
    rest: uvicorn.Server | None = None
    rest_task: asyncio.Task[None] | None = None
    if with_rest:
        target = f"127.0.0.1:{server.local_port}"
        rest = rest_server(_with_target(settings, target), server.metrics)
        rest_task = asyncio.create_task(rest.serve())
    await stop.wait()
    log.info("shutting down: draining for up to %g s", settings.shutdown_grace)
    # Probes see NOT_SERVING at once; both faces stop taking new work and give what is
    # in flight (streams included) the grace period, side by side.
    await server.health.enter_graceful_shutdown()
    draining: list[Awaitable[None]] = [server.stop(settings.shutdown_grace)]
    if rest is not None and rest_task is not None:
        rest.should_exit = True
        draining.append(rest_task)
    await asyncio.gather(*draining)
    log.info("stopped")
    return 0


async def run_rest(settings: Settings) -> int:
    stop = asyncio.Event()
    _stop_on_signals(stop)
    rest = rest_server(settings)
    task = asyncio.create_task(rest.serve())
    await stop.wait()
    rest.should_exit = True
    await task
    return 0


def _with_target(settings: Settings, target: str) -> Settings:
    return replace(settings, grpc_target=target)
