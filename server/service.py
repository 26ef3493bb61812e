"""``llm.v1.LlmService``: each RPC validates, calls Ollama once and maps the answer.

Streams write each event with ``context.write`` instead of yielding it: the RPC is one
coroutine in one task, so a caller that cancels, leaves or stops reading (its write
waits for room within the call's timeout) ends it there, in that task, and every
``finally`` runs at once: the slot and the Ollama connection are released and the
request is counted.
"""

from __future__ import annotations

import logging
from typing import Any

from generated.llm.v1 import llm_service_pb2 as pb
from generated.llm.v1 import llm_service_pb2_grpc as pb_grpc
from server import replies
from server.calls import Call, CallTracker, Context
from server.catalog import Catalog
from server.config import Settings
from server.generation import Generations
from server.health import OllamaHealthServicer, has_model
from server.hosts import Host, OllamaPool
from server.lanes import Lanes
from server.metrics import Metrics
from server.payloads import chat_payload, embed_payload, generate_payload, image_field
from server.stats import StatsRecorder
from server.usage.callers import Callers
from server.usage.ledger import Ledger
from server.usage.quotas import Quotas
from server.usage.report import usage as usage_report
from server.validation import model_name

log = logging.getLogger("llm.service")

JsonObject = dict[str, Any]


def configuration(settings: Settings) -> pb.Configuration:
    return pb.Configuration(
        ollama_base_url=settings.ollama_display_url,
        max_tokens=settings.max_tokens,
        temperature=settings.temperature,
        top_p=settings.top_p,
        timeout_seconds=settings.timeout,
        cache_duration_seconds=settings.cache_duration,
        default_model=settings.default_model,
        embedding_model=settings.embedding_model,
        key_models=list(settings.key_models),
        log_level=settings.log_level,
        max_concurrent=settings.max_concurrent,
        max_queue=settings.max_queue,
        queue_timeout_seconds=settings.queue_timeout,
        first_token_timeout_seconds=settings.first_token_timeout,
        connect_timeout_seconds=settings.connect_timeout,
        auth_enabled=bool(settings.api_keys or settings.callers),
        tls_enabled=bool(settings.tls_cert),
    )


