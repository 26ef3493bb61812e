"""OpenAI chat completions -> ``ChatRequest`` (answers: ``rest_shim.openai_answers``).

Mapping decisions:

* ``messages`` become the request's whole conversation (``ChatRequest.messages``), in
  order; ``developer`` is ``system``. The last message comes from the user or from a
  tool. An assistant's ``reasoning_content`` goes back to the model as ``thinking``,
  its ``tool_calls`` (arguments as JSON text) as tool calls; a ``tool`` message answers
  the call ``tool_call_id`` names.
* content given as parts: ``text`` parts joined with newlines, ``image_url`` parts as
  images: a ``data:`` URL is decoded (Ollama wants bare base64); an ``http(s)`` URL is
  refused unless LLM_IMAGE_URL_HOSTS names its host (fetching arbitrary URLs from
  inside the network is a request-forgery hole), and then fetched by the route.
* ``tools`` and ``tool_choice`` (auto, none, required, or a named function) as the
  contract has them. ``max_completion_tokens`` wins over ``max_tokens``.
* ``response_format``: ``json_object`` -> format "json", ``json_schema`` -> its schema
  (as data), ``text`` -> no format. ``reasoning_effort`` -> ``think``. ``logprobs``,
  ``top_logprobs``, ``presence_penalty`` and ``frequency_penalty`` map as they are.
* ``n`` above 1 is refused: answering once would not be what the caller asked for.
  Other OpenAI fields without a counterpart (``user``, ``metadata``...) are ignored.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import struct_pb2

from generated.llm.v1 import llm_service_pb2 as pb
from rest_shim.openai_mapping import (
    JsonDict,
    RequestError,
    missing,
    opt_bool,
    opt_int,
    opt_number,
    opt_str,
    wrong_type,
)
from server.errors import quoted

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
# OpenAI role -> the role the turn goes to Ollama with.
ROLES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
}
REASONING_EFFORTS = ("low", "medium", "high")


@dataclass(frozen=True)
class ImageUrl:
    """An http(s) image of a turn, for the route to fetch (when its host is allowed)."""

    turn: int
    url: str
    param: str


@dataclass(frozen=True)
class ChatCompletionRequest:
    rpc: pb.ChatRequest
    stream: bool
    include_usage: bool
    # The name the caller gave the token limit, to name it back in errors.
    max_tokens_param: str
    image_urls: list[ImageUrl] = field(default_factory=list)


# --- chat request -------------------------------------------------------------------


def _image(part: JsonDict, where: str, turn: int, urls: list[ImageUrl]) -> bytes | None:
    """A data: URL's bytes, or None for an http(s) URL left to fetch."""
    spec = part.get("image_url")
    url = spec.get("url") if isinstance(spec, dict) else spec
    if not isinstance(url, str):
        raise wrong_type(f"{where}.image_url.url", "a data: or https: URL")
    if url.startswith("data:"):
        head, sep, data = url.partition(",")
        if not sep or not head.endswith(";base64"):
            raise RequestError(f"{where}.image_url.url", "a data: URL must be base64 encoded")
        try:
            return base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise RequestError(f"{where}.image_url.url", "is not valid base64") from None
    if url.startswith(("http://", "https://")):
        urls.append(ImageUrl(turn, url, f"{where}.image_url.url"))
        return None
    raise RequestError(f"{where}.image_url.url", "must be a data: or http(s): URL")


