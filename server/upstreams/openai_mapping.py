"""Ollama-shaped requests and answers (what the servicer speaks to every upstream) to
and from the OpenAI-compatible API of vLLM, llama.cpp's server, SGLang.

Requests: messages (images as ``data:`` URLs, tool calls with their arguments as JSON
text, tool answers with their call's id), options (``num_predict`` as ``max_tokens``,
the sampling options these servers take), ``format`` as ``response_format``, tools,
``think`` levels as ``reasoning_effort``, logprobs. Always streamed, with
``stream_options.include_usage``, so token counts are the server's own and a caller
that leaves stops the generation (llama.cpp does not notice a closed non-streamed
request).

Answers: each SSE chunk becomes Ollama's chunk (``message.content``/``thinking`` from
``delta.content``/``reasoning_content``, or ``response`` for a completion); tool-call
pieces are put together and given whole; the end is Ollama's ``done`` chunk with
``done_reason``, ``prompt_eval_count``/``eval_count`` from ``usage`` and the durations
from llama.cpp's ``timings`` when it sends them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

JsonObject = dict[str, Any]
# Ollama option -> OpenAI-compatible parameter (vLLM and llama.cpp take the last three).
_OPTIONS = {
    "num_predict": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "stop": "stop",
    "seed": "seed",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "top_k": "top_k",
    "min_p": "min_p",
    "repeat_penalty": "repeat_penalty",
}
_DONE_REASONS = {"stop": "stop", "length": "length", "tool_calls": "stop", "eos": "stop"}


def _options(payload: JsonObject, body: JsonObject) -> None:
    for key, value in (payload.get("options") or {}).items():
        if key in _OPTIONS:
            body[_OPTIONS[key]] = value


def _images(images: list[str]) -> list[JsonObject]:
    return [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{i}"}} for i in images
    ]


def _message(message: JsonObject) -> JsonObject:
    role = message.get("role", "user")
    content: Any = message.get("content", "")
    if message.get("images"):
        content = [{"type": "text", "text": content}, *_images(message["images"])]
    out: JsonObject = {"role": role, "content": content}
    calls = message.get("tool_calls")
    if calls:
        out["tool_calls"] = [
            {
                "id": c.get("id") or f"call_{i}",
                "type": "function",
                "function": {
                    "name": c["function"]["name"],
                    "arguments": json.dumps(c["function"].get("arguments") or {}),
                },
            }
            for i, c in enumerate(calls)
        ]
    if role == "tool":
        out["tool_call_id"] = message.get("tool_call_id") or message.get("tool_name") or "call_0"
    return out


def _common(payload: JsonObject, body: JsonObject) -> None:
    _options(payload, body)
    fmt = payload.get("format")
    if fmt == "json":
        body["response_format"] = {"type": "json_object"}
    elif isinstance(fmt, dict):
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": fmt},
        }
    think = payload.get("think")
    if isinstance(think, str):
        body["reasoning_effort"] = think
    if payload.get("logprobs"):
        body["logprobs"] = True
        if payload.get("top_logprobs"):
            body["top_logprobs"] = payload["top_logprobs"]
    body["stream"] = True
    body["stream_options"] = {"include_usage": True}


def chat_body(payload: JsonObject) -> JsonObject:
    """/v1/chat/completions for Ollama's /api/chat body."""
    body: JsonObject = {
        "model": payload["model"],
        "messages": [_message(m) for m in payload.get("messages") or []],
    }
    if payload.get("tools"):
        body["tools"] = payload["tools"]
    _common(payload, body)
    return body


def generate_body(payload: JsonObject) -> tuple[str, JsonObject]:
    """The path and body for Ollama's /api/generate body: a raw prompt (or one with a
    suffix) is a plain completion (/v1/completions); otherwise the prompt, with its
    system prompt and images, is a chat, so the model's template applies."""
    if payload.get("raw") or payload.get("suffix"):
        body: JsonObject = {"model": payload["model"], "prompt": payload.get("prompt", "")}
        if payload.get("suffix"):
            body["suffix"] = payload["suffix"]
        _common(payload, body)
        return "/v1/completions", body
    messages: list[JsonObject] = []
    if payload.get("system"):
        messages.append({"role": "system", "content": payload["system"]})
    prompt: JsonObject = {"role": "user", "content": payload.get("prompt", "")}
    if payload.get("images"):
        prompt["images"] = payload["images"]
    messages.append(prompt)
    return "/v1/chat/completions", chat_body({**payload, "messages": messages})


def embed_body(payload: JsonObject) -> JsonObject:
    body: JsonObject = {"model": payload["model"], "input": payload["input"]}
    if payload.get("dimensions"):
        body["dimensions"] = payload["dimensions"]
    return body


def embed_answer(data: JsonObject, model: str) -> JsonObject:
    rows = sorted(
        (r for r in data.get("data") or [] if isinstance(r, dict)),
        key=lambda r: int(r.get("index") or 0),
    )
    usage = data.get("usage") or {}
    return {
        "model": model,
        "embeddings": [r.get("embedding") or [] for r in rows],
        "prompt_eval_count": int(usage.get("prompt_tokens") or 0),
    }


