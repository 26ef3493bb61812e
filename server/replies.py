"""Ollama's answers as ``llm.v1`` messages: chat and generate replies, stream events,
tool calls, log probabilities, durations, model descriptions.

Token counts are Ollama's own (``prompt_eval_count``, ``eval_count``), never estimated.
A tool call without an id (older Ollama) gets one, so that callers that answer calls
by id (OpenAI's ``tool_call_id``) can.
"""

from __future__ import annotations

import uuid
from typing import Any

from google.protobuf import struct_pb2

from generated.llm.v1 import llm_service_pb2 as pb
from server.calls import Call
from server.errors import OllamaError

JsonObject = dict[str, Any]
EMBEDDING_FAMILIES = frozenset({"bert", "nomic-bert", "xlm-roberta", "jina-bert-v2"})


def ns_to_ms(value: Any) -> float:
    return float(value or 0) / 1e6


def tokens_per_second(final: JsonObject) -> float | None:
    eval_count, eval_ns = final.get("eval_count") or 0, final.get("eval_duration") or 0
    return eval_count / (eval_ns / 1e9) if eval_count and eval_ns else None


def durations(data: JsonObject) -> pb.Durations:
    return pb.Durations(
        total_ns=int(data.get("total_duration") or 0),
        load_ns=int(data.get("load_duration") or 0),
        prompt_eval_ns=int(data.get("prompt_eval_duration") or 0),
        eval_ns=int(data.get("eval_duration") or 0),
    )


def struct(data: Any) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    if isinstance(data, dict):
        out.update(data)
    return out


def tool_calls(message: JsonObject) -> list[pb.ToolCall]:
    calls = message.get("tool_calls") or []
    out = []
    for position, call in enumerate(c for c in calls if isinstance(c, dict)):
        function = call.get("function") or {}
        index = function.get("index", call.get("index", position))
        out.append(
            pb.ToolCall(
                id=str(call.get("id") or f"call_{uuid.uuid4().hex[:12]}"),
                name=str(function.get("name") or ""),
                arguments=struct(function.get("arguments")),
                index=int(index) if isinstance(index, int) else position,
            )
        )
    return out


def logprobs(data: JsonObject) -> list[pb.TokenLogprob]:
    return [_logprob(item) for item in data.get("logprobs") or [] if isinstance(item, dict)]


def _logprob(item: JsonObject) -> pb.TokenLogprob:
    raw = item.get("bytes")
    return pb.TokenLogprob(
        token=str(item.get("token") or ""),
        logprob=float(item.get("logprob") or 0.0),
        bytes=bytes(raw) if isinstance(raw, list) else b"",
        top_logprobs=[_logprob(t) for t in item.get("top_logprobs") or [] if isinstance(t, dict)],
    )


def model_details(details: JsonObject) -> pb.ModelDetails:
    return pb.ModelDetails(
        parent_model=str(details.get("parent_model") or ""),
        format=str(details.get("format") or ""),
        family=str(details.get("family") or ""),
        families=[str(f) for f in details.get("families") or []],
        parameter_size=str(details.get("parameter_size") or ""),
        quantization_level=str(details.get("quantization_level") or ""),
    )


def is_embedding_model(model: JsonObject) -> bool:
    details = model.get("details") or {}
    families = {str(details.get("family", ""))} | set(details.get("families") or [])
    name = str(model.get("name", ""))
    return bool(families & EMBEDDING_FAMILIES) or "embed" in name or name.startswith("bge")


def model_info(model: JsonObject) -> pb.ModelInfo:
    return pb.ModelInfo(
        name=str(model.get("name") or model.get("model") or ""),
        model=str(model.get("model") or model.get("name") or ""),
        size=int(model.get("size") or 0),
        digest=str(model.get("digest") or ""),
        modified_at=str(model.get("modified_at") or ""),
        details=model_details(model.get("details") or {}),
        embedding=is_embedding_model(model),
    )


def running_model(model: JsonObject, host: str) -> pb.RunningModel:
    return pb.RunningModel(
        name=str(model.get("name") or model.get("model") or ""),
        model=str(model.get("model") or model.get("name") or ""),
        size=int(model.get("size") or 0),
        size_vram=int(model.get("size_vram") or 0),
        digest=str(model.get("digest") or ""),
        details=model_details(model.get("details") or {}),
        expires_at=str(model.get("expires_at") or ""),
        context_length=int(model.get("context_length") or 0),
        host=host,
    )


def show(name: str, data: JsonObject) -> pb.ShowModelResponse:
    return pb.ShowModelResponse(
        model=name,
        modelfile=str(data.get("modelfile") or ""),
        parameters=str(data.get("parameters") or ""),
        template=str(data.get("template") or ""),
        system=str(data.get("system") or ""),
        license=str(data.get("license") or ""),
        details=model_details(data.get("details") or {}),
        model_info=struct(data.get("model_info")),
        capabilities=[str(c) for c in data.get("capabilities") or []],
        modified_at=str(data.get("modified_at") or ""),
    )


