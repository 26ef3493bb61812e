"""Which tool the emulated model calls, and with what: ``tool_call(tools, prompt)``.

Rules, for a chat request with ``tools`` whose last message comes from the user
(a last message from a tool is answered with "Echo: " + its content instead, see
``content``):

* The model calls one function: the first whose name occurs in the prompt, else
  the first of the list.
* Its arguments hold each required property of the function's ``parameters`` (every
  listed property when the parameters have no ``required`` list), in the order the
  properties are listed, each value built by ``structured.schema_instance`` from the
  property's schema and the prompt: strings are the prompt, integers its word count,
  booleans true, enums their first value, and so on; ``$ref`` pointers resolve in
  the parameters (pydantic's ``$defs``).
* The call is ``{"id": tool_call_id(name, prompt), "function": {"index": 0, "name":
  name, "arguments": {...}}}``, as Ollama's api.ToolCall marshals (``id`` is
  "call_" and 8 lowercase letters or digits; Ollama draws them at random, the
  emulator derives them from the name and prompt).
* The call costs as many generated tokens as ``content.tokenize`` finds in
  ``call_text(call)``: ``json.dumps({"name": name, "arguments": arguments})``.
"""

from __future__ import annotations

import hashlib
import json
import string
from collections.abc import Mapping, Sequence
from typing import Any

from ollama_emulator.structured import schema_instance

_ID_ALPHABET = string.ascii_lowercase + string.digits


def tool_call_id(name: str, prompt: str) -> str:
    digest = hashlib.sha256(f"{name}\0{prompt}".encode()).digest()
    return "call_" + "".join(_ID_ALPHABET[b % len(_ID_ALPHABET)] for b in digest[:8])


def _functions(tools: Sequence[Any]) -> list[Mapping[str, Any]]:
    return [
        tool["function"]
        for tool in tools
        if isinstance(tool, Mapping) and isinstance(tool.get("function"), Mapping)
    ]


def chosen_function(tools: Sequence[Any], prompt: str) -> Mapping[str, Any] | None:
    """The function the model calls (see the module docstring); None without any."""
    functions = _functions(tools)
    named = [f for f in functions if isinstance(f.get("name"), str) and f["name"]]
    return next((f for f in named if f["name"] in prompt), functions[0] if functions else None)


def tool_arguments(function: Mapping[str, Any], prompt: str) -> dict[str, Any]:
    parameters = function.get("parameters")
    if not isinstance(parameters, Mapping):
        return {}
    properties = parameters.get("properties")
    if not isinstance(properties, Mapping):
        return {}
    required = parameters.get("required")
    names = [n for n in properties if not isinstance(required, list) or n in required]
    return {n: schema_instance(properties[n], prompt, root=parameters) for n in names}


def tool_call(tools: Sequence[Any], prompt: str) -> dict[str, Any] | None:
    """The call the model makes to one of ``tools`` (None when there is no function)."""
    function = chosen_function(tools, prompt)
    if function is None:
        return None
    raw_name = function.get("name")
    name = raw_name if isinstance(raw_name, str) else ""
    return {
        "id": tool_call_id(name, prompt),
        "function": {"index": 0, "name": name, "arguments": tool_arguments(function, prompt)},
    }


def call_text(call: Mapping[str, Any]) -> str:
    """The text a model generates for ``call`` (its tokens count in eval_count)."""
    function = call["function"]
    return json.dumps({"name": function["name"], "arguments": function["arguments"]})
