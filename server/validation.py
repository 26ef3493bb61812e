"""Checks of the values a request carries, each turned into what Ollama takes.

Unset optional fields take the defaults from ``Settings``; values that are set are
checked against them. Every rejection is an ``InvalidArgument`` naming the field, in
its message and as data (``field``, the field's path in the request message).
``server.payloads`` builds whole Ollama requests from these.
"""

from __future__ import annotations

import functools
import json
import math
import re
from typing import Any

from google.protobuf import json_format, struct_pb2

from generated.llm.v1 import llm_service_pb2 as pb
from server.config import Settings
from server.config_values import GO_DURATION, MAX_KEEP_ALIVE
from server.errors import InvalidArgument, quoted

# Longest model name accepted (Ollama's own names are far shorter).
MAX_MODEL_NAME = 256
# Deepest nesting of a JSON value a caller sends (a format schema, a request body).
MAX_JSON_DEPTH = 64
# Ollama's keep_alive when a request gives none (5 minutes).
OLLAMA_KEEP_ALIVE = 300.0
_DURATION_PART = re.compile(r"(\d+(\.\d*)?)(ns|us|µs|ms|s|m|h)")

ROLES = ("system", "user", "assistant", "tool")
THINK_VALUES: dict[str, bool | str] = {
    "true": True,
    "false": False,
    "low": "low",
    "medium": "medium",
    "high": "high",
}


def model_name(raw: str, default: str) -> str:
    """The model a request names (``default`` when it names none), within bounds."""
    name = raw.strip()
    if len(name) > MAX_MODEL_NAME:
        raise InvalidArgument(
            f"model name is {len(name)} characters long; at most {MAX_MODEL_NAME} are accepted",
            field="model",
        )
    return name or default