class LlmService(pb_grpc.LlmServiceServicer):
    def __init__(
        self,
        settings: Settings,
        pool: OllamaPool,
        lanes: Lanes,
        health: OllamaHealthServicer,
        stats: StatsRecorder,
        metrics: Metrics,
        callers: Callers | None = None,
        ledger: Ledger | None = None,
        quotas: Quotas | None = None,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._lanes = lanes
        self._health = health
        self._stats = stats
        self._ledger = ledger
        self._calls = CallTracker(
            stats, metrics, settings.timeout, callers or Callers((), ()), ledger
        )
        self.catalog = Catalog(pool, settings.cache_duration, settings.timeout)
        self._gen = Generations(settings, pool, lanes, self.catalog, quotas)

    async def Chat(self, request: pb.ChatRequest, context: Context) -> pb.ChatResponse:
        async with self._calls.track("CHAT", "Chat", context) as call:

            async def attempt(model: str) -> pb.ChatResponse:
                payload = await self._chat(request, model, call)
                data = await self._gen.answer(call, lambda c: c.chat(payload, call.remaining()))
                reply = replies.chat_reply(data, call)
                self._gen.check_answered(call, reply, payload)
                return reply

            reply = await self._gen.with_fallbacks(call, self._model(request), attempt)
            reply.fallback_from = call.fallback_from
            log.debug("CHAT response=%r", reply.response)
        return reply

    # Streams write through context.write, which grpc.aio allows and the generated
    # servicer's type (iterators only) does not describe.
    async def ChatStream(  # type: ignore[override]
        self, request: pb.ChatStreamRequest, context: Context
    ) -> None:
        async with self._calls.track("CHAT", "ChatStream", context, wrapper="request") as call:
            call.stream = True

            async def attempt(model: str) -> None:
                payload = await self._chat(request.request, model, call)
                await self._gen.relay(
                    "/api/chat", payload, call, context, replies.chat_event, replies.chat_final
                )

            await self._gen.with_fallbacks(call, self._model(request.request), attempt)

    async def Generate(self, request: pb.GenerateRequest, context: Context) -> pb.GenerateResponse:
        async with self._calls.track("GENERATE", "Generate", context) as call:

            async def attempt(model: str) -> pb.GenerateResponse:
                payload = await self._generate(request, model, call)
                data = await self._gen.answer(call, lambda c: c.generate(payload, call.remaining()))
                reply = replies.generate_reply(data, call)
                self._gen.check_answered(call, reply, payload)
                return reply

            reply = await self._gen.with_fallbacks(call, self._model(request), attempt)
            reply.fallback_from = call.fallback_from
        return reply

    async def GenerateStream(  # type: ignore[override]  # as ChatStream
        self, request: pb.GenerateStreamRequest, context: Context
    ) -> None:
        async with self._calls.track(
            "GENERATE", "GenerateStream", context, wrapper="request"
        ) as call:
            call.stream = True

            async def attempt(model: str) -> None:
                payload = await self._generate(request.request, model, call)
                await self._gen.relay(
                    "/api/generate",
                    payload,
                    call,
                    context,
                    replies.generate_event,
                    replies.generate_final,
                )

            await self._gen.with_fallbacks(call, self._model(request.request), attempt)

    def _model(self, request: pb.ChatRequest | pb.GenerateRequest) -> str:
        return model_name(request.model, self._settings.default_model)

    async def _chat(self, request: pb.ChatRequest, model: str, call: Call) -> JsonObject:
        payload = chat_payload(request, self._settings)
        payload["model"] = model  # the one asked for, or a fallback
        log.debug("CHAT messages=%r", payload["messages"])
        if any(m.get("images") for m in payload["messages"]):
            await self.catalog.require(model, "vision", "images", image_field(request))
        await self._gen.reasoning_budget(request, payload, call)
        return payload

    async def _generate(self, request: pb.GenerateRequest, model: str, call: Call) -> JsonObject:
        payload = generate_payload(request, self._settings)
        payload["model"] = model  # as in _chat
        log.debug("GENERATE prompt=%r", payload["prompt"])
        if payload.get("images"):
            await self.catalog.require(model, "vision", "images", "images")
        if payload.get("suffix"):
            await self.catalog.require(model, "insert", "a suffix", "suffix")
        if payload["prompt"]:
            await self._gen.reasoning_budget(request, payload, call)
        return payload

    async def Embed(self, request: pb.EmbedRequest, context: Context) -> pb.EmbedResponse:
        async with self._calls.track("EMBED", "Embed", context) as call:

            async def attempt(model: str) -> pb.EmbedResponse:
                payload = embed_payload(request, self._settings)
                payload["model"] = model  # as in _chat
                data = await self._gen.answer(call, lambda c: c.embed(payload, call.remaining()))
                return replies.embed_reply(data, call, len(request.input))

            requested = model_name(request.model, self._settings.embedding_model)
            reply = await self._gen.with_fallbacks(call, requested, attempt)
            reply.fallback_from = call.fallback_from
        return reply

    async def ListModels(
        self, request: pb.ListModelsRequest, context: Context
    ) -> pb.ListModelsResponse:
        async with self._calls.track("MODELS", "ListModels", context, counted=False):
            tags = await self._pool.call(lambda c: c.tags())
            reply = pb.ListModelsResponse(models=[replies.model_info(m) for m in tags])
            reply.timestamp.GetCurrentTime()
        return reply

    async def ShowModel(
        self, request: pb.ShowModelRequest, context: Context
    ) -> pb.ShowModelResponse:
        async with self._calls.track("MODELS", "ShowModel", context, counted=False) as call:
            call.model = model_name(request.model, self._settings.default_model)
            reply = replies.show(call.model, await self.catalog.show(call.model))
        return reply

    async def ListRunningModels(
        self, request: pb.ListRunningModelsRequest, context: Context
    ) -> pb.ListRunningModelsResponse:
        async with self._calls.track("MODELS", "ListRunningModels", context, counted=False):
            running = await self.catalog.running()
            reply = pb.ListRunningModelsResponse(
                models=[replies.running_model(m, host) for host, m in running]
            )
            reply.timestamp.GetCurrentTime()
        return reply

    async def Health(self, request: pb.HealthRequest, context: Context) -> pb.HealthResponse:
        async with self._calls.track("HEALTH", "Health", context, counted=False):
            health = await self._health.refresh()
            missing = health.missing(self._settings.key_models)
            ollama = pb.OllamaStatus(
                status="healthy" if health.reachable else "unhealthy",
                ollama_url=self._settings.ollama_display_url,
                version=health.version,
                available_models=health.models,
                bge_m3_available=has_model(health.models, "bge-m3"),
                gpt_oss_available=has_model(health.models, "gpt-oss"),
                total_models=len(health.models),
                response_time_ms=health.response_time_ms,
                missing_models=missing if health.reachable else [],
                error=health.error,
                hosts=self._host_status(),
            )
            ollama.last_check.FromDatetime(health.checked_at)
            if not health.reachable:
                status = "unhealthy"
            else:
                status = "degraded" if missing else "healthy"
            reply = pb.HealthResponse(
                status=status, ollama=ollama, configuration=configuration(self._settings)
            )
            reply.timestamp.GetCurrentTime()
        return reply

    async def Stats(self, request: pb.StatsRequest, context: Context) -> pb.StatsResponse:
        async with self._calls.track("STATS", "Stats", context, counted=False) as call:
            reply = self._stats.snapshot(configuration(self._settings))
            if not call.caller.admin:  # a caller sees its own usage only
                for name in [n for n in reply.per_caller if n != call.caller.name]:
                    del reply.per_caller[name]
            reply.hosts.extend(self._host_status())
            reply.running_generations = self._lanes.running
            reply.queued_generations = self._lanes.queued
            reply.lanes.extend(
                pb.LaneStatus(
                    name=name, limit=lane.max_concurrent, running=lane.running, queued=lane.queued
                )
                for name, lane in self._lanes.all()
            )
            reply.retries = self._pool.retries
        return reply

    async def Usage(self, request: pb.UsageRequest, context: Context) -> pb.UsageResponse:
        async with self._calls.track("USAGE", "Usage", context, counted=False) as call:
            reply = await usage_report(self._ledger, call.caller, request)
        return reply

    def _host_status(self) -> list[pb.OllamaHost]:
        last = self._health.monitor.last
        hosts = []
        for host in self._pool.hosts:
            checked = last.host(host.url) if last is not None else None
            hosts.append(
                pb.OllamaHost(
                    url=host.url,
                    status=_status(host),
                    in_flight=host.in_flight,
                    requests=host.requests,
                    failures=host.failures,
                    last_error=host.last_error,
                    version=checked.version if checked else "",
                    response_time_ms=checked.response_time_ms if checked else 0.0,
                    models=host.listed,
                    loaded=[replies.running_model(m, host.url) for m in host.loaded.values()],
                )
            )
        return hosts


def _status(host: Host) -> str:
    """A host's status: "up", "down", or "not ready" (it answers, and says it is still loading)."""
    if host.up:
        return "up"
    return "not ready" if host.not_ready else "down"
