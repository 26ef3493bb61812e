"""JSON <-> protobuf for the REST face.

Requests are transcoded with protobuf's own ``json_format`` (the REST body and the
request message share field names), after the few normalisations the REST shape
needs. Replies are turned into plain JSON data by walking the message descriptors,
so 64-bit integers stay numbers and timestamps become ISO 8601 strings.
"""

from __future__ import annotations

import base64
from datetime import UTC
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from generated.llm.v1 import llm_service_pb2 as pb
from server.validation import whole_numbers

JsonDict = dict[str, Any]


class BodyShapeError(ValueError):
    """The JSON body does not have the request's shape (answered with 422)."""


def iso(ts: Timestamp) -> str | None:
    if ts.seconds == 0 and ts.nanos == 0:
        return None
    return ts.ToDatetime(tzinfo=UTC).isoformat()


def to_plain(msg: Message) -> JsonDict:
    """Every field of ``msg`` (set or not) as JSON-ready data."""
    out: JsonDict = {}
    for field in msg.DESCRIPTOR.fields:
        value = getattr(msg, field.name)
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            value_field = entry.fields_by_name["value"]
            out[field.name] = {k: _plain_value(value_field, v) for k, v in value.items()}
        elif field.is_repeated:
            out[field.name] = [_plain_value(field, v) for v in value]
        else:
            out[field.name] = _plain_value(field, value)
    return out


_DATA = frozenset({"google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.ListValue"})


def _plain_value(field: Any, value: Any) -> Any:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        if isinstance(value, Timestamp):
            return iso(value)
        if field.message_type.full_name in _DATA:  # JSON data carried as data
            return whole_numbers(json_format.MessageToDict(value))
        return to_plain(value)
    if field.type == FieldDescriptor.TYPE_BYTES:  # as protobuf's JSON mapping: base64
        return base64.b64encode(value).decode("ascii")
    if field.type == FieldDescriptor.TYPE_ENUM:
        return field.enum_type.values_by_number[value].name
    return value


def _normalise_chat(body: JsonDict) -> JsonDict:
    """REST conveniences the proto spells differently: ``think`` may be a boolean and
    ``format`` a JSON-schema object (carried as data, in ``output_format``); ``history``
    must hold {role, content} objects. ``message`` is required unless the whole
    conversation comes in ``messages``."""
    data = dict(body)
    if data.get("message") is None and not data.get("messages"):
        raise BodyShapeError("message: field required")
    think = data.get("think")
    if isinstance(think, bool):
        data["think"] = "true" if think else "false"
    fmt = data.get("format")
    if isinstance(fmt, dict):
        data["output_format"] = data.pop("format")
    history = data.get("history")
    if history is not None:
        if not isinstance(history, list):
            raise BodyShapeError("history: must be a list of {role, content} objects")
        for i, turn in enumerate(history):
            if not isinstance(turn, dict) or not {"role", "content"} <= turn.keys():
                raise BodyShapeError(f"history[{i}]: must be an object with role and content")
    return data


def parse_into(body: JsonDict, message: Message) -> None:
    try:
        json_format.ParseDict(body, message, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError) as exc:
        raise BodyShapeError(str(exc).rstrip(".")) from None


def chat_request(body: JsonDict) -> pb.ChatRequest:
    request = pb.ChatRequest()
    parse_into(_normalise_chat(body), request)
    return request


def embed_request(body: JsonDict) -> pb.EmbedRequest:
    data = dict(body)
    text = data.get("input")
    if text is None:
        raise BodyShapeError("input: field required")
    if isinstance(text, str):
        data["input"] = [text]
    request = pb.EmbedRequest()
    parse_into(data, request)
    return request


def stream_event(event: pb.ChatStreamResponse) -> JsonDict:
    """One SSE event: a delta carries only what changes; the final event everything."""
    if not event.done:
        delta: JsonDict = {
            "content": event.content,
            "thinking": event.thinking,
            "done": False,
            "model": event.model,
        }
        if event.tool_calls:
            delta["tool_calls"] = [to_plain(c) for c in event.tool_calls]
        if event.logprobs:
            delta["logprobs"] = [to_plain(p) for p in event.logprobs]
        return delta
    return to_plain(event)


def chat_reply(reply: pb.ChatResponse) -> JsonDict:
    return {"status": "success", **to_plain(reply)}


def embed_reply(reply: pb.EmbedResponse) -> JsonDict:
    data = to_plain(reply)
    data["embeddings"] = [list(e.values) for e in reply.embeddings]
    return {"status": "success", **data}


def models_reply(reply: pb.ListModelsResponse) -> JsonDict:
    models = []
    for m in reply.models:
        entry = to_plain(m)
        entry["status"] = "available"
        entry["type"] = "embedding" if m.embedding else "chat"
        models.append(entry)
    return {
        "status": "success",
        "models": models,
        "total_count": len(models),
        "timestamp": iso(reply.timestamp),
    }


def health_reply(reply: pb.HealthResponse) -> JsonDict:
    return {
        "status": reply.status,
        "services": {"ollama": to_plain(reply.ollama)},
        "configuration": to_plain(reply.configuration),
        "timestamp": iso(reply.timestamp),
    }


def stats_reply(reply: pb.StatsResponse) -> JsonDict:
    totals = to_plain(reply.totals)
    total = reply.totals.total_requests
    statistics = {
        **totals,
        "success_rate_percent": (
            round(100.0 * reply.totals.successful_requests / total, 2) if total else 0.0
        ),
        "last_request_time": iso(reply.last_request_time),
        "uptime_seconds": reply.uptime_seconds,
        "started_at": iso(reply.started_at),
        "per_model": {k: to_plain(v) for k, v in reply.per_model.items()},
        "per_method": {k: to_plain(v) for k, v in reply.per_method.items()},
    }
    return {
        "status": "success",
        "statistics": statistics,
        "configuration": to_plain(reply.configuration),
        "timestamp": iso(reply.timestamp),
    }
