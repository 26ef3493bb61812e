"""How Ollama's Go server puts things on the wire: JSON bodies, timestamps, error texts."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.responses import Response

OLLAMA_VERSION = "0.12.6"

BUSY_MESSAGE = "server busy, please try again.  maximum pending requests exceeded"
"""ErrMaxQueue in Ollama's server/sched.go (the two spaces are Ollama's)."""

NO_EMBEDDINGS_MESSAGE = "this model does not support embeddings"
"""What Ollama's runner answers (501) when asked to embed with a generative model."""

NO_VISION_MESSAGE = (
    "Failed to create new sequence: this model is missing data required for image input"
)
"""What Ollama's runner answers (500) when a model without vision is given images."""

NDJSON = "application/x-ndjson"
JSON = "application/json; charset=utf-8"

_FOREVER_YEARS = 100


def go_quote(text: str) -> str:
    """Go's ``%q`` for the plain strings model names are (a JSON string literal)."""
    return json.dumps(text, ensure_ascii=False)


def dumps(content: Any) -> bytes:
    return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()


def go_time(epoch: float | None = None) -> str:
    """RFC 3339 in UTC with a Z, as Go marshals ``time.Now().UTC()``."""
    moment = datetime.fromtimestamp(time.time() if epoch is None else epoch, tz=UTC)
    return format_time(moment)


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def expiry_time(expires_at: float) -> str:
    """``expires_at`` of /api/ps; a model kept forever expires in a century."""
    if expires_at == float("inf"):
        return format_time(datetime.now(tz=UTC) + timedelta(days=365 * _FOREVER_YEARS))
    return go_time(expires_at)


class GoJSONResponse(Response):
    """A JSON body like gin's ``c.JSON``: compact, UTF-8, ``application/json; charset=utf-8``."""

    media_type = JSON

    def render(self, content: Any) -> bytes:
        return dumps(content)


def error_response(status: int, message: str) -> GoJSONResponse:
    return GoJSONResponse({"error": message}, status_code=status)


def metrics(
    *,
    total_ns: int,
    load_ns: int,
    prompt_eval_count: int = 0,
    prompt_eval_ns: int = 0,
    eval_count: int = 0,
    eval_ns: int = 0,
) -> dict[str, int]:
    """api.Metrics: every field is ``omitempty`` in Go, so zero values are left out."""
    values = {
        "total_duration": total_ns,
        "load_duration": load_ns,
        "prompt_eval_count": prompt_eval_count,
        "prompt_eval_duration": prompt_eval_ns,
        "eval_count": eval_count,
        "eval_duration": eval_ns,
    }
    return {key: value for key, value in values.items() if value}
