"""``llm.v1.LlmService``: each RPC validates, calls Ollama once and maps the answer."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from generated.llm.v1 import llm_service_pb2 as pb
from generated.llm.v1 import llm_service_pb2_grpc as pb_grpc
from server.calls import Call, CallTracker, Context
from server.config import Settings
from server.errors import OllamaError, OllamaTimeout
from server.health import OllamaHealthServicer, has_model
from server.hosts import OllamaPool
from server.limiter import GenerationLimiter
from server.metrics import Metrics
from server.stats import StatsRecorder
from server.validation import chat_payload, embed_payload

log = logging.getLogger("llm.service")

EMBEDDING_FAMILIES = frozenset({"bert", "nomic-bert", "xlm-roberta", "jina-bert-v2"})


def is_embedding_model(model: dict[str, Any]) -> bool:
    details = model.get("details") or {}
    families = {str(details.get("family", ""))} | set(details.get("families") or [])
    name = str(model.get("name", ""))
    return bool(families & EMBEDDING_FAMILIES) or "embed" in name or name.startswith("bge")


def configuration(settings: Settings) -> pb.Configuration:
    return pb.Configuration(
        ollama_base_url=settings.ollama_base_url,
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
        auth_enabled=bool(settings.api_keys),
        tls_enabled=bool(settings.tls_cert),
    )


def _ns_to_ms(value: Any) -> float:
    return float(value or 0) / 1e6


def _tokens_per_second(final: dict[str, Any]) -> float | None:
    eval_count, eval_ns = final.get("eval_count") or 0, final.get("eval_duration") or 0
    return eval_count / (eval_ns / 1e9) if eval_count and eval_ns else None


class LlmService(pb_grpc.LlmServiceServicer):
    def __init__(
        self,
        settings: Settings,
        pool: OllamaPool,
        limiter: GenerationLimiter,
        health: OllamaHealthServicer,
        stats: StatsRecorder,
        metrics: Metrics,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._limiter = limiter
        self._health = health
        self._stats = stats
        self._calls = CallTracker(stats, metrics, settings.timeout)

    async def Chat(self, request: pb.ChatRequest, context: Context) -> pb.ChatResponse:
        async with self._calls.track("CHAT", "Chat", context) as call:
            payload = chat_payload(request, self._settings)
            call.model = payload["model"]
            log.debug("CHAT messages=%r", payload["messages"])
            async with self._limiter.slot(call.remaining()), asyncio.timeout(call.remaining()):
                data = await self._pool.call(lambda c: c.chat(payload, call.remaining()))
            message = data.get("message") or {}
            call.prompt_tokens = int(data.get("prompt_eval_count") or 0)
            call.response_tokens = int(data.get("eval_count") or 0)
            call.tokens_per_second = _tokens_per_second(data)
            reply = pb.ChatResponse(
                response=str(message.get("content") or ""),
                thinking=str(message.get("thinking") or ""),
                model=str(data.get("model") or call.model),
                prompt_tokens=call.prompt_tokens,
                response_tokens=call.response_tokens,
                total_tokens=call.prompt_tokens + call.response_tokens,
                generation_time_ms=call.elapsed_ms(),
                done_reason=str(data.get("done_reason") or "stop"),
                load_time_ms=_ns_to_ms(data.get("load_duration")),
            )
            reply.timestamp.GetCurrentTime()
            log.debug("CHAT response=%r", reply.response)
        return reply

    async def ChatStream(self, request: pb.ChatStreamRequest, context: Context) -> None:
        """Writes each event with ``context.write`` instead of yielding it: the RPC is
        one coroutine in one task, so a caller that cancels, leaves or stops reading
        (its write waits for room within the call's timeout) ends it here, in this
        task, and every ``finally`` below runs at once: the slot and the Ollama
        connection are released and the request is counted."""
        async with self._calls.track("CHAT", "ChatStream", context) as call:
            call.stream = True
            payload = chat_payload(request.request, self._settings)
            call.model = payload["model"]
            log.debug("CHAT messages=%r", payload["messages"])
            async with self._limiter.slot(call.remaining()):
                await self._stream(payload, call, context)

    async def _stream(self, payload: dict[str, Any], call: Call, context: Context) -> None:
        """Relays Ollama's chunks. Until the first token arrives the first-token timeout
        (model load included) applies; after it, the overall timeout, which also bounds
        the time spent waiting for a slow reader."""
        loop = asyncio.get_running_loop()
        overall_end = loop.time() + call.remaining()
        first_wait = min(self._settings.first_token_timeout, call.remaining())
        try:
            async with (
                asyncio.timeout(first_wait) as limit,
                self._pool.chat_stream(payload, call.remaining()) as chunks,
            ):
                async for chunk in chunks:
                    if chunk.get("done"):
                        await context.write(self._final_event(chunk, call))
                        return
                    message = chunk.get("message") or {}
                    content = str(message.get("content") or "")
                    thinking = str(message.get("thinking") or "")
                    if not (content or thinking):
                        continue
                    if call.time_to_first_token_ms is None:
                        call.time_to_first_token_ms = call.elapsed_ms()
                        limit.reschedule(overall_end)
                    await context.write(
                        pb.ChatStreamResponse(content=content, thinking=thinking, model=call.model)
                    )
        except TimeoutError:
            if call.time_to_first_token_ms is None and first_wait < call.timeout:
                raise OllamaTimeout(
                    f"first-token timeout: model '{call.model}' produced no token within "
                    f"{first_wait:g} s (still loading?)"
                ) from None
            raise

    def _final_event(self, final: dict[str, Any], call: Call) -> pb.ChatStreamResponse:
        call.prompt_tokens = int(final.get("prompt_eval_count") or 0)
        call.response_tokens = int(final.get("eval_count") or 0)
        call.tokens_per_second = _tokens_per_second(final)
        event = pb.ChatStreamResponse(
            done=True,
            model=str(final.get("model") or call.model),
            done_reason=str(final.get("done_reason") or "stop"),
            prompt_tokens=call.prompt_tokens,
            response_tokens=call.response_tokens,
            total_tokens=call.prompt_tokens + call.response_tokens,
            generation_time_ms=call.elapsed_ms(),
            time_to_first_token_ms=call.time_to_first_token_ms or 0.0,
            tokens_per_second=call.tokens_per_second or 0.0,
        )
        event.timestamp.GetCurrentTime()
        return event

    async def Embed(self, request: pb.EmbedRequest, context: Context) -> pb.EmbedResponse:
        async with self._calls.track("EMBED", "Embed", context) as call:
            payload = embed_payload(request, self._settings)
            call.model = payload["model"]
            async with self._limiter.slot(call.remaining()), asyncio.timeout(call.remaining()):
                data = await self._pool.call(lambda c: c.embed(payload, call.remaining()))
            vectors = data.get("embeddings") or []
            if len(vectors) != len(request.input):
                raise OllamaError(
                    f"Ollama returned {len(vectors)} embeddings for {len(request.input)} "
                    f"inputs (model '{call.model}')"
                )
            call.prompt_tokens = int(data.get("prompt_eval_count") or 0)
            reply = pb.EmbedResponse(
                model=str(data.get("model") or call.model),
                embeddings=[pb.Embedding(values=v) for v in vectors],
                dimensions=len(vectors[0]) if vectors else 0,
                prompt_tokens=call.prompt_tokens,
                generation_time_ms=call.elapsed_ms(),
            )
            reply.timestamp.GetCurrentTime()
        return reply

    async def ListModels(
        self, request: pb.ListModelsRequest, context: Context
    ) -> pb.ListModelsResponse:
        async with self._calls.track("MODELS", "ListModels", context, counted=False):
            tags = await self._pool.call(lambda c: c.tags())
            reply = pb.ListModelsResponse(models=[_model_info(m) for m in tags])
            reply.timestamp.GetCurrentTime()
        return reply

    async def Health(self, request: pb.HealthRequest, context: Context) -> pb.HealthResponse:
        async with self._calls.track("HEALTH", "Health", context, counted=False):
            health = await self._health.refresh()
            missing = health.missing(self._settings.key_models)
            ollama = pb.OllamaStatus(
                status="healthy" if health.reachable else "unhealthy",
                ollama_url=self._settings.ollama_base_url,
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
        async with self._calls.track("STATS", "Stats", context, counted=False):
            reply = self._stats.snapshot(configuration(self._settings))
            reply.hosts.extend(self._host_status())
            reply.running_generations = self._limiter.running
            reply.queued_generations = self._limiter.queued
            reply.retries = self._pool.retries
        return reply

    def _host_status(self) -> list[pb.OllamaHost]:
        last = self._health.monitor.last
        hosts = []
        for host in self._pool.hosts:
            checked = last.host(host.url) if last is not None else None
            hosts.append(
                pb.OllamaHost(
                    url=host.url,
                    status="up" if host.up else "down",
                    in_flight=host.in_flight,
                    requests=host.requests,
                    failures=host.failures,
                    last_error=host.last_error,
                    version=checked.version if checked else "",
                    response_time_ms=checked.response_time_ms if checked else 0.0,
                )
            )
        return hosts


def _model_info(model: dict[str, Any]) -> pb.ModelInfo:
    details = model.get("details") or {}
    return pb.ModelInfo(
        name=str(model.get("name") or model.get("model") or ""),
        model=str(model.get("model") or model.get("name") or ""),
        size=int(model.get("size") or 0),
        digest=str(model.get("digest") or ""),
        modified_at=str(model.get("modified_at") or ""),
        details=pb.ModelDetails(
            parent_model=str(details.get("parent_model") or ""),
            format=str(details.get("format") or ""),
            family=str(details.get("family") or ""),
            families=[str(f) for f in details.get("families") or []],
            parameter_size=str(details.get("parameter_size") or ""),
            quantization_level=str(details.get("quantization_level") or ""),
        ),
        embedding=is_embedding_model(model),
    )
