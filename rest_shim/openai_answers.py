"""``ChatResponse`` / ``ChatStreamResponse`` as OpenAI chat completions and chunks.

* A tool call is ``{"id", "type": "function", "function": {"name", "arguments"}}`` with
  the arguments as JSON text, as OpenAI sends them; an answer that calls tools has
  ``content: null`` when it says nothing else, and ``finish_reason: "tool_calls"``.
* Streamed, each call arrives whole in one delta with its ``index`` and ``id`` (Ollama
  produces calls whole), as OpenAI's clients accumulate them.
* ``finish_reason`` is otherwise "length" when Ollama's done_reason is, else "stop".
* Log probabilities, when asked for, are ``{"content": [{"token", "logprob", "bytes",
  "top_logprobs"}]}``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from generated.llm.v1 import llm_service_pb2 as pb
from server.validation import plain

JsonDict = dict[str, Any]


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def finish_reason(done_reason: str, called: bool) -> str:
    if called:
        return "tool_calls"
    return "length" if done_reason == "length" else "stop"


def usage(prompt_tokens: int, completion_tokens: int) -> JsonDict:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def tool_call(call: pb.ToolCall) -> JsonDict:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": json.dumps(plain(call.arguments))},
    }


def _logprob(item: pb.TokenLogprob) -> JsonDict:
    return {"token": item.token, "logprob": item.logprob, "bytes": list(item.bytes) or None}


def logprobs(items: Iterable[pb.TokenLogprob]) -> JsonDict | None:
    content = [
        {**_logprob(item), "top_logprobs": [_logprob(t) for t in item.top_logprobs]}
        for item in items
    ]
    return {"content": content} if content else None


def chat_completion(reply: pb.ChatResponse, model: str) -> JsonDict:
    calls = [tool_call(c) for c in reply.tool_calls]
    message: JsonDict = {"role": "assistant", "content": reply.response}
    if calls:
        message["tool_calls"] = calls
        message["content"] = reply.response or None
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
                "logprobs": logprobs(reply.logprobs),
                "finish_reason": finish_reason(reply.done_reason, bool(calls)),
            }
        ],
        "usage": usage(reply.prompt_tokens, reply.response_tokens),
    }


@dataclass
class ChunkFactory:
    """The ``chat.completion.chunk`` objects of one streamed answer (same id, created)."""

    model: str
    include_usage: bool
    id: str
    created: int
    calls: int = field(default=0)

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

    def delta(
        self, delta: JsonDict, finish: str | None = None, probs: JsonDict | None = None
    ) -> JsonDict:
        return self.chunk(
            [{"index": 0, "delta": delta, "logprobs": probs, "finish_reason": finish}]
        )

    def event(self, event: pb.ChatStreamResponse) -> JsonDict:
        """The chunk for one delta of the ChatStream: text, reasoning or tool calls."""
        delta: JsonDict = {}
        if event.thinking:
            delta["reasoning_content"] = event.thinking
        if event.content:
            delta["content"] = event.content
        if event.tool_calls:
            delta["tool_calls"] = [self._call_delta(c) for c in event.tool_calls]
        return self.delta(delta, probs=logprobs(event.logprobs))

    def _call_delta(self, call: pb.ToolCall) -> JsonDict:
        entry = {"index": self.calls, **tool_call(call)}
        self.calls += 1
        return entry

    def final(self, event: pb.ChatStreamResponse) -> list[JsonDict]:
        """Calls the final event carries, the chunk with ``finish_reason``, then the
        usage chunk when asked for."""
        chunks = []
        if event.tool_calls or event.content or event.logprobs:
            chunks.append(self.event(event))
        finish = finish_reason(event.done_reason, self.calls > 0)
        chunks.append(self.delta({}, finish))
        if self.include_usage:
            chunks.append(self.chunk([], usage(event.prompt_tokens, event.response_tokens)))
        return chunks
