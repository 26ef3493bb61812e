"""Body fields of /api/chat and /api/generate beyond the plain ones in ``validation``.

As with ``validation``, wrong JSON types answer 400 with texts close to Go's decoder
messages; images are decoded as Go decodes ``[]byte`` (see ``images``). Messages are
returned as sent, with their role lower-cased (api.Message does that on decoding) and
their images as bytes.
Ollama answers ``top_logprobs`` outside 0..20 with 400 "top_logprobs must be between
0 and 20" before anything else is checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ollama_emulator.images import CorruptBase64Error, decode_image
from ollama_emulator.logprobs import MAX_TOP_LOGPROBS
from ollama_emulator.validation import ApiError, get_bool, get_int, type_error

_MESSAGE_STRINGS = ("role", "content", "thinking", "tool_name", "tool_call_id")


def get_images(value: Any, struct: str, field: str) -> list[bytes]:
    """The images' bytes (null ones dropped), each base64 string decoded like Go's decoder."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise type_error(value, struct, field, "[]api.ImageData")
    images: list[bytes] = []
    for item in value:
        if item is None:
            continue
        if not isinstance(item, str):
            raise type_error(item, struct, field, "api.ImageData")
        try:
            images.append(decode_image(item))
        except CorruptBase64Error as exc:
            raise ApiError(400, str(exc)) from None
    return images


def _check_tool_calls(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        raise type_error(value, "Message", "messages.tool_calls", "[]api.ToolCall")
    for call in value:
        if call is None:
            continue
        if not isinstance(call, Mapping):
            raise type_error(call, "Message", "messages.tool_calls", "api.ToolCall")
        function = call.get("function")
        if function is not None and not isinstance(function, Mapping):
            raise type_error(
                function, "Message", "messages.tool_calls.function", "api.ToolCallFunction"
            )
        arguments = (function or {}).get("arguments")
        if arguments is not None and not isinstance(arguments, Mapping):
            raise type_error(
                arguments,
                "Message",
                "messages.tool_calls.function.arguments",
                "api.ToolCallFunctionArguments",
            )


def get_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    value = body.get("messages")
    if value is None:
        return []
    if not isinstance(value, list):
        raise type_error(value, "ChatRequest", "messages", "[]api.Message")
    messages: list[dict[str, Any]] = []
    for item in value:
        if item is not None and not isinstance(item, dict):
            raise type_error(item, "ChatRequest", "messages", "api.Message")
        message = dict(item or {})
        for key in _MESSAGE_STRINGS:
            field = message.get(key)
            if field is not None and not isinstance(field, str):
                raise type_error(field, "Message", f"messages.{key}", "string")
        images = get_images(message.get("images"), "Message", "messages.images")
        if images:
            message["images"] = images
        _check_tool_calls(message.get("tool_calls"))
        message["role"] = str(message.get("role") or "").lower()
        messages.append(message)
    return messages


def get_tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    value = body.get("tools")
    if value is None:
        return []
    if not isinstance(value, list):
        raise type_error(value, "ChatRequest", "tools", "api.Tools")
    for tool in value:
        if tool is not None and not isinstance(tool, dict):
            raise type_error(tool, "ChatRequest", "tools", "api.Tool")
        function = (tool or {}).get("function")
        if function is not None and not isinstance(function, dict):
            raise type_error(function, "ChatRequest", "tools.function", "api.ToolFunction")
    return [tool for tool in value if tool is not None]


def get_logprobs(body: dict[str, Any], struct: str) -> int | None:
    """The ``top_logprobs`` count when ``logprobs`` is true, else None (checked first)."""
    wanted = get_bool(body, "logprobs", struct)
    top = get_int(body, "top_logprobs", struct)
    if not 0 <= top <= MAX_TOP_LOGPROBS:
        raise ApiError(400, f"top_logprobs must be between 0 and {MAX_TOP_LOGPROBS}")
    return top if wanted else None
