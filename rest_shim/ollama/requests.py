"""Ollama's request bodies (docs/api.md, api/types.go) as ``llm.v1`` requests.

Nothing is lost on the way: ``options`` keys map to the request's typed fields where
the contract has them (temperature, top_p, num_predict as max_tokens, stop, seed,
num_ctx, top_k, min_p and the penalties) and every other key, known to the service or
not, rides in ``options.extra`` to Ollama unchanged. ``format``, ``think``,
``keep_alive``, ``tools``, tool calls, ``images`` and tool messages map field by field.
Requests leave temperature and top_p to the model when unset, as Ollama does
(``model_defaults``); ``num_predict`` of 0 or below (Ollama's "no limit") leaves the
operator's OLLAMA_MAX_TOKENS in force.

Shape errors are ``BadRequest`` (400 with Ollama's ``{"error"}`` body); value ranges are
the server's to check.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
from collections.abc import Callable
from typing import Any, TypeVar, cast

from google.protobuf import struct_pb2

from generated.llm.v1 import llm_service_pb2 as pb

JsonDict = dict[str, Any]
INT32_MAX = 2**31 - 1
_TYPED_INTS = ("num_ctx", "top_k")
_TYPED_FLOATS = ("min_p", "repeat_penalty", "presence_penalty", "frequency_penalty")


class BadRequest(ValueError):
    """The body does not have the shape Ollama's API defines."""


def model_of(body: JsonDict) -> str:
    """``model`` (or the deprecated ``name``); "model is required" as Ollama says."""
    value = body.get("model") or body.get("name") or ""
    if not isinstance(value, str):
        raise BadRequest("model must be a string")
    if not value.strip():
        raise BadRequest("model is required")
    return value


def _string(body: JsonDict, key: str) -> str:
    value = body.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be a string")
    return value


def _bool(body: JsonDict, key: str) -> bool:
    value = body.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadRequest(f"{key} must be true or false")
    return value


def stream_of(body: JsonDict) -> bool:
    """``stream`` defaults to true, as on Ollama."""
    value = body.get("stream")
    if value is None:
        return True
    if not isinstance(value, bool):
        raise BadRequest("stream must be true or false")
    return value


def _struct(value: Any, what: str) -> struct_pb2.Struct:
    if not isinstance(value, dict):
        raise BadRequest(f"{what} must be an object")
    out = struct_pb2.Struct()
    out.update(value)
    return out


def _value(value: Any, what: str) -> struct_pb2.Value:
    out = struct_pb2.Value()
    if isinstance(value, str):
        out.string_value = value
    elif isinstance(value, dict):
        out.struct_value.update(value)
    else:
        raise BadRequest(f'{what} must be "json" or a JSON schema object')
    return out


