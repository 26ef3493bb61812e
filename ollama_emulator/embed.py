"""POST /api/embed and the legacy POST /api/embeddings.

Checks follow server/routes.go EmbedHandler: body decoding (400), an empty model name
(404 "model '' not found"), the input type (400 "invalid input type"), an unknown model
(404 'model "x" not found, try pulling it first', from handleScheduleError), option
types (500), then the scheduler (see ``inference``). Asking a model without the
embedding capability answers 501 "this model does not support embeddings" (the
runner's answer; the legacy endpoint turns it into a 500). Embed requests are not
streamed: ``error_after_chunks`` answers 500 and ``cut_after_chunks`` drops the
connection without an answer, whatever their count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ollama_emulator.content import count_words, embed_vector
from ollama_emulator.inference import Exchange, planned_response
from ollama_emulator.models import EMBEDDING, ModelSpec
from ollama_emulator.state import EmulatorState
from ollama_emulator.streaming import answered_by_fault
from ollama_emulator.validation import (
    ApiError,
    get_bool,
    get_int,
    get_options,
    get_str,
    parse_keep_alive,
    parse_options,
)
from ollama_emulator.wire import NO_EMBEDDINGS_MESSAGE, go_quote, metrics


def _inputs(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ApiError(400, "invalid input type")


def _find(state: EmulatorState, name: str) -> ModelSpec:
    model = state.catalog.find(name)
    if model is None:
        raise ApiError(404, f"model {go_quote(name)} not found, try pulling it first")
    return model


@dataclass(frozen=True)
class EmbedPlan:
    """A valid /api/embed request, ready to be answered."""

    name: str
    model: ModelSpec
    keep_alive: float | None
    texts: list[str]
    dimensions: int


async def embed_endpoint(request: Request, state: EmulatorState) -> Response:
    return await planned_response(request, state, "EmbedRequest", plan_embed, produce_embed)


def plan_embed(body: dict[str, Any], state: EmulatorState) -> EmbedPlan:
    name = get_str(body, "model", "EmbedRequest")
    get_bool(body, "truncate", "EmbedRequest")
    dimensions = get_int(body, "dimensions", "EmbedRequest")
    keep_alive = parse_keep_alive(body.get("keep_alive"))
    raw_options = get_options(body, "EmbedRequest")
    if not name.strip():
        raise ApiError(404, f"model '{name}' not found")
    texts = _inputs(body.get("input"))
    model = _find(state, name)
    parse_options(raw_options)
    return EmbedPlan(name, model, keep_alive, texts, dimensions)


async def produce_embed(exchange: Exchange, plan: EmbedPlan) -> None:
    texts, model = plan.texts, plan.model
    if not texts:
        await exchange.send_json(200, {"model": plan.name, "embeddings": []})
        return
    if await answered_by_fault(exchange):
        return
    if not model.supports(EMBEDDING):
        await exchange.send_json(501, {"error": NO_EMBEDDINGS_MESSAGE})
        return
    vectors = [embed_vector(text, model.embedding_dim, plan.dimensions or None) for text in texts]
    total_ns, load_ns, _ = exchange.durations()
    await exchange.send_json(
        200,
        {
            "model": plan.name,
            "embeddings": vectors,
            **metrics(
                total_ns=total_ns,
                load_ns=load_ns,
                prompt_eval_count=sum(count_words(t) for t in texts),
            ),
        },
    )


@dataclass(frozen=True)
class EmbeddingsPlan:
    """A valid /api/embeddings request, ready to be answered."""

    model: ModelSpec
    keep_alive: float | None
    prompt: str


async def embeddings_endpoint(request: Request, state: EmulatorState) -> Response:
    """The superseded /api/embeddings: ``{model, prompt}`` -> ``{"embedding": [...]}``."""
    return await planned_response(
        request, state, "EmbeddingRequest", plan_embeddings, produce_embeddings
    )


def plan_embeddings(body: dict[str, Any], state: EmulatorState) -> EmbeddingsPlan:
    name = get_str(body, "model", "EmbeddingRequest")
    prompt = get_str(body, "prompt", "EmbeddingRequest")
    keep_alive = parse_keep_alive(body.get("keep_alive"))
    raw_options = get_options(body, "EmbeddingRequest")
    if not name.strip():
        raise ApiError(400, "model is required")
    model = _find(state, name)
    parse_options(raw_options)
    return EmbeddingsPlan(model, keep_alive, prompt)


async def produce_embeddings(exchange: Exchange, plan: EmbeddingsPlan) -> None:
    model = plan.model
    if not plan.prompt:
        await exchange.send_json(200, {"embedding": []})
        return
    if await answered_by_fault(exchange):
        return
    if not model.supports(EMBEDDING):
        await exchange.send_json(500, {"error": NO_EMBEDDINGS_MESSAGE})
        return
    await exchange.send_json(200, {"embedding": embed_vector(plan.prompt, model.embedding_dim)})
