"""OpenAI-style JSON <-> ``llm.v1`` messages for the ``/v1/...`` routes: the shape checks
they share, embeddings and models. Chat lives in ``rest_shim.openai_chat``.

The OpenAI shapes differ from the proto, so this mapping is written by hand. Only the
shape is checked here; value ranges are the server's to check, and its
INVALID_ARGUMENT comes back as 400.
"""

from __future__ import annotations

import base64
import struct
from datetime import datetime
from typing import Any

from generated.llm.v1 import llm_service_pb2 as pb
from server.errors import quoted

JsonDict = dict[str, Any]


class RequestError(ValueError):
    """The body does not have the OpenAI request's shape: answered with 400."""

    def __init__(self, param: str, message: str, code: str = "invalid_value") -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.code = code


# --- small type checks ------------------------------------------------------------


def missing(param: str) -> RequestError:
    return RequestError(param, "is required", "missing_required_parameter")


def wrong_type(param: str, expected: str) -> RequestError:
    return RequestError(param, f"must be {expected}", "invalid_type")


def opt_str(body: JsonDict, key: str) -> str | None:
    value = body.get(key)
    if value is not None and not isinstance(value, str):
        raise wrong_type(key, "a string")
    return value


def opt_bool(body: JsonDict, key: str) -> bool | None:
    value = body.get(key)
    if value is not None and not isinstance(value, bool):
        raise wrong_type(key, "true or false")
    return value


def opt_number(body: JsonDict, key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise wrong_type(key, "a number")
    return float(value)


def opt_int(body: JsonDict, key: str, limit: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise wrong_type(key, "an integer")
    if not -limit - 1 <= value <= limit:
        raise RequestError(key, f"is out of range, got {quoted(value)}")
    return value


# --- embeddings and models ---------------------------------------------------------


def embedding_request(body: JsonDict) -> tuple[pb.EmbedRequest, str]:
    """The EmbedRequest, and the encoding the vectors go back in ("float" or "base64")."""
    raw = body.get("input")
    if raw is None:
        raise missing("input")
    texts = [raw] if isinstance(raw, str) else raw
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise wrong_type(
            "input", "a string or an array of strings (token arrays are not supported)"
        )
    encoding = opt_str(body, "encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise RequestError("encoding_format", f"must be float or base64, got {quoted(encoding)}")
    if body.get("dimensions") is not None:
        raise RequestError("dimensions", "choosing the number of dimensions is not supported")
    return pb.EmbedRequest(input=texts, model=opt_str(body, "model") or ""), encoding


def _encode(values: Any, encoding: str) -> list[float] | str:
    """Float list, or base64 of the little-endian float32 bytes (what OpenAI sends)."""
    floats = list(values)
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(floats)}f", *floats)).decode("ascii")
    return floats


def embedding_list(reply: pb.EmbedResponse, encoding: str) -> JsonDict:
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": _encode(e.values, encoding)}
            for i, e in enumerate(reply.embeddings)
        ],
        "model": reply.model,
        "usage": {"prompt_tokens": reply.prompt_tokens, "total_tokens": reply.prompt_tokens},
    }


def _unix(rfc3339: str) -> int:
    try:
        return int(datetime.fromisoformat(rfc3339).timestamp())
    except ValueError:
        return 0


def model_object(model: pb.ModelInfo) -> JsonDict:
    """One model as OpenAI lists it; ``created`` is when Ollama last modified it."""
    return {
        "id": model.name,
        "object": "model",
        "created": _unix(model.modified_at),
        "owned_by": "ollama",
    }


def model_list(reply: pb.ListModelsResponse) -> JsonDict:
    return {"object": "list", "data": [model_object(m) for m in reply.models]}


def find_model(reply: pb.ListModelsResponse, name: str) -> pb.ModelInfo | None:
    """The model called ``name``; like Ollama, a name without a tag means ``:latest``."""
    wanted = {name, f"{name}:latest"}
    return next((m for m in reply.models if m.name in wanted), None)
