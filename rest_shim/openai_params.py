"""The OpenAI parameter a server rejection is about, from the request field the server
names as data (the ``llm-error-field`` trailer: a path in the ``llm.v1`` request, like
``messages[2].tool_calls`` or ``request.options.presence_penalty`` on a stream), never
from the message's text.

The OpenAI routes fill the contract's fields from their own parameters
(``rest_shim.openai_chat``, ``rest_shim.openai_mapping``); this is that mapping read
backwards. ``messages`` and ``tools`` go item for item into the contract's lists of the
same name, so the item's index is kept (``messages[2]``); deeper parts of the path are
shaped differently in OpenAI's JSON and are left out.
"""

from __future__ import annotations

import re

# The contract's top-level request field -> the OpenAI parameter it comes from.
_PARAMS = {
    "model": "model",
    "messages": "messages",
    "message": "messages",
    "history": "messages",
    "system": "messages",
    "images": "messages",
    "tools": "tools",
    "tool_choice": "tool_choice",
    "output_format": "response_format",
    "format": "response_format",
    "top_logprobs": "top_logprobs",
    "temperature": "temperature",
    "top_p": "top_p",
    "stop": "stop",
    "seed": "seed",
    "think": "reasoning_effort",
    "input": "input",
}
# Lists OpenAI sends item for item as the contract holds them.
_LISTS = frozenset({"messages", "tools"})
# Model options OpenAI has as parameters of their own (``options.presence_penalty``).
_OPTIONS = frozenset({"presence_penalty", "frequency_penalty"})
# The first segment of a field path: a name and an optional index.
_HEAD = re.compile(r"([a-z_]+)(\[\d+\])?")
# The field of ChatStreamRequest that holds the ChatRequest.
_STREAM_WRAPPER = "request."


def openai_param(code: str, field: str, max_tokens_param: str = "max_tokens") -> str | None:
    """The OpenAI parameter for a failed RPC's code and field (``None`` when there is
    none); ``max_tokens_param`` is the name the caller gave the token limit."""
    if code == "model_not_found":
        return "model"
    path = field.removeprefix(_STREAM_WRAPPER)
    head = _HEAD.match(path)
    if head is None:
        return None
    name, index = head.group(1), head.group(2) or ""
    if name == "max_tokens":
        return max_tokens_param
    if name == "options":
        option = path[head.end() :].removeprefix(".")
        return option if option in _OPTIONS else None
    param = _PARAMS.get(name)
    if param is None:
        return None
    return param + index if name in _LISTS else param