def _content(
    value: Any, param: str, nullable: bool, turn: pb.ChatMessage, index: int, urls: list[ImageUrl]
) -> str:
    """A message's content: a string, or text parts joined with newlines (and images)."""
    if isinstance(value, str):
        return value
    if value is None:
        if nullable:
            return ""
        raise missing(param)
    if not isinstance(value, list):
        raise wrong_type(param, "a string or an array of content parts")
    texts: list[str] = []
    for j, part in enumerate(value):
        where = f"{param}[{j}]"
        if not isinstance(part, dict):
            raise wrong_type(where, 'an object {"type": "text", "text": "..."}')
        kind = part.get("type")
        if kind == "image_url":
            image = _image(part, where, index, urls)
            if image is not None:
                turn.images.append(image)
            continue
        if kind != "text":
            raise RequestError(f"{where}.type", f"must be text or image_url, got {quoted(kind)}")
        text = part.get("text")
        if not isinstance(text, str):
            raise wrong_type(f"{where}.text", "a string")
        texts.append(text)
    return "\n".join(texts)


def _arguments(raw: Any, where: str) -> struct_pb2.Struct:
    """A tool call's arguments: JSON text (OpenAI's) or an object."""
    value = raw
    if isinstance(raw, str):
        try:
            value = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise RequestError(where, "must be a JSON object as text") from None
    if not isinstance(value, dict):
        raise wrong_type(where, "a JSON object as text")
    out = struct_pb2.Struct()
    out.update(value)
    return out


def _calls(raw: Any, where: str) -> list[pb.ToolCall]:
    if not isinstance(raw, list):
        raise wrong_type(where, "an array of tool calls")
    calls = []
    for j, call in enumerate(raw):
        at = f"{where}[{j}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise wrong_type(at, '{"id", "type": "function", "function": {"name", "arguments"}}')
        call_id = call.get("id")
        calls.append(
            pb.ToolCall(
                id=call_id if isinstance(call_id, str) else "",
                name=function["name"],
                arguments=_arguments(function.get("arguments"), f"{at}.function.arguments"),
                index=j,
            )
        )
    return calls


def _turn(index: int, raw: Any, urls: list[ImageUrl]) -> pb.ChatMessage:
    where = f"messages[{index}]"
    if not isinstance(raw, dict):
        raise wrong_type(where, "an object with role and content")
    role = raw.get("role")
    if role is None:
        raise missing(f"{where}.role")
    if not isinstance(role, str) or role not in ROLES:
        raise RequestError(
            f"{where}.role", f"must be one of {', '.join(ROLES)}, got {quoted(role)}"
        )
    turn = pb.ChatMessage(role=ROLES[role])
    turn.content = _content(
        raw.get("content"), f"{where}.content", role != "user", turn, index, urls
    )
    if raw.get("tool_calls"):
        if role != "assistant":
            raise RequestError(f"{where}.tool_calls", "only assistant messages make tool calls")
        turn.tool_calls.extend(_calls(raw["tool_calls"], f"{where}.tool_calls"))
    if role == "tool":
        call_id = raw.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise missing(f"{where}.tool_call_id")
        turn.tool_call_id = call_id
        name = raw.get("name")
        if isinstance(name, str):
            turn.tool_name = name
    thinking = raw.get("reasoning_content")
    if role == "assistant" and isinstance(thinking, str):
        turn.thinking = thinking
    return turn


def _conversation(raw: Any, rpc: pb.ChatRequest, urls: list[ImageUrl]) -> None:
    if raw is None:
        raise missing("messages")
    if not isinstance(raw, list):
        raise wrong_type("messages", "an array of messages")
    if not raw:
        raise RequestError("messages", "must hold at least one message", "empty_array")
    turns = [_turn(i, m, urls) for i, m in enumerate(raw)]
    if turns[-1].role not in ("user", "tool"):
        raise RequestError(
            f"messages[{len(turns) - 1}].role",
            "the last message must come from the user or a tool",
        )
    rpc.messages.extend(turns)


