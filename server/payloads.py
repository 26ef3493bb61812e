"""The Ollama request bodies built from valid ``llm.v1`` requests (/api/chat,
/api/generate, /api/embed), every rejection an ``InvalidArgument`` naming the field.

A chat is given either as ``system`` + ``history`` + ``message`` (the seed's shape) or
as the whole conversation in ``messages`` (turns that end with a tool's answer, carry
images or tool calls). Images travel as bytes in the contract and as bare base64 to
Ollama. Tools become Ollama's ``{"type": "function", "function": {...}}``;
``tool_choice`` narrows them, as far as Ollama can be told: "none" sends none, a name
sends that tool only, "required" sends them all (Ollama has no way to force a call).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from typing import Any

from generated.llm.v1 import llm_service_pb2 as pb
from server.config import Settings
from server.errors import InvalidArgument, quoted
from server.model_options import options
from server.validation import (
    ROLES,
    bounded_plain,
    keep_alive_policy,
    model_name,
    sampling,
    text_format,
    think,
    value_format,
)

JsonObject = dict[str, Any]
# Function names as OpenAI and Ollama's templates accept them.
_TOOL_NAME = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
MAX_TOOLS = 128
MAX_IMAGES = 16


def chat_payload(req: pb.ChatRequest, settings: Settings) -> JsonObject:
    """The /api/chat body for ``req``."""
    model = model_name(req.model, settings.default_model)
    messages = _conversation(req, settings)
    payload: JsonObject = {"model": model, "messages": messages}
    payload["options"] = {**options(req.options), **sampling(req, settings)}
    tools = _tools(req.tools, req.tool_choice)
    if tools:
        payload["tools"] = tools
    _common(payload, req, settings)
    return payload


def generate_payload(req: pb.GenerateRequest, settings: Settings) -> JsonObject:
    """The /api/generate body for ``req``; an empty prompt only loads the model."""
    limit = settings.max_message_chars
    for name in ("prompt", "suffix", "system", "template"):
        text = getattr(req, name)
        if len(text) > limit:
            raise InvalidArgument(
                f"{name} is {len(text)} characters long; at most {limit} are accepted", field=name
            )
    payload: JsonObject = {"model": model_name(req.model, settings.default_model)}
    payload["prompt"] = req.prompt
    if req.HasField("system"):
        payload["system"] = req.system
    for name in ("suffix", "template"):
        if getattr(req, name):
            payload[name] = getattr(req, name)
    if req.raw:
        payload["raw"] = True
    if req.images:
        payload["images"] = _images(req.images, "images")
    if req.context:
        payload["context"] = list(req.context)
    payload["options"] = {**options(req.options), **sampling(req, settings)}
    _common(payload, req, settings)
    return payload


def embed_payload(req: pb.EmbedRequest, settings: Settings) -> JsonObject:
    if not req.input:
        raise InvalidArgument("input must hold at least one text", field="input")
    if len(req.input) > settings.max_embed_inputs:
        raise InvalidArgument(
            f"input holds {len(req.input)} texts; at most {settings.max_embed_inputs} are accepted",
            field="input",
        )
    for i, text in enumerate(req.input):
        if not text.strip():
            raise InvalidArgument(f"input[{i}] must not be empty", field=f"input[{i}]")
        if len(text) > settings.max_message_chars:
            raise InvalidArgument(
                f"input[{i}] is {len(text)} characters long; "
                f"at most {settings.max_message_chars} are accepted",
                field=f"input[{i}]",
            )
    payload: JsonObject = {
        "model": model_name(req.model, settings.embedding_model),
        "input": list(req.input),
    }
    if req.HasField("truncate"):
        payload["truncate"] = req.truncate
    if req.HasField("dimensions"):
        if req.dimensions <= 0:
            raise InvalidArgument(
                f"dimensions must be above 0, got {req.dimensions}", field="dimensions"
            )
        payload["dimensions"] = req.dimensions
    extra = options(req.options)
    if extra:
        payload["options"] = extra
    alive = keep_alive_policy(req.keep_alive, settings)
    if alive is not None:
        payload["keep_alive"] = alive
    return payload


def _common(
    payload: JsonObject, req: pb.ChatRequest | pb.GenerateRequest, settings: Settings
) -> None:
    """Format, think, keep_alive and logprobs, alike on chat and generate. A chat's
    structured format is ``output_format`` (its ``format`` is the older text form)."""
    if isinstance(req, pb.ChatRequest):
        if req.HasField("output_format"):
            payload["format"] = value_format(req.output_format, "output_format")
        else:
            legacy = text_format(req.format)
            if legacy is not None:
                payload["format"] = legacy
    elif req.HasField("format"):
        payload["format"] = value_format(req.format, "format")
    reasoning = think(req.think)
    if reasoning is not None:
        payload["think"] = reasoning
    alive = keep_alive_policy(req.keep_alive, settings)
    if alive is not None:
        payload["keep_alive"] = alive
    if req.logprobs:
        if not 0 <= req.top_logprobs <= 20:
            raise InvalidArgument(
                f"top_logprobs must be from 0 to 20, got {req.top_logprobs}", field="top_logprobs"
            )
        payload["logprobs"] = True
        if req.top_logprobs:
            payload["top_logprobs"] = req.top_logprobs


def _conversation(req: pb.ChatRequest, settings: Settings) -> list[JsonObject]:
    limit = settings.max_message_chars
    if req.messages:
        if req.message or req.history:
            raise InvalidArgument(
                "give either messages, or history and message, not both", field="messages"
            )
        turns = list(req.messages)
        where = "messages"
    else:
        if not req.message.strip():
            raise InvalidArgument("message must not be empty", field="message")
        if len(req.message) > limit:
            raise InvalidArgument(
                f"message is {len(req.message)} characters long; at most {limit} are accepted",
                field="message",
            )
        turns = list(req.history)
        where = "history"
    if len(turns) > settings.max_history:
        raise InvalidArgument(
            f"{where} has {len(turns)} turns; at most {settings.max_history} are accepted",
            field=where,
        )
    total = len(req.system) + sum(len(t.content) + len(t.thinking) for t in turns)
    if total > limit * 4:
        raise InvalidArgument(
            f"system prompt and {where} hold {total} characters; at most {limit * 4} are accepted",
            field=where,
        )
    messages: list[JsonObject] = []
    if req.HasField("system") and req.system:
        messages.append({"role": "system", "content": req.system})
    names: dict[str, str] = {}  # tool call id -> tool name, for the answers that follow
    messages += [_turn(turn, f"{where}[{i}]", names) for i, turn in enumerate(turns)]
    if not req.messages:
        last: JsonObject = {"role": "user", "content": req.message}
        if req.images:
            last["images"] = _images(req.images, "images")
        messages.append(last)
    elif req.images:
        raise InvalidArgument(
            "images go on the turns of messages when messages is given", field="images"
        )
    return messages


def image_field(req: pb.ChatRequest) -> str:
    """The field of a chat's first images (what a model without vision is refused for)."""
    if req.images:
        return "images"
    where = "messages" if req.messages else "history"
    turns = req.messages or req.history
    return next((f"{where}[{i}].images" for i, t in enumerate(turns) if t.images), "images")


