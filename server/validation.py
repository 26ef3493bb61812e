"""Request validation, and the Ollama request bodies built from valid requests.

Unset optional fields take the defaults from ``Settings``; values that are set are
checked against them. Every rejection is an ``InvalidArgument`` naming the field.
"""

from __future__ import annotations

import json
from typing import Any

from generated.llm.v1 import llm_service_pb2 as pb
from server.config import Settings
from server.errors import InvalidArgument, quoted

# Longest model name accepted (Ollama's own names are far shorter).
MAX_MODEL_NAME = 256
# Deepest nesting of a JSON value a caller sends (a format schema, a request body).
MAX_JSON_DEPTH = 64

ROLES = ("system", "user", "assistant", "tool")
THINK_VALUES: dict[str, bool | str] = {
    "true": True,
    "false": False,
    "low": "low",
    "medium": "medium",
    "high": "high",
}


def chat_payload(req: pb.ChatRequest, settings: Settings) -> dict[str, Any]:
    """The /api/chat body for ``req``: system prompt, then history, then the message."""
    if not req.message.strip():
        raise InvalidArgument("message must not be empty")
    limit = settings.max_message_chars
    if len(req.message) > limit:
        raise InvalidArgument(
            f"message is {len(req.message)} characters long; at most {limit} are accepted"
        )
    if len(req.history) > settings.max_history:
        raise InvalidArgument(
            f"history has {len(req.history)} turns; at most {settings.max_history} are accepted"
        )
    total = len(req.system) + sum(len(t.content) + len(t.thinking) for t in req.history)
    if total > limit * 4:
        raise InvalidArgument(
            f"system prompt and history hold {total} characters; at most {limit * 4} are accepted"
        )
    model = model_name(req.model, settings.default_model)
    messages: list[dict[str, str]] = []
    if req.HasField("system") and req.system:
        messages.append({"role": "system", "content": req.system})
    for i, turn in enumerate(req.history):
        role = turn.role.strip().lower()
        if role not in ROLES:
            raise InvalidArgument(
                f"history[{i}].role must be one of {', '.join(ROLES)}, got {quoted(turn.role)}"
            )
        entry = {"role": role, "content": turn.content}
        if turn.thinking:
            entry["thinking"] = turn.thinking
        messages.append(entry)
    messages.append({"role": "user", "content": req.message})

    options: dict[str, Any] = {
        "num_predict": _max_tokens(req, settings),
        "temperature": _temperature(req, settings),
        "top_p": _top_p(req, settings),
    }
    if req.stop:
        if any(not s for s in req.stop):
            raise InvalidArgument("stop must not contain empty strings")
        options["stop"] = list(req.stop)
    if req.HasField("seed"):
        options["seed"] = req.seed

    payload: dict[str, Any] = {"model": model, "messages": messages, "options": options}
    fmt = _format(req.format)
    if fmt is not None:
        payload["format"] = fmt
    think = _think(req.think)
    if think is not None:
        payload["think"] = think
    return payload


def embed_payload(req: pb.EmbedRequest, settings: Settings) -> dict[str, Any]:
    if not req.input:
        raise InvalidArgument("input must hold at least one text")
    if len(req.input) > settings.max_embed_inputs:
        raise InvalidArgument(
            f"input holds {len(req.input)} texts; at most {settings.max_embed_inputs} are accepted"
        )
    for i, text in enumerate(req.input):
        if not text.strip():
            raise InvalidArgument(f"input[{i}] must not be empty")
        if len(text) > settings.max_message_chars:
            raise InvalidArgument(
                f"input[{i}] is {len(text)} characters long; "
                f"at most {settings.max_message_chars} are accepted"
            )
    model = model_name(req.model, settings.embedding_model)
    return {"model": model, "input": list(req.input)}


def model_name(raw: str, default: str) -> str:
    """The model a request names (``default`` when it names none), within bounds."""
    name = raw.strip()
    if len(name) > MAX_MODEL_NAME:
        raise InvalidArgument(
            f"model name is {len(name)} characters long; at most {MAX_MODEL_NAME} are accepted"
        )
    return name or default


def json_depth(value: Any) -> int:
    """How deeply ``value`` nests (a scalar is 0, ``[]`` and ``{}`` are 1); computed
    without recursion, so no depth can exhaust the stack."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            deepest = max(deepest, depth)
            continue
        deepest = max(deepest, depth + 1)
        pending.extend((child, depth + 1) for child in item)
    return deepest


def _max_tokens(req: pb.ChatRequest, settings: Settings) -> int:
    if not req.HasField("max_tokens"):
        return settings.max_tokens
    if req.max_tokens <= 0:
        raise InvalidArgument(f"max_tokens must be above 0, got {req.max_tokens}")
    if req.max_tokens > settings.max_tokens:
        raise InvalidArgument(
            f"max_tokens must be at most {settings.max_tokens} (OLLAMA_MAX_TOKENS), "
            f"got {req.max_tokens}"
        )
    return req.max_tokens


def _temperature(req: pb.ChatRequest, settings: Settings) -> float:
    if not req.HasField("temperature"):
        return settings.temperature
    value = req.temperature
    if not 0.0 <= value <= 2.0:  # also rejects NaN
        raise InvalidArgument(f"temperature must be from 0 to 2, got {value:g}")
    return value


def _top_p(req: pb.ChatRequest, settings: Settings) -> float:
    if not req.HasField("top_p"):
        return settings.top_p
    value = req.top_p
    if not 0.0 < value <= 1.0:
        raise InvalidArgument(f"top_p must be above 0 and at most 1, got {value:g}")
    return value


def _format(raw: str) -> str | dict[str, Any] | None:
    text = raw.strip()
    if not text:
        return None
    if text == "json":
        return "json"
    try:
        schema = json.loads(text, parse_constant=_not_json)
    except RecursionError:
        raise _too_deep("format") from None
    except ValueError:
        raise InvalidArgument('format must be "json" or a JSON schema object') from None
    if not isinstance(schema, dict):
        raise InvalidArgument('format must be "json" or a JSON schema object')
    if json_depth(schema) > MAX_JSON_DEPTH:
        raise _too_deep("format")
    return schema


def _too_deep(what: str) -> InvalidArgument:
    return InvalidArgument(f"{what} is nested deeper than {MAX_JSON_DEPTH} levels")


def _not_json(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _think(raw: str) -> bool | str | None:
    value = raw.strip().lower()
    if not value:
        return None
    if value not in THINK_VALUES:
        raise InvalidArgument(
            f"think must be one of {', '.join(THINK_VALUES)}, got {quoted(raw)}"
        )
    return THINK_VALUES[value]