def _tools(raw: Any, choice: Any, rpc: pb.ChatRequest) -> None:
    if raw is not None:
        if not isinstance(raw, list):
            raise wrong_type("tools", "an array of tools")
        for i, tool in enumerate(raw):
            function = tool.get("function") if isinstance(tool, dict) else None
            if not isinstance(function, dict):
                raise wrong_type(f"tools[{i}]", '{"type": "function", "function": {...}}')
            parameters = function.get("parameters")
            if parameters is not None and not isinstance(parameters, dict):
                raise wrong_type(f"tools[{i}].function.parameters", "a JSON schema object")
            entry = pb.Tool(
                type=str(tool.get("type") or "function"),
                name=str(function.get("name") or ""),
                description=str(function.get("description") or ""),
            )
            if parameters is not None:
                entry.parameters.update(parameters)
            rpc.tools.append(entry)
    if choice is None:
        return
    if isinstance(choice, str):
        rpc.tool_choice = choice
        return
    function = choice.get("function") if isinstance(choice, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise wrong_type(
            "tool_choice", '"auto", "none", "required" or {"type": "function", "function": {...}}'
        )
    rpc.tool_choice = function["name"]


def _response_format(raw: Any, rpc: pb.ChatRequest) -> None:
    """Ollama's ``format``: "json", or a JSON schema (as data); nothing for plain text."""
    if raw is None:
        return
    if not isinstance(raw, dict):
        raise wrong_type("response_format", 'an object with a "type"')
    kind = raw.get("type")
    if kind == "text":
        return
    if kind == "json_object":
        rpc.output_format.string_value = "json"
        return
    if kind == "json_schema":
        spec = raw.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise missing("response_format.json_schema.schema")
        rpc.output_format.struct_value.update(schema)
        return
    raise RequestError(
        "response_format.type", f"must be text, json_object or json_schema, got {quoted(kind)}"
    )


def _stop(raw: Any) -> list[str]:
    if raw is None:
        return []
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and all(isinstance(s, str) for s in raw):
        return raw
    raise wrong_type("stop", "a string or an array of strings")


def chat_completion_request(body: JsonDict) -> ChatCompletionRequest:
    """The ChatRequest for an OpenAI chat completion body, and how to answer it."""
    rpc = pb.ChatRequest(model=opt_str(body, "model") or "")
    urls: list[ImageUrl] = []
    _conversation(body.get("messages"), rpc, urls)
    for key in ("temperature", "top_p"):
        number = opt_number(body, key)
        if number is not None:
            setattr(rpc, key, number)
    for key in ("presence_penalty", "frequency_penalty"):
        number = opt_number(body, key)
        if number is not None:
            setattr(rpc.options, key, number)
    max_tokens_param = "max_tokens"
    for key in ("max_tokens", "max_completion_tokens"):
        limit = opt_int(body, key, INT32_MAX)
        if limit is not None:
            rpc.max_tokens, max_tokens_param = limit, key
    rpc.stop.extend(_stop(body.get("stop")))
    seed = opt_int(body, "seed", INT64_MAX)
    if seed is not None:
        rpc.seed = seed
    _response_format(body.get("response_format"), rpc)
    effort = opt_str(body, "reasoning_effort")
    if effort is not None:
        if effort not in REASONING_EFFORTS:
            raise RequestError(
                "reasoning_effort", f"must be low, medium or high, got {quoted(effort)}"
            )
        rpc.think = effort
    n = opt_int(body, "n", INT32_MAX)
    if n is not None and n != 1:
        raise RequestError("n", f"only one choice is supported, got {n}")
    _tools(body.get("tools"), body.get("tool_choice"), rpc)
    if opt_bool(body, "logprobs"):
        rpc.logprobs = True
        rpc.top_logprobs = opt_int(body, "top_logprobs", 20) or 0
    options = body.get("stream_options") or {}
    include_usage = options.get("include_usage") if isinstance(options, dict) else None
    if not isinstance(options, dict) or not isinstance(include_usage, bool | None):
        raise wrong_type("stream_options", 'an object like {"include_usage": true}')
    return ChatCompletionRequest(
        rpc=rpc,
        stream=bool(opt_bool(body, "stream")),
        include_usage=bool(include_usage),
        max_tokens_param=max_tokens_param,
        image_urls=urls,
    )
