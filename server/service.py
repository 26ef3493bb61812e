"""``llm.v1.LlmService``: each RPC validates, calls Ollama once and maps the answer.

Streams write each event with ``context.write`` instead of yielding it: the RPC is one
coroutine in one task, so a caller that cancels, leaves or stops reading (its write
waits for room within the call's timeout) ends it there, in that task, and every
``finally`` runs at once: the slot and the Ollama connection are released and the
request is counted.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from google.protobuf.message import Message

from generated.llm.v1 import llm_service_pb2 as pb
from generated.llm.v1 import llm_service_pb2_grpc as pb_grpc
from server import replies
from server.calls import Call, CallTracker, Context
from server.catalog import Catalog
from server.config import Settings
from server.errors import LlmError, OllamaError, OllamaTimeout, ReasoningExhausted
from server.health import OllamaHealthServicer, has_model
from server.history import host_models
from server.hosts import OllamaPool
from server.limiter import GenerationLimiter
from server.metrics import Metrics
from server.payloads import chat_payload, embed_payload, generate_payload
from server.stats import StatsRecorder
from server.validation import model_name

log = logging.getLogger("llm.service")

JsonObject = dict[str, Any]
Event = Callable[[JsonObject, Call], Message | None]
Final = Callable[[JsonObject, Call], Message]


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
        self.catalog = Catalog(pool, settings.cache_duration, settings.timeout)

    async def Chat(self, request: pb.ChatRequest, context: Context) -> pb.ChatResponse:
        async with self._calls.track("CHAT", "Chat", context) as call:
            payload = await self._chat(request, call)
            data = await self._answer(call, lambda c: c.chat(payload, call.remaining()))
            reply = replies.chat_reply(data, call)
            if not (reply.response or reply.tool_calls):
                self._check_answered(call, reply.done_reason, payload)
            log.debug("CHAT response=%r", reply.response)
        return reply

    async def ChatStream(self, request: pb.ChatStreamRequest, context: Context) -> None:
        async with self._calls.track("CHAT", "ChatStream", context) as call:
            call.stream = True
            payload = await self._chat(request.request, call)
            async with self._limiter.slot(call.remaining()):
                await self._relay(
                    "/api/chat", payload, call, context, replies.chat_event, replies.chat_final
                )

    async def Generate(self, request: pb.GenerateRequest, context: Context) -> pb.GenerateResponse:
        async with self._calls.track("GENERATE", "Generate", context) as call:
            payload = await self._generate(request, call)
            data = await self._answer(call, lambda c: c.generate(payload, call.remaining()))
            reply = replies.generate_reply(data, call)
            if not reply.response:
                self._check_answered(call, reply.done_reason, payload)
        return reply

    async def GenerateStream(self, request: pb.GenerateStreamRequest, context: Context) -> None:
        async with self._calls.track("GENERATE", "GenerateStream", context) as call:
            call.stream = True
            payload = await self._generate(request.request, call)
            async with self._limiter.slot(call.remaining()):
                await self._relay(
                    "/api/generate",
                    payload,
                    call,
                    context,
                    replies.generate_event,
                    replies.generate_final,
                )

    async def _chat(self, request: pb.ChatRequest, call: Call) -> JsonObject:
        payload = chat_payload(request, self._settings)
        call.model = payload["model"]
        log.debug("CHAT messages=%r", payload["messages"])
        if any(m.get("images") for m in payload["messages"]):
            await self.catalog.require(call.model, "vision", "images")
        await self._reasoning_budget(request, payload, call)
        return payload

    async def _reasoning_budget(
        self, request: pb.ChatRequest | pb.GenerateRequest, payload: JsonObject, call: Call
    ) -> None:
        """max_tokens bounds the answer: a model that reasons (Ollama's ``thinking``
        capability) gets LLM_REASONING_BUDGET more tokens, since Ollama's num_predict
        counts reasoning and answer together. Not when the caller counts them together
        itself (Ollama's own API)."""
        budget = self._settings.reasoning_budget
        if not budget or request.max_tokens_include_reasoning:
            return
        try:
            shown = await self.catalog.show(call.model)
        except LlmError:
            return  # the request itself will say what is wrong with the model
        if "thinking" in (shown.get("capabilities") or []):
            payload["options"]["num_predict"] += budget
            call.reasoning = True

    def _check_answered(self, call: Call, done_reason: str, payload: JsonObject) -> None:
        """A reasoning model that hit the token limit without a word of answer fails
        explicitly, never as an empty success."""
        if call.reasoning and done_reason == "length":
            limit = payload["options"]["num_predict"]
            raise ReasoningExhausted(
                f"model '{call.model}' spent all {limit} tokens it was allowed reasoning "
                f"(max_tokens and LLM_REASONING_BUDGET {self._settings.reasoning_budget}) "
                "and wrote no answer; raise max_tokens or LLM_REASONING_BUDGET, or lower think"
            )

    async def _generate(self, request: pb.GenerateRequest, call: Call) -> JsonObject:
        payload = generate_payload(request, self._settings)
        call.model = payload["model"]
        log.debug("GENERATE prompt=%r", payload["prompt"])
        if payload.get("images"):
            await self.catalog.require(call.model, "vision", "images")
        if payload.get("suffix"):
            await self.catalog.require(call.model, "insert", "a suffix")
        if payload["prompt"]:
            await self._reasoning_budget(request, payload, call)
        return payload

    async def _answer(self, call: Call, work: Callable[[Any], Any]) -> JsonObject:
        """One whole answer from Ollama, within a generation slot and the call's time."""
        async with self._limiter.slot(call.remaining()), asyncio.timeout(call.remaining()):
            data: JsonObject = await self._pool.call(work)
        return data

    async def _relay(
        self,
        path: str,
        payload: JsonObject,
        call: Call,
        context: Context,
        event: Event,
        final: Final,
    ) -> None:
        """Relays Ollama's chunks. Until the first token arrives the first-token timeout
        (model load included) applies; after it, the overall timeout, which also bounds
        the time spent waiting for a slow reader."""
        loop = asyncio.get_running_loop()
        overall_end = loop.time() + call.remaining()
        first_wait = min(self._settings.first_token_timeout, call.remaining())
        answered = False
        try:
            async with (
                asyncio.timeout(first_wait) as limit,
                self._pool.stream(path, payload, call.remaining()) as chunks,
            ):
                async for chunk in chunks:
                    if chunk.get("done"):
                        last = final(chunk, call)
                        if not (answered or _answers(last)):
                            self._check_answered(call, str(chunk.get("done_reason")), payload)
                        await _write(context, last)
                        return
                    message = event(chunk, call)
                    if message is None:
                        continue
                    answered = answered or _answers(message)
                    if call.time_to_first_token_ms is None:
                        call.time_to_first_token_ms = call.elapsed_ms()
                        limit.reschedule(overall_end)
                    await _write(context, message)
        except TimeoutError:
            if call.time_to_first_token_ms is None and first_wait < call.timeout:
                raise OllamaTimeout(
                    f"first-token timeout: model '{call.model}' produced no token within "
                    f"{first_wait:g} s (still loading?)"
                ) from None
            raise

    async def Embed(self, request: pb.EmbedRequest, context: Context) -> pb.EmbedResponse:
        async with self._calls.track("EMBED", "Embed", context) as call:
            payload = embed_payload(request, self._settings)
            call.model = payload["model"]
            data = await self._answer(call, lambda c: c.embed(payload, call.remaining()))
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
                durations=replies.durations(data),
            )
            reply.timestamp.GetCurrentTime()
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
        async with self._calls.track("STATS", "Stats", context, counted=False):
            reply = self._stats.snapshot(configuration(self._settings))
            reply.hosts.extend(self._host_status())
            reply.running_generations = self._limiter.running
            reply.queued_generations = self._limiter.queued
            reply.retries = self._pool.retries
            reply.host_models.extend(host_models(self._health.monitor.last))
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


async def _write(context: Context, message: Message) -> None:
    """``context.write``, where a caller gone mid-write is a cancellation: grpc.aio may
    fail the write of an RPC the caller just ended (ExecuteBatchError) before it cancels
    the handler; that is the caller leaving, not a failure of the service."""
    try:
        await context.write(message)
    except Exception as exc:
        if context.done():
            raise asyncio.CancelledError("the caller ended the call during a write") from exc
        raise


def _answers(message: Message) -> bool:
    """Whether a stream event carries answer (not only reasoning): text or tool calls."""
    return bool(
        getattr(message, "content", "")
        or getattr(message, "response", "")
        or getattr(message, "tool_calls", None)
    )

