"""Ollama's health, checked at most once per OLLAMA_CACHE_DURATION, and the standard
``grpc.health.v1.Health`` service that reflects it.

Concurrent probes share one check in flight, so a burst of N probes within the cache
window costs each Ollama host one request pair (/api/version and /api/tags). The check
also tells the host pool which hosts are up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc
from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer

from server.config import Settings
from server.errors import LlmError
from server.hosts import Host, OllamaPool
from server.ollama_client import elapsed_ms

log = logging.getLogger("llm.health")

LLM_SERVICE_NAME = "llm.v1.LlmService"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def has_model(available: list[str], wanted: str) -> bool:
    """Whether ``wanted`` ("bge-m3", "gpt-oss", "gpt-oss:20b") is among Ollama's names.

    A name without a tag matches every tag of that model, as Ollama resolves it.
    """
    if ":" in wanted:
        return wanted in available or (
            wanted.endswith(":latest") and wanted.removesuffix(":latest") in available
        )
    return any(name.split(":", 1)[0] == wanted for name in available)


@dataclass(frozen=True)
class HostHealth:
    url: str
    reachable: bool
    response_time_ms: float
    version: str = ""
    models: list[str] = field(default_factory=list)
    error: str = ""


@dataclass(frozen=True)
class OllamaHealth:
    """All hosts together: reachable while any host answers; models are the union."""

    reachable: bool
    checked_at: datetime
    response_time_ms: float
    version: str = ""
    models: list[str] = field(default_factory=list)
    error: str = ""
    hosts: list[HostHealth] = field(default_factory=list)

    def missing(self, key_models: tuple[str, ...]) -> list[str]:
        return [m for m in key_models if not has_model(self.models, m)]

    def host(self, url: str) -> HostHealth | None:
        return next((h for h in self.hosts if h.url == url), None)


class OllamaMonitor:
    def __init__(self, pool: OllamaPool, settings: Settings) -> None:
        self._pool = pool
        self._settings = settings
        self._last: OllamaHealth | None = None
        self._last_at = 0.0
        self._inflight: asyncio.Task[OllamaHealth] | None = None
        self.checks = 0

    @property
    def last(self) -> OllamaHealth | None:
        return self._last

    async def status(self) -> OllamaHealth:
        """The cached health, refreshed when older than the cache duration."""
        fresh_for = self._settings.cache_duration
        if self._last is not None and time.monotonic() - self._last_at < fresh_for:
            return self._last
        if self._inflight is None:
            self._inflight = asyncio.create_task(self._check())
            self._inflight.add_done_callback(self._clear_inflight)
        return await asyncio.shield(self._inflight)

    async def aclose(self) -> None:
        """Stop a check still in flight, so no Ollama connection outlives the server."""
        task = self._inflight
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _clear_inflight(self, task: asyncio.Task[OllamaHealth]) -> None:
        self._inflight = None
        if not task.cancelled() and task.exception() is None:
            self._last = task.result()
            self._last_at = time.monotonic()

    async def _check(self) -> OllamaHealth:
        self.checks += 1
        start = time.perf_counter()
        results = await asyncio.gather(*(self._check_host(h) for h in self._pool.hosts))
        for host, result in zip(self._pool.hosts, results, strict=True):
            self._pool.mark_checked(host, result.reachable, result.error)
        up = [r for r in results if r.reachable]
        models: list[str] = []
        for r in up:
            models += [m for m in r.models if m not in models]
        return OllamaHealth(
            reachable=bool(up),
            checked_at=datetime.now(UTC),
            response_time_ms=elapsed_ms(start),
            version=up[0].version if up else "",
            models=models,
            error="" if up else "; ".join(r.error for r in results),
            hosts=list(results),
        )

    async def _check_host(self, host: Host) -> HostHealth:
        start = time.perf_counter()
        try:
            version = await host.client.version()
            tags = await host.client.tags()
        except LlmError as exc:
            log.warning("HEALTH ollama %s unreachable: %s", host.url, exc.message)
            return HostHealth(host.url, False, elapsed_ms(start), error=exc.message)
        names = [str(m.get("name") or m.get("model") or "") for m in tags]
        return HostHealth(host.url, True, elapsed_ms(start), version=version, models=names)


class OllamaHealthServicer(HealthServicer):
    """grpc.health.v1: SERVING while Ollama answers, NOT_SERVING otherwise.

    ``Check`` refreshes from the (cached) monitor before answering, so a probe sees
    the current state; ``watch_ollama`` keeps ``Watch`` streams up to date. On graceful
    shutdown every ``Watch`` stream gets NOT_SERVING and ends, so an open watch does not
    hold the server for the whole grace period.
    """

    def __init__(self, monitor: OllamaMonitor) -> None:
        super().__init__()
        self.monitor = monitor
        self._stopping = False
        self._changed = asyncio.Event()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def set(
        self, service: str, status: health_pb2.HealthCheckResponse.ServingStatus.ValueType
    ) -> None:
        await super().set(service, status)
        self._notify()

    async def enter_graceful_shutdown(self) -> None:
        await super().enter_graceful_shutdown()
        self._stopping = True
        self._notify()

    async def Watch(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> None:
        """Writes the status, then each change; on shutdown the last status and ends."""
        last = None
        while True:
            changed = self._changed
            status = self._server_status.get(
                request.service, health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
            )
            if status != last:
                await context.write(health_pb2.HealthCheckResponse(status=status))
                last = status
            if self._stopping:
                return
            await changed.wait()

    async def refresh(self) -> OllamaHealth:
        health = await self.monitor.status()
        status = SERVING if health.reachable else NOT_SERVING
        for service in ("", LLM_SERVICE_NAME):
            await self.set(service, status)
        return health

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> health_pb2.HealthCheckResponse:
        await self.refresh()
        response: health_pb2.HealthCheckResponse = await super().Check(request, context)
        return response

    async def watch_ollama(self, interval: float) -> None:
        """Re-check Ollama every ``interval`` seconds until cancelled."""
        while True:
            try:
                await self.refresh()
            except Exception:  # a bug here must not stop the probes from updating
                log.exception("HEALTH re-check failed unexpectedly")
            await asyncio.sleep(max(interval, 1.0))
