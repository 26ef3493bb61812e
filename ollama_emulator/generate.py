"""POST /api/generate: validation in Ollama's order, then a streamed or single answer.

Checks follow server/routes.go GenerateHandler: body decoding (400, images included:
see ``images``), ``top_logprobs`` outside 0..20 (400), a missing or unknown model
(404 "model 'x' not found": for generate Ollama answers a missing model as an
unknown one), the unload request (empty prompt, keep_alive 0), raw with a template,
system or context (400 "raw mode does not support template, system, or context"),
``think`` on a model that cannot think (400), capabilities (400 '"x" does not
support generate', or "<qualified name> does not support insert" for a ``suffix``),
option types (500), then the scheduler (see ``inference``). An empty prompt only
loads the model (done_reason "load"). Images on a model without vision fail in the
runner, after the load, as on chat. What is answered: ``completion``.

Lines are api.GenerateResponse: ``{"model", "created_at", "response", "thinking"
(when thinking), "done"}``; the done line adds ``done_reason``, ``context`` (not in
raw mode) and the metrics; ``logprobs`` ride along when asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ollama_emulator.completion import Completion
from ollama_emulator.content import Generation
from ollama_emulator.decoding import get_images, get_logprobs
from ollama_emulator.inference import Exchange, planned_response
from ollama_emulator.models import COMPLETION, INSERT, THINKING, VISION, ModelSpec, qualified_name
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
    type_error,
)
from ollama_emulator.wire import NO_VISION_MESSAGE, GoJSONResponse, go_quote, go_time

_STRUCT = "GenerateRequest"


@dataclass(frozen=True)
class GeneratePlan:
    """A valid generate request, ready to be answered."""

    name: str
    model: ModelSpec
    completion: Completion
    answering: Answering
    keep_alive: float | None


async def generate_endpoint(request: Request, state: EmulatorState) -> Response:
    return await planned_response(request, state, _STRUCT, plan_generate, produce_generate)


def _context(body: dict[str, Any]) -> tuple[int, ...]:
    value = body.get("context")
    if value is None:
        return ()
    if not isinstance(value, list):
        raise type_error(value, _STRUCT, "context", "[]int")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int):
            raise type_error(item, _STRUCT, "context", "int")
    return tuple(value)


def plan_generate(body: dict[str, Any], state: EmulatorState) -> GeneratePlan | Response:
    """Validates like Ollama; a Response for requests answered without the scheduler."""
    name = get_str(body, "model", _STRUCT)
    completion = Completion(
        prompt=get_str(body, "prompt", _STRUCT),
        system=get_str(body, "system", _STRUCT),
        suffix=get_str(body, "suffix", _STRUCT),
        template=get_str(body, "template", _STRUCT),
        raw=get_bool(body, "raw", _STRUCT) is True,
        context=_context(body),
        images=tuple(get_images(body.get("images"), _STRUCT, "images")),
    )
    stream_wanted = get_bool(body, "stream", _STRUCT)
    think = parse_think(body.get("think"))
    keep_alive = parse_keep_alive(body.get("keep_alive"))
    raw_options = get_options(body, _STRUCT)
    top_logprobs = get_logprobs(body, _STRUCT)

    model = state.catalog.find(name)
    if model is None:
        raise ApiError(404, f"model '{name}' not found")
    if not completion.prompt and keep_alive == 0:
        state.unload(model)
        return GoJSONResponse(_done_without_prompt(name, "unload"))
    if completion.raw and (completion.template or completion.system or completion.context):
        raise ApiError(400, "raw mode does not support template, system, or context")
    if not model.supports(THINKING) and think not in (None, False):
        raise ApiError(400, f"{go_quote(name)} does not support thinking")
    if not model.supports(COMPLETION):
        raise ApiError(400, f"{go_quote(name)} does not support generate")
    if completion.suffix and not model.supports(INSERT):
        raise ApiError(400, f"{qualified_name(model.key)} does not support insert")
    answering = Answering.of(
        model,
        body.get("format"),
        stream=stream_wanted,
        think=think,
        options=parse_options(raw_options),
        top_logprobs=top_logprobs,
    )
    return GeneratePlan(
        name=name,
        model=model,
        completion=completion,
        keep_alive=keep_alive,
        answering=answering,
    )


def _done_without_prompt(name: str, reason: str) -> dict[str, Any]:
    return {
        "model": name,
        "created_at": go_time(),
        "response": "",
        "done": True,
        "done_reason": reason,
    }


async def produce_generate(exchange: Exchange, plan: GeneratePlan) -> None:
    completion = plan.completion
    if not completion.prompt:
        await exchange.send_json(200, _done_without_prompt(plan.name, "load"))
        return
    answering = plan.answering
    if answering.format_error is not None:
        await exchange.send_json(500, {"error": answering.format_error})
        return
    if completion.images and not plan.model.supports(VISION):
        await exchange.send_json(500, {"error": NO_VISION_MESSAGE})
        return
    generation = completion.generate(
        structured=answering.structured,
        schema=answering.schema,
        thinks=answering.thinks,
        num_predict=answering.options.num_predict,
        stop=answering.options.stop,
        length=exchange.faults.answer_tokens,
    )
    await answer(
        exchange,
        generation,
        answering,
        line_for=lambda piece: _chunk(plan.name, piece),
        final=lambda whole, logprobs: _final(exchange, plan, generation, whole, logprobs),
    )


def _chunk(name: str, piece: Piece) -> dict[str, Any]:
    line: dict[str, Any] = {"model": name, "created_at": go_time(), "response": piece.content}
    if piece.thinking:
        line["thinking"] = piece.thinking
    line["done"] = False
    if piece.logprobs:
        line["logprobs"] = list(piece.logprobs)
    return line


def _final(
    exchange: Exchange,
    plan: GeneratePlan,
    generation: Generation,
    whole: bool,
    logprobs: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    """The done line; ``whole``: it carries the answer (streamed, the chunks did)."""
    response = generation.content if whole else ""
    line: dict[str, Any] = {"model": plan.name, "created_at": go_time(), "response": response}
    if whole and generation.thinking:
        line["thinking"] = generation.thinking
    line |= {"done": True, "done_reason": generation.done_reason}
    context = plan.completion.context_after(generation)
    if context:
        line["context"] = context
    line |= done_metrics(exchange, plan.completion.prompt_tokens(), generation)
    if logprobs:
        line["logprobs"] = logprobs
    return line
