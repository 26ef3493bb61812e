"""How one generation runs: on which model (fallbacks), in which lane, with what
budget, relayed how. The servicer (``server.service``) maps requests and answers;
this module does the work in between.

* **Fallbacks** (LLM_FALLBACKS): when the model asked for has no host that holds it or
  none up, its lane's queue is full, or it fails before its first token (busy, timed
  out, Ollama's error), the next model of its chain answers; the answer names the model
  that answered and the one it fell back from. Once a token was sent, nothing is tried
  again. Bad requests never fall back.
* **Quotas** (``server.usage.quotas``): the caller's limits hold for the whole request,
  fallbacks included.
* **Lanes** (``server.lanes``): the slot is taken in the lane of the model that runs,
  queued by the caller's priority and in turn with other callers.
* **Reasoning budget**: max_tokens bounds the answer; a model with Ollama's ``thinking``
  capability gets LLM_REASONING_BUDGET more tokens (Ollama's num_predict counts both),
  and reasoning that uses everything up fails as ``reasoning_exhausted``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from generated.llm.v1 import llm_service_pb2 as pb
from server.calls import Call, Context
from server.catalog import Catalog
from server.config import Settings
from server.errors import (
    LlmError,
    ModelNotFound,
    OllamaBusy,
    OllamaError,
    OllamaTimeout,
    OllamaUnavailable,
    Overloaded,
    PermissionDenied,
    ReasoningExhausted,
    StreamInterrupted,
)
from server.hosts import OllamaPool
from server.lanes import Lanes
from server.names import canonical
from server.ollama_client import OllamaClient
from server.usage.quotas import Quotas

log = logging.getLogger("llm.generation")

T = TypeVar("T")
JsonObject = dict[str, Any]
Event = Callable[[JsonObject, Call], Message | None]
Final = Callable[[JsonObject, Call], pb.ChatStreamResponse | pb.GenerateStreamResponse]
# What ends an answer: a reply, or a stream's last event.
Ending = pb.ChatResponse | pb.GenerateResponse | pb.ChatStreamResponse | pb.GenerateStreamResponse
# What a fallback model may answer for: the model could not run, not a bad request.
FALLS_BACK = (
    ModelNotFound,
    OllamaUnavailable,
    Overloaded,
    OllamaBusy,
    OllamaTimeout,
    OllamaError,
    StreamInterrupted,
)


class Generations:
    def __init__(
        self,
        settings: Settings,
        pool: OllamaPool,
        lanes: Lanes,
        catalog: Catalog,
        quotas: Quotas | None = None,
    ):
        self._settings = settings
        self._quotas = quotas or Quotas(None, settings.timeout)
        self._pool = pool
        self._lanes = lanes
        self._catalog = catalog
        self._chains = {canonical(model): chain for model, chain in settings.fallbacks}

    def chain(self, model: str) -> list[str]:
        """``model``, then the models LLM_FALLBACKS lists after it."""
        return [model, *self._chains.get(canonical(model), ())]

    async def with_fallbacks(
        self, call: Call, requested: str, attempt: Callable[[str], Awaitable[T]]
    ) -> T:
        """``attempt(model)`` for the model asked for, then its fallbacks in turn."""
        if not call.caller.allows(requested):
            call.model = requested
            raise PermissionDenied(f"caller '{call.caller.name}' may not use model '{requested}'")
        async with self._quotas.admitted(call):
            return await self._chain(call, requested, attempt)

    async def _chain(self, call: Call, requested: str, attempt: Callable[[str], Awaitable[T]]) -> T:
        chain = [m for m in self.chain(requested) if call.caller.allows(m)]
        for i, model in enumerate(chain):
            call.model, call.reasoning = model, False
            try:
                return await attempt(model)
            except FALLS_BACK as exc:
                last = i + 1 == len(chain)
                if last or call.time_to_first_token_ms is not None:
                    raise
                log.warning(
                    "FALLBACK %s failed (%s: %s); %s answers instead",
                    model,
                    exc.code,
                    exc.message,
                    chain[i + 1],
                )
                call.fallback_from = requested
        raise AssertionError("unreachable: the chain is never empty")

    async def reasoning_budget(
        self, request: pb.ChatRequest | pb.GenerateRequest, payload: JsonObject, call: Call
    ) -> None:
        """max_tokens bounds the answer: a model that reasons gets LLM_REASONING_BUDGET
        tokens more, unless the caller counts both in max_tokens (Ollama's own API)."""
        budget = self._settings.reasoning_budget
        if not budget or request.max_tokens_include_reasoning:
            return
        try:
            shown = await self._catalog.show(call.model)
        except LlmError:
            return  # the request itself will say what is wrong with the model
        if "thinking" in (shown.get("capabilities") or []):
            payload["options"]["num_predict"] += budget
            call.reasoning = True

    def check_answered(self, call: Call, ending: Ending, payload: JsonObject) -> None:
        """A reasoning model that hit the token limit without a word of answer fails
        explicitly, never as an empty success. ``ending`` is the reply, or the last
        event of a stream that has sent no answer before it."""
        if call.reasoning and ending.done_reason == "length" and not _answers(ending):
            limit = payload["options"]["num_predict"]
            raise ReasoningExhausted(
                f"model '{call.model}' spent all {limit} tokens it was allowed reasoning "
                f"(max_tokens and LLM_REASONING_BUDGET {self._settings.reasoning_budget}) "
                "and wrote no answer; raise max_tokens or LLM_REASONING_BUDGET, or lower think"
            )

    async def answer(
        self, call: Call, work: Callable[[OllamaClient], Awaitable[JsonObject]]
    ) -> JsonObject:
        """One whole answer from Ollama, in the model's lane and within the call's time."""
        async with self._slot(call), asyncio.timeout(call.remaining()):
            return await self._pool.call(work, call.model, loads=True)

    async def relay(
        self,
        path: str,
        payload: JsonObject,
        call: Call,
        context: Context,
        event: Event,
        final: Final,
    ) -> None:
        """Relays Ollama's chunks, in the model's lane. Until the first token arrives
        the first-token timeout (model load included) applies; after it, the overall
        timeout, which also bounds the time spent waiting for a slow reader."""
        async with self._slot(call):
            await self._relay(path, payload, call, context, event, final)

    def _slot(self, call: Call) -> AbstractAsyncContextManager[None]:
        """A slot in the lane of the call's model, queued by the caller's priority and in
        turn with other callers."""
        lane = self._lanes.for_model(call.model)
        return lane.slot(call.remaining(), call.caller.name, call.caller.priority)

    async def _relay(
        self,
        path: str,
        payload: JsonObject,
        call: Call,
        context: Context,
        event: Event,
        final: Final,
    ) -> None:
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
                        if not answered:
                            self.check_answered(call, last, payload)
                        await _write(context, _stamped(last, call))
                        return
                    message = event(chunk, call)
                    if message is None:
                        continue
                    answered = answered or _answers(message)
                    if call.time_to_first_token_ms is None:
                        call.time_to_first_token_ms = call.elapsed_ms()
                        limit.reschedule(overall_end)
                    await _write(context, _stamped(message, call))
        except TimeoutError:
            if call.time_to_first_token_ms is None and first_wait < call.timeout:
                raise OllamaTimeout(
                    f"first-token timeout: model '{call.model}' produced no token within "
                    f"{first_wait:g} s (still loading?)"
                ) from None
            raise


def _stamped(message: Message, call: Call) -> Message:
    """Every event of a fallback's stream says which model it fell back from."""
    if call.fallback_from:
        message.fallback_from = call.fallback_from  # type: ignore[attr-defined]
    return message


def _answers(message: Message) -> bool:
    """Whether a reply or stream event carries answer (not only reasoning): text or tool
    calls."""
    return bool(
        getattr(message, "content", "")
        or getattr(message, "response", "")
        or getattr(message, "tool_calls", None)
    )


async def _write(context: Context, message: Message) -> None:
    """``context.write``, where a caller gone mid-write is a cancellation: grpc.aio may
    fail the write of an RPC the caller just ended (ExecuteBatchError, an InternalError)
    before the handler learns the call is done, or cancels it; either way the call can
    no longer carry anything, and that is the caller leaving, not a failure of the
    service."""
    try:
        await context.write(message)
    except grpc.aio.InternalError as exc:
        raise asyncio.CancelledError("the caller ended the call during a write") from exc
    except Exception as exc:
        if context.done():
            raise asyncio.CancelledError("the caller ended the call during a write") from exc
        raise
