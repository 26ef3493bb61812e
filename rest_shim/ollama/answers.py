"""``llm.v1`` answers as Ollama writes them: field names, order and units (durations in
nanoseconds, left out when zero, like Go's ``omitempty``), ``created_at`` in RFC 3339,
tool calls and log probabilities as api/types.go marshals them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from generated.llm.v1 import llm_service_pb2 as pb
from server.validation import plain

JsonDict = dict[str, Any]


def created_at() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _metrics(durations: pb.Durations, prompt_tokens: int, response_tokens: int) -> JsonDict:
    fields = (
        ("total_duration", durations.total_ns),
        ("load_duration", durations.load_ns),
        ("prompt_eval_count", prompt_tokens),
        ("prompt_eval_duration", durations.prompt_eval_ns),
        ("eval_count", response_tokens),
        ("eval_duration", durations.eval_ns),
    )
    return {key: value for key, value in fields if value}


def tool_calls(calls: Iterable[pb.ToolCall]) -> list[JsonDict]:
    out = []
    for call in calls:
        function: JsonDict = {"index": call.index, "name": call.name}
        function["arguments"] = plain(call.arguments)
        entry: JsonDict = {"id": call.id} if call.id else {}
        entry["function"] = function
        out.append(entry)
    return out


def logprobs(items: Iterable[pb.TokenLogprob]) -> list[JsonDict]:
    out = []
    for item in items:
        entry: JsonDict = {"token": item.token, "logprob": item.logprob}
        if item.bytes:
            entry["bytes"] = list(item.bytes)
        if item.top_logprobs:
            entry["top_logprobs"] = logprobs(item.top_logprobs)
        out.append(entry)
    return out


def _message(content: str, thinking: str, calls: Iterable[pb.ToolCall]) -> JsonDict:
    message: JsonDict = {"role": "assistant", "content": content}
    if thinking:
        message["thinking"] = thinking
    listed = tool_calls(calls)
    if listed:
        message["tool_calls"] = listed
    return message


def _with_logprobs(line: JsonDict, items: Any) -> JsonDict:
    listed = logprobs(items)
    if listed:
        line["logprobs"] = listed
    return line


def chat_answer(reply: pb.ChatResponse, model: str) -> JsonDict:
    return _chat_line(reply, reply.response, model, done=True)


def chat_chunk(event: pb.ChatStreamResponse, model: str) -> JsonDict:
    return _chat_line(event, event.content, model, done=event.done)


def _chat_line(
    reply: pb.ChatResponse | pb.ChatStreamResponse, content: str, model: str, done: bool
) -> JsonDict:
    """A chat answer, or one chunk of it: the last one carries the reason and metrics."""
    line: JsonDict = {
        "model": model,
        "created_at": created_at(),
        "message": _message(content, reply.thinking, reply.tool_calls),
    }
    if done:
        line["done_reason"] = reply.done_reason
        line["done"] = True
        line.update(_metrics(reply.durations, reply.prompt_tokens, reply.response_tokens))
    else:
        line["done"] = False
    return _with_logprobs(line, reply.logprobs)


def generate_answer(reply: pb.GenerateResponse | pb.GenerateStreamResponse, model: str) -> JsonDict:
    line: JsonDict = {"model": model, "created_at": created_at(), "response": reply.response}
    if reply.thinking:
        line["thinking"] = reply.thinking
    line["done"] = True
    line["done_reason"] = reply.done_reason
    if reply.context:
        line["context"] = list(reply.context)
    line.update(_metrics(reply.durations, reply.prompt_tokens, reply.response_tokens))
    return _with_logprobs(line, reply.logprobs)


def generate_chunk(event: pb.GenerateStreamResponse, model: str) -> JsonDict:
    if event.done:
        return generate_answer(event, model)
    line: JsonDict = {"model": model, "created_at": created_at(), "response": event.response}
    if event.thinking:
        line["thinking"] = event.thinking
    line["done"] = False
    return _with_logprobs(line, event.logprobs)


def loaded(model: str, reply: pb.GenerateResponse, chat: bool) -> JsonDict:
    """The answer to an empty prompt or conversation: the model loaded (or unloaded)."""
    if chat:
        return {
            "model": model,
            "created_at": created_at(),
            "message": {"role": "assistant", "content": ""},
            "done_reason": reply.done_reason,
            "done": True,
        }
    return {
        "model": model,
        "created_at": created_at(),
        "response": "",
        "done": True,
        "done_reason": reply.done_reason,
    }


def _details(details: pb.ModelDetails) -> JsonDict:
    return {
        "parent_model": details.parent_model,
        "format": details.format,
        "family": details.family,
        "families": list(details.families) or None,
        "parameter_size": details.parameter_size,
        "quantization_level": details.quantization_level,
    }


def tags(reply: pb.ListModelsResponse) -> JsonDict:
    return {
        "models": [
            {
                "name": m.name,
                "model": m.model,
                "modified_at": m.modified_at,
                "size": m.size,
                "digest": m.digest,
                "details": _details(m.details),
            }
            for m in reply.models
        ]
    }


def running(reply: pb.ListRunningModelsResponse) -> JsonDict:
    return {
        "models": [
            {
                "name": m.name,
                "model": m.model,
                "size": m.size,
                "digest": m.digest,
                "details": _details(m.details),
                "expires_at": m.expires_at,
                "size_vram": m.size_vram,
                "context_length": m.context_length,
            }
            for m in reply.models
        ]
    }


def show(reply: pb.ShowModelResponse) -> JsonDict:
    out: JsonDict = {}
    for key in ("license", "modelfile", "parameters", "template", "system"):
        if getattr(reply, key):
            out[key] = getattr(reply, key)
    out["details"] = _details(reply.details)
    out["model_info"] = plain(reply.model_info)
    if reply.capabilities:
        out["capabilities"] = list(reply.capabilities)
    out["modified_at"] = reply.modified_at
    return out


def embed(reply: pb.EmbedResponse) -> JsonDict:
    out: JsonDict = {"model": reply.model, "embeddings": [list(e.values) for e in reply.embeddings]}
    fields = (
        ("total_duration", reply.durations.total_ns),
        ("load_duration", reply.durations.load_ns),
        ("prompt_eval_count", reply.prompt_tokens),
    )
    out.update({key: value for key, value in fields if value})
    return out
