"""Request-body checks with the errors Ollama's Go server gives.

Ollama decodes bodies with encoding/json into typed structs, so a malformed body or a
field of the wrong JSON type is a 400 carrying Go's decoder message; these are
reproduced closely, not byte for byte (Go's syntax-error texts depend on its scanner
state). ``null`` is accepted anywhere, as Go treats it as "not set".
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

THINK_LEVELS = ("high", "medium", "low")

_INT_OPTIONS = frozenset(
    [
        "num_keep",
        "seed",
        "num_predict",
        "top_k",
        "repeat_last_n",
        "mirostat",
        "num_ctx",
        "num_batch",
        "num_gpu",
        "main_gpu",
        "num_thread",
    ]
)
_FLOAT_OPTIONS = frozenset(
    [
        "top_p",
        "min_p",
        "tfs_z",
        "typical_p",
        "temperature",
        "repeat_penalty",
        "presence_penalty",
        "frequency_penalty",
        "mirostat_tau",
        "mirostat_eta",
    ]
)
_BOOL_OPTIONS = frozenset(
    ["penalize_newline", "numa", "low_vram", "vocab_only", "use_mmap", "use_mlock"]
)

_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = MappingProxyType(
    {
        "ns": 1e-9,
        "us": 1e-6,
        "µs": 1e-6,
        "μs": 1e-6,
        "ms": 1e-3,
        "s": 1.0,
        "m": 60.0,
        "h": 3600.0,
    }
)


class ApiError(Exception):
    """An error answer: ``status`` with body ``{"error": message}``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def go_type(value: Any) -> str:
    """The JSON type name Go's decoder uses in "cannot unmarshal X" errors."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def type_error(value: Any, struct: str, field: str, go_field_type: str) -> ApiError:
    return ApiError(
        400,
        f"json: cannot unmarshal {go_type(value)} into Go struct field {struct}.{field} "
        f"of type {go_field_type}",
    )


def parse_body(raw: bytes, struct: str) -> dict[str, Any]:
    """The JSON object in ``raw``, or the 400 Ollama gives for an empty/malformed body."""
    text = raw.decode("utf-8", errors="replace")
    if not text.strip():
        raise ApiError(400, "missing request body")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        rest = text[exc.pos :].strip()
        if not rest:
            raise ApiError(400, "unexpected EOF") from None
        raise ApiError(
            400, f"invalid character {rest[0]!r} looking for beginning of value"
        ) from None
    if not isinstance(value, dict):
        raise ApiError(
            400, f"json: cannot unmarshal {go_type(value)} into Go value of type api.{struct}"
        )
    return value


def get_str(body: dict[str, Any], key: str, struct: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise type_error(value, struct, key, "string")
    return value


def get_bool(body: dict[str, Any], key: str, struct: str) -> bool | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, bool):
        raise type_error(value, struct, key, "bool")
    return value


def get_int(body: dict[str, Any], key: str, struct: str) -> int:
    value = body.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise type_error(value, struct, key, "int")
    return int(value)


def parse_think(value: Any) -> bool | str | None:
    """``think``: a bool or "high"/"medium"/"low" (None when unset)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value not in THINK_LEVELS:
            raise ApiError(400, f"invalid think value: {json.dumps(value)}")
        return value
    raise ApiError(400, 'think must be a boolean or string ("high", "medium", "low")')


def parse_keep_alive(value: Any) -> float | None:
    """``keep_alive`` in seconds (None = default 5m; inf = forever), as api.Duration parses it."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ApiError(400, f"Unsupported type: '{go_type(value)}'")
    if isinstance(value, int | float):  # whole seconds: Go truncates the number
        return math.inf if value < 0 else float(int(value))
    seconds = parse_go_duration(value)
    return math.inf if seconds < 0 else seconds


def parse_go_duration(text: str) -> float:
    """Go's time.ParseDuration, in seconds."""
    sign, body = (-1.0, text[1:]) if text.startswith("-") else (1.0, text.removeprefix("+"))
    if body == "0":
        return 0.0
    if not body:
        raise ApiError(400, f"time: invalid duration {json.dumps(text)}")
    total, pos = 0.0, 0
    for match in _DURATION_PART.finditer(body):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(body):
        if re.fullmatch(r"[\d.]+", body):
            raise ApiError(400, f"time: missing unit in duration {json.dumps(text)}")
        raise ApiError(400, f"time: invalid duration {json.dumps(text)}")
    return sign * total


@dataclass(frozen=True)
class GenerationOptions:
    """The ``options`` the emulator acts on; the others are only type-checked."""

    num_predict: int = 0
    stop: tuple[str, ...] = ()


def get_options(body: dict[str, Any], struct: str) -> dict[str, Any]:
    value = body.get("options")
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise type_error(value, struct, "options", "map[string]interface {}")
    return value


def parse_options(options: dict[str, Any]) -> GenerationOptions:
    """Checks option types like api.Options.FromMap; Ollama answers a mistake with a 500."""
    for key, value in options.items():
        if value is None:
            continue
        if key in _INT_OPTIONS and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ApiError(500, f'option "{key}" must be of type integer')
        if key in _FLOAT_OPTIONS and (
            isinstance(value, bool) or not isinstance(value, int | float)
        ):
            raise ApiError(500, f'option "{key}" must be of type float32')
        if key in _BOOL_OPTIONS and not isinstance(value, bool):
            raise ApiError(500, f'option "{key}" must be of type boolean')
        if key == "stop":
            if not isinstance(value, list):
                raise ApiError(500, 'option "stop" must be of type array')
            if not all(isinstance(s, str) for s in value):
                raise ApiError(500, 'option "stop" must be of an array of strings')
    num_predict = options.get("num_predict")
    stop = options.get("stop")
    return GenerationOptions(
        num_predict=int(num_predict) if num_predict is not None else 0,
        stop=tuple(stop) if stop is not None else (),
    )


def format_error(value: Any) -> str | None:
    """The error Ollama's runner gives for a ``format`` that is neither "json" nor a schema."""
    if value is None or value == "" or value == "json" or isinstance(value, dict):
        return None
    raw = json.dumps(value, separators=(",", ":"))
    return f'invalid format: {json.dumps(raw)}; expected "json" or a valid JSON Schema object'