def _turn(turn: pb.ChatMessage, where: str, names: dict[str, str]) -> JsonObject:
    role = turn.role.strip().lower()
    if role not in ROLES:
        raise InvalidArgument(
            f"{where}.role must be one of {', '.join(ROLES)}, got {quoted(turn.role)}",
            field=f"{where}.role",
        )
    entry: JsonObject = {"role": role, "content": turn.content}
    if turn.thinking:
        entry["thinking"] = turn.thinking
    if turn.images:
        entry["images"] = _images(turn.images, f"{where}.images")
    if turn.tool_calls:
        if role != "assistant":
            raise InvalidArgument(
                f"{where}.tool_calls belong on an assistant turn", field=f"{where}.tool_calls"
            )
        entry["tool_calls"] = [
            _call(c, f"{where}.tool_calls[{j}]", names) for j, c in enumerate(turn.tool_calls)
        ]
    if role == "tool":
        name = turn.tool_name or names.get(turn.tool_call_id, "")
        if name:
            entry["tool_name"] = name
        if turn.tool_call_id:
            entry["tool_call_id"] = turn.tool_call_id
    return entry


def _call(call: pb.ToolCall, where: str, names: dict[str, str]) -> JsonObject:
    if not _TOOL_NAME.fullmatch(call.name):
        raise InvalidArgument(
            f"{where}.name must be a function name, got {quoted(call.name)}", field=f"{where}.name"
        )
    arguments = bounded_plain(call.arguments, f"{where}.arguments")
    function: JsonObject = {"name": call.name, "arguments": arguments}
    if call.index:
        function["index"] = call.index
    entry: JsonObject = {"function": function}
    if call.id:
        entry["id"] = call.id
        names[call.id] = call.name
    return entry


def _tools(tools: Sequence[pb.Tool], choice: str) -> list[JsonObject]:
    if len(tools) > MAX_TOOLS:
        raise InvalidArgument(
            f"tools holds {len(tools)} functions; at most {MAX_TOOLS}", field="tools"
        )
    out: list[JsonObject] = []
    for i, tool in enumerate(tools):
        if tool.type not in ("", "function"):
            raise InvalidArgument(
                f'tools[{i}].type must be "function", got {quoted(tool.type)}',
                field=f"tools[{i}].type",
            )
        if not _TOOL_NAME.fullmatch(tool.name):
            raise InvalidArgument(
                f"tools[{i}].name must be 1 to 64 letters, digits, _ . : or -, "
                f"got {quoted(tool.name)}",
                field=f"tools[{i}].name",
            )
        function: JsonObject = {"name": tool.name}
        if tool.description:
            function["description"] = tool.description
        parameters = (
            bounded_plain(tool.parameters, f"tools[{i}].parameters")
            if tool.HasField("parameters")
            else {}
        )
        function["parameters"] = parameters or {"type": "object", "properties": {}}
        out.append({"type": "function", "function": function})
    wanted = choice.strip()
    if wanted in ("", "auto", "required"):
        return out
    if wanted == "none":
        return []
    named = [t for t in out if t["function"]["name"] == wanted]
    if not named:
        raise InvalidArgument(
            f"tool_choice must be auto, none, required or the name of a tool, got {quoted(choice)}",
            field="tool_choice",
        )
    return named


def _images(images: Sequence[bytes], where: str) -> list[str]:
    if len(images) > MAX_IMAGES:
        raise InvalidArgument(
            f"{where} holds {len(images)} images; at most {MAX_IMAGES}", field=where
        )
    for i, image in enumerate(images):
        if not image:
            raise InvalidArgument(f"{where}[{i}] is empty", field=f"{where}[{i}]")
    return [base64.b64encode(image).decode("ascii") for image in images]
