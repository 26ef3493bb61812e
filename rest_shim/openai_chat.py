"""OpenAI chat completions <-> ``ChatRequest`` / ``ChatResponse`` / ``ChatStreamResponse``.

Mapping decisions:

* ``messages``: a ``system`` (or ``developer``) message at index 0 becomes ``system``;
  the last message must come from the user and becomes ``message``; everything in
  between goes to ``history`` in order (later system messages keep their place there).
  An assistant's ``reasoning_content`` goes back to the model as ``thinking``.
* content given as parts: only ``{"type": "text"}`` parts, joined with newlines.
* ``max_completion_tokens`` wins over the older ``max_tokens`` when both are given.
* ``response_format``: ``json_object`` -> format "json", ``json_schema`` -> its schema
  as JSON text, ``text`` -> no format. ``reasoning_effort`` -> ``think``.
* ``n`` above 1 and non-empty ``tools`` are refused: silently answering once, or
  without tools, would not be what the caller asked for. Other OpenAI fields that
  have no counterpart (penalties, ``logprobs``, ``user``...) are ignored.
* ``finish_reason`` is "length" when Ollama's done_reason is, else "stop".
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

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
class ChatCompletionRequest:
    rpc: pb.ChatRequest
    stream: bool
    include_usage: bool
    # The name the caller gave the token limit, to name it back in errors.
    max_tokens_param: str


# --- chat request -------------------------------------------------------------------


def _content(value: Any, param: str, nullable: bool) -> str:
    """A message's content: a string, or a list of text parts joined with newlines."""
    if isinstance(value, str):
        return value
    if value is None:
        if nullable:
            return ""
        raise missing(param)
    if not isinstance(value, list):
        raise wrong_type(param, "a string or an array of text parts")
    texts: list[str] = []
    for j, part in enumerate(value):
        where = f"{param}[{j}]"
        if not isinstance(part, dict):
            raise wrong_type(where, 'an object {"type": "text", "text": "..."}')
        if part.get("type") != "text":
            raise RequestError(
                f"{where}.type", f"only text parts are supported, got {quoted(part.get('type'))}"
            )
        text = part.get("text")
        if not isinstance(text, str):
            raise wrong_type(f"{where}.text", "a string")
        texts.append(text)
    return "\n".join(texts)


def _turn(index: int, raw: Any) -> pb.ChatMessage:
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
    if raw.get("tool_calls"):
        raise RequestError(f"{where}.tool_calls", "tool calls are not supported")
    turn = pb.ChatMessage(
        role=ROLES[role], content=_content(raw.get("content"), f"{where}.content", role != "user")
    )
    thinking = raw.get("reasoning_content")
    if role == "assistant" and isinstance(thinking, str):
        turn.thinking = thinking
    return turn


def _conversation(raw: Any, rpc: pb.ChatRequest) -> None:
    if raw is None:
        raise missing("messages")
    if not isinstance(raw, list):
        raise wrong_type("messages", "an array of messages")
    if not raw:
        raise RequestError("messages", "must hold at least one message", "empty_array")
    turns = [_turn(i, m) for i, m in enumerate(raw)]
    if turns[-1].role != "user":
        raise RequestError(
            f"messages[{len(turns) - 1}].role", "the last message must come from the user"
        )
    if turns[0].role == "system":
        rpc.system = turns.pop(0).content
    rpc.message = turns.pop().content
    rpc.history.extend(turns)


def _response_format(raw: Any) -> str:
    """Ollama's ``format``: "json", a JSON schema as JSON text, or "" for plain text."""
    if raw is None:
        return ""
    if not isinstance(raw, dict):
        raise wrong_type("response_format", 'an object with a "type"')
    kind = raw.get("type")
    if kind == "text":
        return ""
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        spec = raw.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise missing("response_format.json_schema.schema")
        return json.dumps(schema)
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
    _conversation(body.get("messages"), rpc)
    for key in ("temperature", "top_p"):
        number = opt_number(body, key)
        if number is not None:
            setattr(rpc, key, number)
    max_tokens_param = "max_tokens"
    for key in ("max_tokens", "max_completion_tokens"):
        limit = opt_int(body, key, INT32_MAX)
        if limit is not None:
            rpc.max_tokens, max_tokens_param = limit, key
    rpc.stop.extend(_stop(body.get("stop")))
    seed = opt_int(body, "seed", INT64_MAX)
    if seed is not None:
        rpc.seed = seed
    rpc.format = _response_format(body.get("response_format"))
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
    if body.get("tools"):
        raise RequestError("tools", "tools are not supported")
    options = body.get("stream_options") or {}
    include_usage = options.get("include_usage") if isinstance(options, dict) else None
    if not isinstance(options, dict) or not isinstance(include_usage, bool | None):
        raise wrong_type("stream_options", 'an object like {"include_usage": true}')
    return ChatCompletionRequest(
        rpc=rpc,
        stream=bool(opt_bool(body, "stream")),
        include_usage=bool(include_usage),
        max_tokens_param=max_tokens_param,
    )


# --- chat answers -------------------------------------------------------------------


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def finish_reason(done_reason: str) -> str:
    return "length" if done_reason == "length" else "stop"


def usage(prompt_tokens: int, completion_tokens: int) -> JsonDict:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chat_completion(reply: pb.ChatResponse, model: str) -> JsonDict:
    message: JsonDict = {"role": "assistant", "content": reply.response}
    if reply.thinking:
        message["reasoning_content"] = reply.thinking
    return {
        "id": completion_id(),
        "object": "chat.completion",
        "created": reply.timestamp.seconds or int(time.time()),
        "model": reply.model or model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason(reply.done_reason),
            }
        ],
        "usage": usage(reply.prompt_tokens, reply.response_tokens),
    }


@dataclass(frozen=True)
class ChunkFactory:
    """The ``chat.completion.chunk`` objects of one streamed answer (same id, created)."""

    model: str
    include_usage: bool
    id: str
    created: int

    @classmethod
    def start(cls, model: str, include_usage: bool) -> ChunkFactory:
        return cls(model, include_usage, completion_id(), int(time.time()))

    def chunk(self, choices: list[JsonDict], usage: JsonDict | None = None) -> JsonDict:
        data: JsonDict = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": choices,
        }
        if self.include_usage:  # OpenAI sends "usage": null on every chunk but the last
            data["usage"] = usage
        return data

    def delta(self, delta: JsonDict, finish: str | None = None) -> JsonDict:
        return self.chunk([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}])

    def event(self, event: pb.ChatStreamResponse) -> JsonDict:
        """The chunk for one content/thinking delta of the ChatStream."""
        delta: JsonDict = {}
        if event.thinking:
            delta["reasoning_content"] = event.thinking
        if event.content:
            delta["content"] = event.content
        return self.delta(delta)

    def final(self, event: pb.ChatStreamResponse) -> list[JsonDict]:
        """The chunk with ``finish_reason``, then the usage chunk when asked for."""
        chunks = [self.delta({}, finish_reason(event.done_reason))]
        if self.include_usage:
            chunks.append(self.chunk([], usage(event.prompt_tokens, event.response_tokens)))
        return chunks
