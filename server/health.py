"""Ollama's health, checked at most once per OLLAMA_CACHE_DURATION, and the standard
``grpc.health.v1.Health`` service that reflects it.

Concurrent probes share one check in flight, so a burst of N probes within the cache
window costs each Ollama host one request pair (/api/version and /api/tags). The check
also tells the host pool which hosts are up. A host that accepts connections and never
answers costs a probe nothing: see ``OllamaMonitor``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc
from grpc_health.v1 import health_pb2
from grpc_health.v1.health import aio  # type: ignore[attr-defined]  # the public path

from server.config import Settings
from server.errors import LlmError
from server.hosts import Host, OllamaPool
from server.ollama_client import elapsed_ms
from server.upstreams.openai import NotReady

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
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))


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


# How long a probe that finds the cached state stale waits for the new check before
# it answers from what is known: hosts that answer have answered by then; a silent
# one is left to its probe timeout, in the background.
PROBE_WAIT = 0.25

Listener = Callable[[OllamaHealth], Awaitable[None]]


class OllamaMonitor:
    """Checks every host concurrently, each for at most OLLAMA_PROBE_TIMEOUT seconds
    (a host that does not answer in time is down, like one that refuses). Probes never
    wait on a slow host: a probe that finds the state fresh answers at once; one that
    finds it stale starts a check (one at a time) and waits at most ``PROBE_WAIT``
    for it, then answers from what is known, each host's result applying as soon as
    it arrives. Only the very first probe, with nothing known yet, waits for the first
    answers (at most the probe timeout)."""

    def __init__(self, pool: OllamaPool, settings: Settings) -> None:
        self._pool = pool
        self._settings = settings
        self._hosts: dict[str, HostHealth] = {}
        self._last: OllamaHealth | None = None
        self._last_at = -math.inf
        self._inflight: asyncio.Task[None] | None = None
        self._listeners: list[Listener] = []
        self.checks = 0

    @property
    def last(self) -> OllamaHealth | None:
        return self._last

    def on_check(self, listener: Listener) -> None:
        """``listener`` gets the health after every completed check."""
        self._listeners.append(listener)

    async def status(self) -> OllamaHealth:
        """The cached health; a stale one starts a check (see the class docstring)."""
        age = time.monotonic() - self._last_at
        if self._last is not None and age < self._settings.cache_duration:
            return self._last
        task = self._start()
        await asyncio.wait({task}, timeout=PROBE_WAIT)
        if not task.done() and not self._hosts:
            await asyncio.wait({task}, timeout=self._settings.probe_timeout)
        return self._snapshot()

    def _start(self) -> asyncio.Task[None]:
        if self._inflight is None:
            self._inflight = asyncio.create_task(self._check(), name="ollama-health-check")
        return self._inflight

    async def aclose(self) -> None:
        """Stop a check still in flight, so no Ollama connection outlives the server."""
        task = self._inflight
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _check(self) -> None:
        self.checks += 1
        try:
            await asyncio.gather(*(self._check_host(h) for h in self._pool.hosts))
            self._last = self._snapshot()
            self._last_at = time.monotonic()
        finally:
            self._inflight = None
        for listener in self._listeners:
            await listener(self._last)

    def _snapshot(self) -> OllamaHealth:
        """All hosts as last seen; a host not heard from yet counts as not reachable."""
        results = [
            self._hosts.get(h.url) or HostHealth(h.url, False, 0.0, error="not checked yet")
            for h in self._pool.hosts
        ]
        up = [r for r in results if r.reachable]
        models: list[str] = []
        for r in up:
            models += [m for m in r.models if m not in models]
        return OllamaHealth(
            reachable=bool(up),
            checked_at=max((r.checked_at for r in results), default=datetime.now(UTC)),
            response_time_ms=max((r.response_time_ms for r in results), default=0.0),
            version=up[0].version if up else "",
            models=models,
            error="" if up else "; ".join(r.error for r in results),
            hosts=results,
        )

    async def _check_host(self, host: Host) -> None:
        start = time.perf_counter()
        timeout = self._settings.probe_timeout
        try:
            async with asyncio.timeout(timeout):
                version = await host.client.version()
                tags = await host.client.tags()
                loaded = await _running(host)
        except LlmError as exc:
            result = HostHealth(host.url, False, elapsed_ms(start), error=exc.message)
            host.not_ready = isinstance(exc, NotReady)
        except TimeoutError:
            error = f"Ollama at {host.url} did not answer the health check within {timeout:g} s"
            result = HostHealth(host.url, False, elapsed_ms(start), error=error)
        else:
            host.not_ready = False
            names = [str(m.get("name") or m.get("model") or "") for m in tags]
            result = HostHealth(host.url, True, elapsed_ms(start), version=version, models=names)
            self._pool.inventory(host, names, loaded)
        if not result.reachable:
            log.warning("HEALTH ollama %s unreachable: %s", host.url, result.error)
        self._hosts[host.url] = result
        self._pool.mark_checked(host, result.reachable, result.error)


async def _running(host: Host) -> list[dict[str, Any]]:
    """The host's loaded models; an Ollama without /api/ps has none to tell."""
    try:
        return await host.client.running()
    except LlmError:
        return []


class OllamaHealthServicer(aio.HealthServicer):
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
        monitor.on_check(self._apply)

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
        await self._apply(health)
        return health

    async def _apply(self, health: OllamaHealth) -> None:
        status = SERVING if health.reachable else NOT_SERVING
        for service in ("", LLM_SERVICE_NAME):
            await self.set(service, status)

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