@dataclass
class Translation:
    """One streamed answer, chunk by chunk, into Ollama's chunks."""

    model: str
    completion: bool  # a generation (``response``), not a chat (``message``)
    calls: dict[int, JsonObject] = field(default_factory=dict)
    finish: str = ""
    usage: JsonObject = field(default_factory=dict)
    timings: JsonObject = field(default_factory=dict)

    def chunk(self, data: JsonObject) -> list[JsonObject]:
        """Ollama's chunks for one SSE chunk (none for a chunk that carries nothing)."""
        if isinstance(data.get("usage"), dict):
            self.usage = data["usage"]
        if isinstance(data.get("timings"), dict):
            self.timings = data["timings"]
        out = []
        for choice in data.get("choices") or []:
            if choice.get("finish_reason"):
                self.finish = str(choice["finish_reason"])
            delta = choice.get("delta") or {}
            text = choice.get("text") or delta.get("content") or ""
            thinking = delta.get("reasoning_content") or delta.get("reasoning") or ""
            for piece in delta.get("tool_calls") or []:
                self._call_piece(piece)
            probs = (choice.get("logprobs") or {}).get("content") or []
            if text or thinking or probs:
                out.append(self._delta(str(text), str(thinking), probs))
        return out

    def _call_piece(self, piece: JsonObject) -> None:
        call = self.calls.setdefault(int(piece.get("index") or 0), {"arguments": ""})
        if piece.get("id"):
            call["id"] = piece["id"]
        function = piece.get("function") or {}
        if function.get("name"):
            call["name"] = function["name"]
        call["arguments"] += function.get("arguments") or ""

    def _delta(self, text: str, thinking: str, probs: list[JsonObject]) -> JsonObject:
        line: JsonObject = {"model": self.model, "done": False}
        _put_text(line, self.completion, text, thinking)
        if probs:
            line["logprobs"] = [_logprob(p) for p in probs]
        return line

    def end(self) -> list[JsonObject]:
        """The chunk with the tool calls (if any), then Ollama's ``done`` chunk."""
        out = []
        if self.calls and not self.completion:
            calls = []
            for index in sorted(self.calls):
                call = self.calls[index]
                try:
                    arguments = json.loads(call["arguments"] or "{}")
                except ValueError:
                    arguments = {"arguments": call["arguments"]}
                entry: JsonObject = {
                    "function": {
                        "index": index,
                        "name": call.get("name", ""),
                        "arguments": arguments,
                    }
                }
                if call.get("id"):
                    entry["id"] = call["id"]
                calls.append(entry)
            out.append(
                {
                    "model": self.model,
                    "message": {"role": "assistant", "content": "", "tool_calls": calls},
                    "done": False,
                }
            )
        final: JsonObject = {
            "model": self.model,
            "done": True,
            "done_reason": _DONE_REASONS.get(self.finish, self.finish or "stop"),
            "prompt_eval_count": int(self.usage.get("prompt_tokens") or 0),
            "eval_count": int(self.usage.get("completion_tokens") or 0),
        }
        if self.timings:
            prompt_ns = int(float(self.timings.get("prompt_ms") or 0) * 1e6)
            eval_ns = int(float(self.timings.get("predicted_ms") or 0) * 1e6)
            final.update(
                prompt_eval_duration=prompt_ns,
                eval_duration=eval_ns,
                total_duration=prompt_ns + eval_ns,
            )
        _put_text(final, self.completion, "", "")
        out.append(final)
        return out


def _logprob(item: JsonObject) -> JsonObject:
    return {
        "token": item.get("token", ""),
        "logprob": item.get("logprob", 0.0),
        "bytes": item.get("bytes"),
        "top_logprobs": [
            {"token": t.get("token", ""), "logprob": t.get("logprob", 0.0), "bytes": t.get("bytes")}
            for t in item.get("top_logprobs") or []
        ],
    }


def _put_text(line: JsonObject, completion: bool, text: str, thinking: str) -> JsonObject:
    """Puts ``text`` and ``thinking`` where Ollama has them: on the line of a generation
    (``response``), in the ``message`` of a chat; returns what holds them."""
    if completion:
        line["response"] = text
        held = line
    else:
        held = line["message"] = {"role": "assistant", "content": text}
    if thinking:
        held["thinking"] = thinking
    return held


def whole(chunks: list[JsonObject], completion: bool) -> JsonObject:
    """A non-streamed answer, put together from its chunks as Ollama answers it."""
    final = dict(chunks[-1])
    key = "response" if completion else "content"
    held = [c if completion else c.get("message") or {} for c in chunks[:-1]]
    text = "".join(str(h.get(key) or "") for h in held)
    thinking = "".join(str(h.get("thinking") or "") for h in held)
    calls = [call for h in held for call in h.get("tool_calls") or []]
    probs = [p for c in chunks[:-1] for p in c.get("logprobs") or []]
    message = _put_text(final, completion, text, thinking)
    if calls:
        message["tool_calls"] = calls
    if probs:
        final["logprobs"] = probs
    return final


def error_text(body: bytes) -> str:
    """The message of an OpenAI-style error body (``{"error": {"message"}}``,
    ``{"error": "..."}``, FastAPI's ``{"detail"}``), or the body itself."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode(errors="replace").strip()
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            return str(error.get("message") or error)
        if error:
            return str(error)
        if data.get("detail"):
            return str(data["detail"])
        if data.get("message"):
            return str(data["message"])
    return str(data)
