"""Assembly of the gRPC server: LlmService, grpc.health.v1 and reflection on one port."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from generated.llm.v1 import llm_service_pb2 as pb
from generated.llm.v1 import llm_service_pb2_grpc as pb_grpc
from server.auth import ApiKeyInterceptor, KeyChecker
from server.config import Settings
from server.health import OllamaHealthServicer, OllamaMonitor
from server.hosts import OllamaPool
from server.inprocess import InProcessStub
from server.lanes import Lanes
from server.metrics import Metrics, live_collector
from server.service import LlmService
from server.stats import StatsRecorder
from server.usage.accounting import Accounting
from server.usage.callers import Callers
from server.warmup import Warmer

log = logging.getLogger("llm.server")


class LlmServer:
    """The grpc.aio server and what it owns; one per event loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pool = OllamaPool.from_settings(settings)
        self.lanes = Lanes(settings)
        # The default lane (LLM_MAX_CONCURRENT), for the models no lane names.
        self.limiter = self.lanes.default
        self.stats = StatsRecorder()
        self.monitor = OllamaMonitor(self.pool, settings)
        self.health = OllamaHealthServicer(self.monitor)
        self.warmer = Warmer(self.pool, settings)
        self.monitor.on_check(self.warmer.on_check)
        self.metrics = Metrics(self._known_models)
        self.metrics.watch(
            live_collector(
                running=lambda: self.lanes.running,
                waiting=lambda: self.lanes.queued,
                hosts=lambda: [(h.url, h.up, h.in_flight) for h in self.pool.hosts],
                retries=lambda: self.pool.retries,
                limits=(settings.max_concurrent, settings.max_queue),
                lanes=lambda: [
                    (name, lane.max_concurrent, lane.running, lane.queued)
                    for name, lane in self.lanes.all()
                ],
            )
        )
        self.callers = Callers(settings.callers, settings.api_keys)
        self.accounting = Accounting(settings, self.callers)
        self.ledger = self.accounting.ledger
        self.metrics.watch(self.accounting.collector())
        self.service = LlmService(
            settings,
            self.pool,
            self.lanes,
            self.health,
            self.stats,
            self.metrics,
            self.callers,
            self.ledger,
            self.accounting.quotas,
        )
        keys = KeyChecker(self.callers.digests())
        # The REST face's stub when it runs in this process (python -m server --with-rest).
        self.local = InProcessStub(self.service, keys)
        interceptors = []
        if keys.enabled:
            interceptors.append(ApiKeyInterceptor(keys))
        self._server = grpc.aio.server(
            interceptors=interceptors,
            options=[("grpc.max_receive_message_length", 8 * 1024 * 1024)],
        )
        self._credentials: grpc.ServerCredentials | None = None
        if settings.tls_cert:
            key = Path(settings.tls_key).read_bytes()
            cert = Path(settings.tls_cert).read_bytes()
            self._credentials = grpc.ssl_server_credentials([(key, cert)])
        self._watch: asyncio.Task[None] | None = None
        self.port = 0

    def _known_models(self) -> set[str]:
        """Model names that may appear as metric labels: Ollama's and the defaults."""
        last = self.monitor.last
        known = set(last.models) if last is not None else set()
        return known | {self.settings.default_model, self.settings.embedding_model}

    async def start(self, host: str | None = None, port: int | None = None) -> int:
        """Bind and start serving; returns the bound port (useful with port 0)."""
        await self.accounting.start()  # the schema is created (or migrated) before serving
        pb_grpc.add_LlmServiceServicer_to_server(self.service, self._server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._server)
        services = (
            pb.DESCRIPTOR.services_by_name["LlmService"].full_name,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        )
        reflection.enable_server_reflection(services, self._server)
        bind_host = self.settings.host if host is None else host
        bind_port = self.settings.grpc_port if port is None else port
        address = f"[{bind_host}]:{bind_port}" if ":" in bind_host else f"{bind_host}:{bind_port}"
        if self._credentials is not None:
            self.port = self._server.add_secure_port(address, self._credentials)
        else:
            self.port = self._server.add_insecure_port(address)
        await self._server.start()
        self._watch = asyncio.create_task(
            self.health.watch_ollama(self.settings.cache_duration), name="ollama-health-watch"
        )
        log.info("gRPC server listening on %s:%d", bind_host, self.port)
        return self.port

    async def stop(self, grace: float | None = None) -> None:
        """New RPCs are refused and health goes NOT_SERVING at once (in that order, so a
        caller told NOT_SERVING is never served afterwards); in-flight RPCs get ``grace``
        seconds."""
        stopping = asyncio.gather(self._server.stop(grace), self.local.drain(grace))
        self.local.close()
        await asyncio.sleep(0)  # the server starts refusing before health says so
        await self.health.enter_graceful_shutdown()
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await stopping
        await self.accounting.aclose()
        await self.warmer.aclose()
        await self.monitor.aclose()
        await self.pool.aclose()

    async def wait_for_termination(self) -> None:
        await self._server.wait_for_termination()
