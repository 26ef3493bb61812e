"""POST /api/chat: validation in Ollama's order, then a streamed or single answer.

Checks follow server/routes.go ChatHandler: body decoding (400, images included: see
``images``), ``top_logprobs`` outside 0..20 (400), missing model (400 "model is
required"), unknown model (404 "model 'x' not found"), the unload request (no
messages, keep_alive 0), ``think`` on a model that cannot think (400), capabilities
(400 "does not support chat" / "... does not support tools"), option types (500),
then the scheduler (see ``inference``). Roles are not checked: Ollama passes any
role to the model's template.

Ollama's handler does not check images against the model: a model without the
"vision" capability fails in its runner, after the load, with 500 "Failed to create
new sequence: this model is missing data required for image input"; so does the
emulator, whichever message carries the images.

Tool calls stream as Ollama's parsers emit them: thinking lines, then one line whose
message has empty content and the ``tool_calls``, then the done line; a single
answer carries them in its message. Content and done_reason stay "" and "stop".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ollama_emulator.content import Generation, count_prompt_tokens, generate
from ollama_emulator.decoding import get_logprobs, get_messages, get_tools
from ollama_emulator.inference import Exchange, planned_response
from ollama_emulator.models import COMPLETION, THINKING, TOOLS, VISION, ModelSpec, qualified_name
from ollama_emulator.state import EmulatorState
from ollama_emulator.streaming import Answering, Piece, answer, done_metrics
from ollama_emulator.validation import (
    ApiError,
    get_bool,
    get_options,
    get_str,
    parse_keep_alive,
    parse_options,
    parse_think,
)
from ollama_emulator.wire import NO_VISION_MESSAGE, GoJSONResponse, go_quote, go_time


@dataclass(frozen=True)
class ChatPlan:
    """A valid chat request, ready to be answered."""

    name: str
    model: ModelSpec
    messages: list[dict[str, Any]]
    answering: Answering
    keep_alive: float | None
    tools: list[dict[str, Any]]


async def chat_endpoint(request: Request, state: EmulatorState) -> Response:
    return await planned_response(request, state, "ChatRequest", plan_chat, produce_chat)


def plan_chat(body: dict[str, Any], state: EmulatorState) -> ChatPlan | Response:
    """Validates like Ollama; a Response for requests answered without the scheduler."""
    name = get_str(body, "model", "ChatRequest")
    messages = get_messages(body)
    stream_wanted = get_bool(body, "stream", "ChatRequest")
    think = parse_think(body.get("think"))
    keep_alive = parse_keep_alive(body.get("keep_alive"))
    raw_options = get_options(body, "ChatRequest")
    tools = get_tools(body)
    top_logprobs = get_logprobs(body, "ChatRequest")

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
    answering = Answering.of(
        model,
        body.get("format"),
        stream=stream_wanted,
        think=think,
        options=parse_options(raw_options),
        top_logprobs=top_logprobs,
    )
    return ChatPlan(
        name=name,
        model=model,
        messages=messages,
        keep_alive=keep_alive,
        tools=tools,
        answering=answering,
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
    answering = plan.answering
    if answering.format_error is not None:
        await exchange.send_json(500, {"error": answering.format_error})
        return
    if not plan.model.supports(VISION) and any(m.get("images") for m in plan.messages):
        await exchange.send_json(500, {"error": NO_VISION_MESSAGE})
        return
    generation = generate(
        plan.messages,
        structured=answering.structured,
        schema=answering.schema,
        thinks=answering.thinks,
        num_predict=answering.options.num_predict,
        stop=answering.options.stop,
        length=exchange.faults.answer_tokens,
        tools=plan.tools,
    )
    await answer(
        exchange,
        generation,
        answering,
        line_for=lambda piece: _chunk(plan.name, piece),
        final=lambda whole, logprobs: _final(exchange, plan, generation, whole, logprobs),
    )


def _message(content: str, thinking: str, tool_calls: tuple[dict[str, Any], ...]) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if thinking:
        message["thinking"] = thinking
    if tool_calls:
        message["tool_calls"] = list(tool_calls)
    return message


def _chunk(name: str, piece: Piece) -> dict[str, Any]:
    line: dict[str, Any] = {
        "model": name,
        "created_at": go_time(),
        "message": _message(piece.content, piece.thinking, piece.tool_calls),
        "done": False,
    }
    if piece.logprobs:
        line["logprobs"] = list(piece.logprobs)
    return line


def _final(
    exchange: Exchange,
    plan: ChatPlan,
    generation: Generation,
    whole: bool,
    logprobs: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """The done line; ``whole``: it carries the answer (streamed, the chunks did)."""
    if whole:
        message = _message(generation.content, generation.thinking, generation.tool_calls)
    else:
        message = _message("", "", ())
    line: dict[str, Any] = {
        "model": plan.name,
        "created_at": go_time(),
        "message": message,
        "done_reason": generation.done_reason,
        "done": True,
    }
    if logprobs:
        line["logprobs"] = logprobs
    return line | done_metrics(exchange, count_prompt_tokens(plan.messages), generation)