def json_depth(value: Any) -> int:
    """How deeply ``value`` nests (a scalar is 0, ``[]`` and ``{}`` are 1); computed
    without recursion, so no depth can exhaust the stack. Only containers are visited:
    a body's strings and numbers (most of it) never reach the loop."""
    if not isinstance(value, (dict, list)):
        return 0
    deepest = 0
    pending: list[tuple[dict[str, Any] | list[Any], int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        deepest = max(deepest, depth)
        children = item.values() if isinstance(item, dict) else item
        pending.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


Sampled = pb.ChatRequest | pb.GenerateRequest


def sampling(req: Sampled, settings: Settings) -> dict[str, Any]:
    """Ollama's options for the common settings: max_tokens (OLLAMA_MAX_TOKENS when
    unset, never above it), temperature and top_p (the service's defaults when unset,
    unless the request leaves them to the model), stop and seed."""
    options: dict[str, Any] = {"num_predict": _max_tokens(req, settings)}
    temperature = _temperature(req, settings)
    if temperature is not None:
        options["temperature"] = temperature
    top_p = _top_p(req, settings)
    if top_p is not None:
        options["top_p"] = top_p
    if req.stop:
        if any(not s for s in req.stop):
            raise InvalidArgument("stop must not contain empty strings", field="stop")
        options["stop"] = list(req.stop)
    if req.HasField("seed"):
        options["seed"] = req.seed
    return options


def _max_tokens(req: Sampled, settings: Settings) -> int:
    if not req.HasField("max_tokens"):
        return settings.max_tokens
    if req.max_tokens <= 0:
        raise InvalidArgument(
            f"max_tokens must be above 0, got {req.max_tokens}", field="max_tokens"
        )
    if req.max_tokens > settings.max_tokens:
        raise InvalidArgument(
            f"max_tokens must be at most {settings.max_tokens} (OLLAMA_MAX_TOKENS), "
            f"got {req.max_tokens}",
            field="max_tokens",
        )
    return req.max_tokens


def _temperature(req: Sampled, settings: Settings) -> float | None:
    if not req.HasField("temperature"):
        return None if req.model_defaults else settings.temperature
    value = req.temperature
    if not 0.0 <= value <= 2.0:  # also rejects NaN
        raise InvalidArgument(
            f"temperature must be from 0 to 2, got {value:g}", field="temperature"
        )
    return value


def _top_p(req: Sampled, settings: Settings) -> float | None:
    if not req.HasField("top_p"):
        return None if req.model_defaults else settings.top_p
    value = req.top_p
    if not 0.0 < value <= 1.0:
        raise InvalidArgument(f"top_p must be above 0 and at most 1, got {value:g}", field="top_p")
    return value


def text_format(raw: str) -> str | dict[str, Any] | None:
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
        raise InvalidArgument(
            'format must be "json" or a JSON schema object', field="format"
        ) from None
    if not isinstance(schema, dict):
        raise InvalidArgument('format must be "json" or a JSON schema object', field="format")
    if json_depth(schema) > MAX_JSON_DEPTH:
        raise _too_deep("format")
    return schema


def value_format(value: struct_pb2.Value, what: str) -> str | dict[str, Any]:
    """A format given as data: the string "json", or a JSON schema object."""
    kind = value.WhichOneof("kind")
    if kind == "string_value" and value.string_value == "json":
        return "json"
    if kind == "struct_value":
        return bounded_plain(value.struct_value, what)
    raise InvalidArgument(f'{what} must be "json" or a JSON schema object', field=what)


def plain(struct: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as plain JSON data; whole numbers stay integers (a Struct holds every
    number as a double), as a caller wrote them."""
    data: dict[str, Any] = whole_numbers(json_format.MessageToDict(struct))
    return data


def bounded_plain(struct: struct_pb2.Struct, field: str) -> dict[str, Any]:
    """``plain(struct)``, refused when it nests deeper than ``MAX_JSON_DEPTH``;
    ``field`` is its path in the request."""
    data = plain(struct)
    if json_depth(data) > MAX_JSON_DEPTH:
        raise _too_deep(field)
    return data


def whole_numbers(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2**53:
        return float(value)  # protobuf's JSON gives every whole number as an int
    if isinstance(value, dict):
        return {k: whole_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [whole_numbers(v) for v in value]
    return value


def keep_alive(raw: str) -> str | float | None:
    """Ollama's keep_alive: seconds (a number) or a Go duration ("5m", "1h30m")."""
    text = raw.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        if not GO_DURATION.fullmatch(text):
            raise InvalidArgument(
                f'keep_alive must be seconds or a duration like "5m", got {quoted(text)}',
                field="keep_alive",
            ) from None
        return text
    if not math.isfinite(seconds) or abs(seconds) > MAX_KEEP_ALIVE:
        raise InvalidArgument(
            f"keep_alive must be seconds from -{MAX_KEEP_ALIVE} to {MAX_KEEP_ALIVE}, got {text}",
            field="keep_alive",
        )
    return int(seconds) if seconds.is_integer() else seconds


def keep_alive_policy(raw: str, settings: Settings) -> str | float | None:
    """The keep_alive sent to Ollama: the caller's, or LLM_KEEP_ALIVE when it gives none;
    unless LLM_KEEP_ALIVE_LOWER allows it, a caller cannot unload a shared model sooner
    than the operator's keep_alive (Ollama's own 5 minutes when none is set): a shorter
    one (0 included) is replaced by the operator's."""
    asked = keep_alive(raw)
    default = _operator_keep_alive(settings.keep_alive)
    if asked is None:
        return default
    if settings.keep_alive_lower:
        return asked
    floor = seconds(default) if default is not None else OLLAMA_KEEP_ALIVE
    if floor < 0:
        floor = math.inf  # the operator keeps models loaded for good
    wanted = seconds(asked)
    if wanted < 0 or wanted >= floor:
        return asked
    return default


@functools.lru_cache(maxsize=4)
def _operator_keep_alive(raw: str) -> str | float | None:
    """LLM_KEEP_ALIVE as sent to Ollama, parsed once (it is checked at start-up)
    rather than on every request."""
    return keep_alive(raw) if raw else None


def seconds(value: str | float) -> float:
    """A keep_alive in seconds: a number already, or a Go duration ("1h30m")."""
    if not isinstance(value, str):
        return float(value)
    sign = -1.0 if value.startswith("-") else 1.0
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
    total = sum(float(n) * units[u] for n, _, u in _DURATION_PART.findall(value))
    return sign * total


def _too_deep(what: str) -> InvalidArgument:
    return InvalidArgument(f"{what} is nested deeper than {MAX_JSON_DEPTH} levels", field=what)


def _not_json(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def think(raw: str) -> bool | str | None:
    value = raw.strip().lower()
    if not value:
        return None
    if value not in THINK_VALUES:
        raise InvalidArgument(
            f"think must be one of {', '.join(THINK_VALUES)}, got {quoted(raw)}", field="think"
        )
    return THINK_VALUES[value]
