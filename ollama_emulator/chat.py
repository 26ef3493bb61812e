"""POST /api/chat: validation in Ollama's order, then a streamed or single answer.

Checks follow server/routes.go ChatHandler: body decoding (400), missing model (400
"model is required"), unknown model (404 "model 'x' not found"), the unload request
(no messages, keep_alive 0), ``think`` on a model that cannot think (400), capabilities
(400 "does not support chat" / "... does not support tools"), option types (500),
then the scheduler (see ``inference``). Roles are not checked: Ollama passes any role
to the model's template.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ollama_emulator.content import Generation, count_prompt_tokens, generate
from ollama_emulator.inference import Exchange, InferenceResponse
from ollama_emulator.models import COMPLETION, THINKING, TOOLS, ModelSpec, qualified_name
from ollama_emulator.state import EmulatorState
from ollama_emulator.validation import (
    ApiError,
    GenerationOptions,
    format_error,
    get_bool,
    get_messages,
    get_options,
    get_str,
    parse_body,
    parse_keep_alive,
    parse_options,
    parse_think,
    type_error,
)
from ollama_emulator.wire import GoJSONResponse, error_response, go_quote, go_time, metrics

_PROMPT_EVAL_NS_PER_TOKEN = 100_000
_BATCH = 64


@dataclass(frozen=True)
class ChatPlan:
    """A valid chat request, ready to be answered."""

    name: str
    model: ModelSpec
    messages: list[dict[str, Any]]
    stream: bool
    thinks: bool
    structured: bool
    format_error: str | None
    options: GenerationOptions
    keep_alive: float | None


async def chat_endpoint(request: Request, state: EmulatorState) -> Response:
    started_ns = time.monotonic_ns()
    try:
        plan = plan_chat(parse_body(await request.body(), "ChatRequest"), state)
    except ApiError as exc:
        return error_response(exc.status, exc.message)
    if isinstance(plan, Response):
        return plan
    return InferenceResponse(
        state=state,
        faults=state.claim_faults(),
        model=plan.model,
        keep_alive=plan.keep_alive,
        started_ns=started_ns,
        produce=lambda exchange: produce_chat(exchange, plan),
    )


def plan_chat(body: dict[str, Any], state: EmulatorState) -> ChatPlan | Response:
    """Validates like Ollama; a Response for requests answered without the scheduler."""
    name = get_str(body, "model", "ChatRequest")
    messages = get_messages(body)
    stream = get_bool(body, "stream", "ChatRequest")
    think = parse_think(body.get("think"))
    keep_alive = parse_keep_alive(body.get("keep_alive"))
    raw_options = get_options(body, "ChatRequest")
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise type_error(tools, "ChatRequest", "tools", "api.Tools")

    if not name.strip():
        raise ApiError(400, "model is required")
    model = state.catalog.find(name)
    if model is None:
        raise ApiError(404, f"model '{name}' not found")
    if not messages and keep_alive == 0:
        state.unload(model)
        return GoJSONResponse(_done_without_messages(name, "unload"))
    if not model.supports(THINKING) and think not in (None, False):
        raise ApiError(400, f"{go_quote(name)} does not support thinking")
    if not model.supports(COMPLETION):
        raise ApiError(400, f"{go_quote(name)} does not support chat")
    if tools and not model.supports(TOOLS):
        raise ApiError(400, f"{qualified_name(model.key)} does not support tools")
    options = parse_options(raw_options)

    fmt = body.get("format")
    return ChatPlan(
        name=name,
        model=model,
        messages=messages,
        stream=stream is not False,
        thinks=model.supports(THINKING) and (model.always_thinks or think is not False),
        structured=fmt not in (None, ""),
        format_error=format_error(fmt),
        options=options,
        keep_alive=keep_alive,
    )


def _done_without_messages(name: str, reason: str) -> dict[str, Any]:
    return {
        "model": name,
        "created_at": go_time(),
        "message": {"role": "assistant", "content": ""},
        "done_reason": reason,
        "done": True,
    }


async def produce_chat(exchange: Exchange, plan: ChatPlan) -> None:
    if not plan.messages:
        await exchange.send_json(200, _done_without_messages(plan.name, "load"))
        return
    if plan.format_error is not None:
        await exchange.send_json(500, {"error": plan.format_error})
        return
    generation = generate(
        plan.messages,
        structured=plan.structured,
        thinks=plan.thinks,
        num_predict=plan.options.num_predict,
        stop=plan.options.stop,
        length=exchange.faults.answer_tokens,
    )
    if plan.stream:
        await _stream(exchange, plan, generation)
    else:
        await _single(exchange, plan, generation)


def _chunk(name: str, content: str, thinking: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking:
        message["thinking"] = thinking
    return {"model": name, "created_at": go_time(), "message": message, "done": False}


def _final(
    exchange: Exchange, plan: ChatPlan, generation: Generation, message: dict[str, Any]
) -> dict[str, Any]:
    total_ns, load_ns, eval_ns = exchange.durations()
    prompt_tokens = count_prompt_tokens(plan.messages)
    return {
        "model": plan.name,
        "created_at": go_time(),
        "message": message,
        "done_reason": generation.done_reason,
        "done": True,
        **metrics(
            total_ns=total_ns,
            load_ns=load_ns,
            prompt_eval_count=prompt_tokens,
            prompt_eval_ns=prompt_tokens * _PROMPT_EVAL_NS_PER_TOKEN,
            eval_count=generation.eval_count,
            eval_ns=eval_ns,
        ),
    }


async def _stream(exchange: Exchange, plan: ChatPlan, generation: Generation) -> None:
    """One NDJSON line per token, ``token_delay`` before each, then the done line.

    ``cut_after_chunks``/``error_after_chunks`` count token lines; a count past the
    last token cuts or fails in place of the done line.
    """
    faults = exchange.faults
    tokens: list[tuple[str, str | None]] = [("", t) for t in generation.thinking_tokens]
    tokens += [(t, None) for t in generation.content_tokens]
    cut_at = _position(faults.cut_after_chunks, len(tokens))
    fail_at = _position(faults.error_after_chunks, len(tokens))
    # Tokens fall due at a fixed rate from the start, as a model generates them: time
    # spent writing one is not added to the wait for the next. Tokens already due go
    # out together (up to _BATCH lines a write), so a fast answer is streamed fast.
    loop = asyncio.get_running_loop()
    due = loop.time()
    index = 0
    while True:
        if index == cut_at:
            await exchange.drop_connection()
            return
        if index == fail_at:
            await exchange.stream_error(faults.error_message)
            return
        if index == len(tokens):
            break
        due += faults.token_delay
        if await exchange.pause(due - loop.time()):
            return
        end = index + 1
        limit = min(x for x in (len(tokens), cut_at, fail_at, index + _BATCH) if x is not None)
        while end < limit and due + faults.token_delay <= loop.time():
            due += faults.token_delay
            end += 1
        await exchange.write_lines([_chunk(plan.name, *tokens[i]) for i in range(index, end)])
        index = end
    if exchange.client_gone():
        return
    done = _final(exchange, plan, generation, {"role": "assistant", "content": ""})
    await exchange.write_line(done)
    await exchange.end_stream()


def _position(count: int | None, length: int) -> int | None:
    return None if count is None else min(max(count, 0), length)


async def _single(exchange: Exchange, plan: ChatPlan, generation: Generation) -> None:
    """The whole answer at once, after as long as streaming it would have taken."""
    faults = exchange.faults
    produced = generation.eval_count
    for limit in (faults.cut_after_chunks, faults.error_after_chunks):
        if limit is not None:
            produced = min(produced, limit)
    if await exchange.pause(faults.token_delay * produced):
        return
    if faults.cut_after_chunks is not None:
        await exchange.drop_connection()
        return
    if faults.error_after_chunks is not None:
        await exchange.send_json(500, {"error": faults.error_message})
        return
    message: dict[str, Any] = {"role": "assistant", "content": generation.content}
    if generation.thinking:
        message["thinking"] = generation.thinking
    await exchange.send_json(200, _final(exchange, plan, generation, message))