# --- answers, counted on the call ----------------------------------------------------


def count(call: Call, data: JsonObject) -> None:
    """Ollama's token counts and speed, on the call (for Stats, metrics and logs)."""
    call.prompt_tokens = int(data.get("prompt_eval_count") or 0)
    call.response_tokens = int(data.get("eval_count") or 0)
    call.tokens_per_second = tokens_per_second(data)


def _ended(data: JsonObject, call: Call) -> JsonObject:
    """The fields of every message that ends an answer (a reply, or a stream's last
    event), once its counts are on the call."""
    count(call, data)
    return {
        "model": str(data.get("model") or call.model),
        "done_reason": str(data.get("done_reason") or "stop"),
        "prompt_tokens": call.prompt_tokens,
        "response_tokens": call.response_tokens,
        "total_tokens": call.prompt_tokens + call.response_tokens,
        "generation_time_ms": call.elapsed_ms(),
        "logprobs": logprobs(data),
        "durations": durations(data),
    }


def _stream_ended(final: JsonObject, call: Call) -> JsonObject:
    """``_ended`` for a stream's last event, with the stream's own timings."""
    fields = _ended(final, call)
    fields["time_to_first_token_ms"] = call.time_to_first_token_ms or 0.0
    fields["tokens_per_second"] = call.tokens_per_second or 0.0
    return fields


def chat_reply(data: JsonObject, call: Call) -> pb.ChatResponse:
    message = data.get("message") or {}
    reply = pb.ChatResponse(
        response=str(message.get("content") or ""),
        thinking=str(message.get("thinking") or ""),
        load_time_ms=ns_to_ms(data.get("load_duration")),
        tool_calls=tool_calls(message),
        **_ended(data, call),
    )
    reply.timestamp.GetCurrentTime()
    return reply


def chat_event(chunk: JsonObject, call: Call) -> pb.ChatStreamResponse | None:
    """A delta event, or None for a chunk that carries nothing."""
    message = chunk.get("message") or {}
    content = str(message.get("content") or "")
    thinking = str(message.get("thinking") or "")
    calls = tool_calls(message)
    probs = logprobs(chunk)
    if not (content or thinking or calls or probs):
        return None
    return pb.ChatStreamResponse(
        content=content, thinking=thinking, model=call.model, tool_calls=calls, logprobs=probs
    )


def chat_final(final: JsonObject, call: Call) -> pb.ChatStreamResponse:
    event = pb.ChatStreamResponse(
        done=True,
        tool_calls=tool_calls(final.get("message") or {}),
        **_stream_ended(final, call),
    )
    event.timestamp.GetCurrentTime()
    return event


def generate_reply(data: JsonObject, call: Call) -> pb.GenerateResponse:
    reply = pb.GenerateResponse(
        response=str(data.get("response") or ""),
        thinking=str(data.get("thinking") or ""),
        context=[int(t) for t in data.get("context") or []],
        **_ended(data, call),
    )
    reply.timestamp.GetCurrentTime()
    return reply


def generate_event(chunk: JsonObject, call: Call) -> pb.GenerateStreamResponse | None:
    response = str(chunk.get("response") or "")
    thinking = str(chunk.get("thinking") or "")
    probs = logprobs(chunk)
    if not (response or thinking or probs):
        return None
    return pb.GenerateStreamResponse(
        response=response, thinking=thinking, model=call.model, logprobs=probs
    )


def generate_final(final: JsonObject, call: Call) -> pb.GenerateStreamResponse:
    event = pb.GenerateStreamResponse(
        done=True,
        response=str(final.get("response") or ""),
        context=[int(t) for t in final.get("context") or []],
        **_stream_ended(final, call),
    )
    event.timestamp.GetCurrentTime()
    return event


def embed_reply(data: JsonObject, call: Call, inputs: int) -> pb.EmbedResponse:
    """The embeddings of ``inputs`` inputs, one each (Ollama's answer is checked)."""
    vectors = data.get("embeddings") or []
    if len(vectors) != inputs:
        raise OllamaError(
            f"Ollama returned {len(vectors)} embeddings for {inputs} inputs (model '{call.model}')"
        )
    call.prompt_tokens = int(data.get("prompt_eval_count") or 0)
    reply = pb.EmbedResponse(
        model=str(data.get("model") or call.model),
        embeddings=[pb.Embedding(values=v) for v in vectors],
        dimensions=len(vectors[0]) if vectors else 0,
        prompt_tokens=call.prompt_tokens,
        generation_time_ms=call.elapsed_ms(),
        durations=durations(data),
    )
    reply.timestamp.GetCurrentTime()
    return reply