def _images(value: Any, what: str) -> list[bytes]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadRequest(f"{what} must be an array of base64 strings")
    out = []
    for item in value:
        if not isinstance(item, str):
            raise BadRequest(f"{what} must be an array of base64 strings")
        try:
            out.append(base64.b64decode(item, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise BadRequest(f"illegal base64 data in {what}: {exc}") from None
    return out


def _think(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    raise BadRequest('think must be true, false, "low", "medium" or "high"')


def _keep_alive(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadRequest("keep_alive must be a number of seconds or a duration string")
    return value if isinstance(value, str) else f"{value:g}"


def _number(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequest(f'option "{key}" must be of type number')
    return float(value)


def _integer(key: str, value: Any) -> int:
    number = _number(key, value)
    if not number.is_integer() or abs(number) > INT32_MAX:
        raise BadRequest(f'option "{key}" must be of type integer')
    return int(number)


def _sampling(target: pb.ChatRequest | pb.GenerateRequest, raw: Any) -> None:
    """``options`` onto the request's fields; the rest passes through in extra."""
    if raw is None:
        return
    if not isinstance(raw, dict):
        raise BadRequest("options must be an object")
    extra: JsonDict = {}
    for key, value in raw.items():
        if value is None:
            continue
        if key == "temperature":
            target.temperature = _number(key, value)
        elif key == "top_p":
            target.top_p = _number(key, value)
        elif key == "num_predict":
            if (limit := _integer(key, value)) > 0:
                target.max_tokens = limit
        elif key == "seed":
            target.seed = _integer(key, value)
        elif key == "stop":
            if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
                raise BadRequest('option "stop" must be of type array of strings')
            target.stop.extend(value)
        elif key in _TYPED_INTS:
            setattr(target.options, key, _integer(key, value))
        elif key in _TYPED_FLOATS:
            setattr(target.options, key, _number(key, value))
        else:
            extra[key] = value
    if extra:
        target.options.extra.update(extra)


def _tool_call(raw: Any, where: str) -> pb.ToolCall:
    if not isinstance(raw, dict) or not isinstance(raw.get("function"), dict):
        raise BadRequest(f'{where} must be {{"function": {{"name", "arguments"}}}}')
    function = raw["function"]
    index = function.get("index")
    if index is not None and (
        isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= INT32_MAX
    ):
        raise BadRequest(f"{where}.function.index must be a whole number from 0")
    return pb.ToolCall(
        id=_string(raw, "id"),
        name=_string(function, "name"),
        arguments=_struct(function.get("arguments") or {}, f"{where}.function.arguments"),
        index=index or 0,
    )


def _message(raw: Any, i: int) -> pb.ChatMessage:
    where = f"messages[{i}]"
    if not isinstance(raw, dict):
        raise BadRequest(f"{where} must be an object")
    calls = raw.get("tool_calls") or []
    if not isinstance(calls, list):
        raise BadRequest(f"{where}.tool_calls must be an array")
    return pb.ChatMessage(
        role=_string(raw, "role"),
        content=_string(raw, "content"),
        thinking=_string(raw, "thinking"),
        images=_images(raw.get("images"), f"{where}.images"),
        tool_calls=[_tool_call(c, f"{where}.tool_calls[{j}]") for j, c in enumerate(calls)],
        tool_call_id=_string(raw, "tool_call_id"),
        tool_name=_string(raw, "tool_name"),
    )


def _tools(raw: Any) -> list[pb.Tool]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise BadRequest("tools must be an array")
    out = []
    for i, tool in enumerate(raw):
        if not isinstance(tool, dict) or not isinstance(tool.get("function"), dict):
            raise BadRequest(f'tools[{i}] must be {{"type": "function", "function": {{...}}}}')
        function = tool["function"]
        parameters = function.get("parameters")
        out.append(
            pb.Tool(
                type=_string(tool, "type"),
                name=_string(function, "name"),
                description=_string(function, "description"),
                parameters=_struct(parameters, f"tools[{i}].function.parameters")
                if parameters is not None
                else None,
            )
        )
    return out


def _common(target: pb.ChatRequest | pb.GenerateRequest, body: JsonDict) -> None:
    target.model_defaults = True
    target.max_tokens_include_reasoning = True  # num_predict counts both, as on Ollama
    target.think = _think(body.get("think"))
    target.keep_alive = _keep_alive(body.get("keep_alive"))
    if _bool(body, "logprobs"):
        target.logprobs = True
        top = body.get("top_logprobs") or 0
        if isinstance(top, bool) or not isinstance(top, int):
            raise BadRequest("top_logprobs must be a whole number")
        target.top_logprobs = top
    _sampling(target, body.get("options"))


F = TypeVar("F", bound=Callable[..., Any])


def _checked(build: F) -> F:
    """A value protobuf cannot hold (a number out of its range, ...) is bad input too."""

    @functools.wraps(build)
    def checked(*args: Any, **kwargs: Any) -> Any:
        try:
            return build(*args, **kwargs)
        except BadRequest:
            raise
        except (ValueError, TypeError) as exc:
            raise BadRequest(f"a value is out of range: {exc}") from None

    return cast(F, checked)


@_checked
def chat_request(body: JsonDict) -> pb.ChatRequest:
    messages = body.get("messages") or []
    if not isinstance(messages, list):
        raise BadRequest("messages must be an array")
    request = pb.ChatRequest(
        model=model_of(body),
        messages=[_message(m, i) for i, m in enumerate(messages)],
        tools=_tools(body.get("tools")),
    )
    fmt = body.get("format")
    if fmt not in (None, ""):
        request.output_format.CopyFrom(_value(fmt, "format"))
    _common(request, body)
    return request


@_checked
def generate_request(body: JsonDict) -> pb.GenerateRequest:
    request = pb.GenerateRequest(
        model=model_of(body),
        prompt=_string(body, "prompt"),
        suffix=_string(body, "suffix"),
        template=_string(body, "template"),
        raw=_bool(body, "raw"),
        images=_images(body.get("images"), "images"),
    )
    if body.get("system") is not None:
        request.system = _string(body, "system")
    context = body.get("context")
    if context is not None:
        if not isinstance(context, list) or not all(
            isinstance(t, int) and not isinstance(t, bool) for t in context
        ):
            raise BadRequest("context must be an array of integers")
        request.context.extend(context)
    fmt = body.get("format")
    if fmt not in (None, ""):
        request.format.CopyFrom(_value(fmt, "format"))
    _common(request, body)
    return request


@_checked
def embed_request(body: JsonDict, legacy: bool) -> pb.EmbedRequest:
    """/api/embed (``input``: a string or strings), or the legacy /api/embeddings
    (``prompt``: one string)."""
    if legacy:
        texts = [_string(body, "prompt")]
    else:
        value = body.get("input")
        if isinstance(value, str):
            texts = [value]
        elif isinstance(value, list) and all(isinstance(t, str) for t in value):
            texts = list(value)
        elif value is None:
            texts = []
        else:
            raise BadRequest("input must be a string or an array of strings")
    request = pb.EmbedRequest(
        model=model_of(body), input=texts, keep_alive=_keep_alive(body.get("keep_alive"))
    )
    if not legacy:
        truncate = body.get("truncate")
        if truncate is not None:
            if not isinstance(truncate, bool):
                raise BadRequest("truncate must be true or false")
            request.truncate = truncate
        dimensions = body.get("dimensions")
        if dimensions is not None:
            if isinstance(dimensions, bool) or not isinstance(dimensions, int):
                raise BadRequest("dimensions must be a whole number")
            request.dimensions = dimensions
    options = body.get("options")
    if options is not None:
        if not isinstance(options, dict):
            raise BadRequest("options must be an object")
        if options:
            request.options.extra.update(options)
    return request
