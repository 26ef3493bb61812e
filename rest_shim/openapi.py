"""The OpenAPI 3 document of the REST face, built from the proto descriptors.

Request and reply bodies are derived from the ``llm.v1`` messages, plus the few REST
envelope fields (``status``, ``timestamp``...), so the document cannot drift from the
contract. ``/docs`` renders the same document as a page that needs no JavaScript.
"""

from __future__ import annotations

import functools
import html
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from starlette.responses import HTMLResponse

from generated.llm.v1 import llm_service_pb2 as pb
from rest_shim.console.openapi import console_paths, console_schemas
from rest_shim.ollama.openapi import ollama_paths, ollama_schemas
from rest_shim.openai_openapi import openai_paths, openai_schemas
from rest_shim.openapi_parts import Schema, json_answer, json_body, text_operation
from rest_shim.usage import usage_openapi
from server.version import SERVICE_VERSION

_INTS = {
    FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_SINT32: "int32",
    FieldDescriptor.TYPE_UINT32: "int32",
    FieldDescriptor.TYPE_INT64: "int64",
    FieldDescriptor.TYPE_SINT64: "int64",
    FieldDescriptor.TYPE_UINT64: "int64",
}
_NUMBERS = {FieldDescriptor.TYPE_DOUBLE: "double", FieldDescriptor.TYPE_FLOAT: "float"}


# Well-known types as JSON has them (protobuf's JSON mapping).
_WELL_KNOWN: dict[str, Schema] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time", "nullable": True},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {"description": "any JSON value"},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
}


def _field_schema(field: Any, seen: frozenset[str]) -> Schema:
    entry = field.message_type
    if entry is not None and entry.GetOptions().map_entry:
        value = _scalar(entry.fields_by_name["value"], seen)
        return {"type": "object", "additionalProperties": value}
    item = _scalar(field, seen)
    return {"type": "array", "items": item} if field.is_repeated else item


def _scalar(field: Any, seen: frozenset[str]) -> Schema:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        name = field.message_type.full_name
        if name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[name])
        if name in seen:  # a message within itself (top_logprobs)
            return {"type": "object"}
        return message_schema(field.message_type, seen)
    if field.type in _INTS:
        return {"type": "integer", "format": _INTS[field.type]}
    if field.type in _NUMBERS:
        return {"type": "number", "format": _NUMBERS[field.type]}
    if field.type == FieldDescriptor.TYPE_BOOL:
        return {"type": "boolean"}
    if field.type == FieldDescriptor.TYPE_BYTES:
        return {"type": "string", "format": "byte"}
    return {"type": "string"}


def message_schema(desc: Any, seen: frozenset[str] = frozenset()) -> Schema:
    inner = seen | {desc.full_name}
    return {
        "type": "object",
        "properties": {f.name: _field_schema(f, inner) for f in desc.fields},
    }


def _error() -> Schema:
    return {
        "type": "object",
        "required": ["status", "code", "detail"],
        "properties": {
            "status": {"type": "string", "enum": ["error"]},
            "code": {"type": "string"},
            "detail": {"type": "string"},
        },
    }


def _chat_request() -> Schema:
    schema = message_schema(pb.ChatRequest.DESCRIPTOR)
    props = schema["properties"]
    props["message"].update({"minLength": 1, "description": "The new user message."})
    props["messages"].update({"minItems": 1})
    props["max_tokens"].update({"minimum": 1})
    props["temperature"].update({"minimum": 0, "maximum": 2})
    props["top_p"].update({"minimum": 0, "exclusiveMinimum": True, "maximum": 1})
    props["history"]["items"]["required"] = ["role", "content"]
    props["format"] = {
        "description": '"json" or a JSON schema object',
        "oneOf": [{"type": "string"}, {"type": "object"}],
    }
    props["think"] = {
        "description": "reasoning: true, false, or low / medium / high",
        "oneOf": [
            {"type": "boolean"},
            {"type": "string", "enum": ["true", "false", "low", "medium", "high"]},
        ],
    }
    props["stream"] = {"type": "boolean", "description": "answer as Server-Sent Events"}
    # the new user message, or the whole conversation
    schema["anyOf"] = [{"required": ["message"]}, {"required": ["messages"]}]
    return schema


def _embed_request() -> Schema:
    schema = message_schema(pb.EmbedRequest.DESCRIPTOR)
    schema["properties"]["input"] = {
        "oneOf": [
            {"type": "string", "minLength": 1},
            {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 1}},
        ]
    }
    schema["required"] = ["input"]
    return schema


def _envelope(desc: Any, **extra: Schema) -> Schema:
    schema = message_schema(desc)
    schema["properties"] = {"status": {"type": "string"}, **schema["properties"], **extra}
    return schema


def _schemas() -> dict[str, Schema]:
    model = _envelope(
        pb.ModelInfo.DESCRIPTOR,
        type={"type": "string", "enum": ["chat", "embedding"]},
    )
    embed = _envelope(pb.EmbedResponse.DESCRIPTOR)
    embed["properties"]["embeddings"] = {
        "type": "array",
        "items": {"type": "array", "items": {"type": "number"}},
    }
    counters = message_schema(pb.Counters.DESCRIPTOR)
    return {
        "Error": _error(),
        "ChatRequest": _chat_request(),
        "ChatReply": _envelope(pb.ChatResponse.DESCRIPTOR),
        "ChatStreamEvent": message_schema(pb.ChatStreamResponse.DESCRIPTOR),
        "EmbedRequest": _embed_request(),
        "EmbedReply": embed,
        "ModelsReply": {
            "type": "object",
            "properties": {
                "status": {"type": "string"},
                "models": {"type": "array", "items": model},
                "total_count": {"type": "integer"},
                "timestamp": {"type": "string", "format": "date-time"},
            },
        },
        "HealthReply": {
            "type": "object",
            "properties": {
                "status": {"type": "string", "enum": ["healthy", "degraded", "unhealthy"]},
                "services": {
                    "type": "object",
                    "properties": {"ollama": message_schema(pb.OllamaStatus.DESCRIPTOR)},
                },
                "configuration": message_schema(pb.Configuration.DESCRIPTOR),
                "timestamp": {"type": "string", "format": "date-time"},
            },
        },
        "StatsReply": {
            "type": "object",
            "properties": {
                "status": {"type": "string"},
                "statistics": {
                    **counters,
                    "properties": {
                        **counters["properties"],
                        "success_rate_percent": {"type": "number"},
                        "last_request_time": {"type": "string", "nullable": True},
                        "per_model": {"type": "object", "additionalProperties": counters},
                        "per_method": {"type": "object", "additionalProperties": counters},
                    },
                },
                "configuration": message_schema(pb.Configuration.DESCRIPTOR),
                "timestamp": {"type": "string", "format": "date-time"},
            },
        },
        "Object": {"type": "object"},
    }


_ERRORS = {
    "400": "invalid value or malformed JSON",
    "401": "missing or wrong API key",
    "404": "unknown model",
    "413": "request body too large",
    "422": "body of the wrong shape",
    "429": "too many requests; retry after Retry-After seconds",
    "500": "Ollama failed",
    "503": "Ollama or the gRPC server cannot be reached",
    "504": "Ollama did not answer in time",
}


# The bearer key of LLM_API_KEYS / LLM_API_KEYS_FILE; routes that need it say so with
# ``security`` (probes, metrics and this document stay open).
BEARER = "bearerAuth"
SECURITY_SCHEMES: dict[str, Schema] = {
    BEARER: {
        "type": "http",
        "scheme": "bearer",
        "description": (
            "An API key of LLM_API_KEYS or LLM_API_KEYS_FILE, as "
            "'Authorization: Bearer <key>'. Needed only when keys are configured."
        ),
    }
}
SECURED: list[Schema] = [{BEARER: []}]


def _operation(
    operation_id: str,
    summary: str,
    reply: str,
    body: str | None = None,
    extra: dict[str, Schema] | None = None,
    secured: bool = True,
) -> Schema:
    responses: dict[str, Schema] = {"200": json_answer(reply)}
    responses.update(extra or {})
    if body is not None:
        responses.update({k: json_answer("Error", v) for k, v in _ERRORS.items()})
    else:
        if secured:
            responses["401"] = json_answer("Error", _ERRORS["401"])
        responses["503"] = json_answer("Error", "the gRPC server cannot be reached")
    op: Schema = {"operationId": operation_id, "summary": summary, "responses": responses}
    if secured:
        op["security"] = SECURED
    if body is not None:
        op["requestBody"] = json_body(body)
    return op


@functools.cache
def openapi_document() -> dict[str, Any]:
    usage_paths, usage_schemas = usage_openapi(SECURED)
    sse = {"text/event-stream": {"schema": {"type": "string"}}}
    chat = _operation(
        "chat", "Answer one message (SSE when stream is true)", "ChatReply", "ChatRequest"
    )
    chat["responses"]["200"]["content"].update(sse)
    stream = _operation(
        "chatStream", "Stream the answer as Server-Sent Events", "Object", "ChatRequest"
    )
    stream["responses"]["200"] = {"description": "data: ChatStreamEvent JSON", "content": sse}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "LLM service (REST face)",
            "version": SERVICE_VERSION,
            "description": "REST face of llm.v1.LlmService; each route is one RPC.",
        },
        "paths": {
            "/": {"get": _operation("serviceInfo", "Service information", "Object")},
            "/health": {
                "get": _operation(
                    "health",
                    "Ollama and key model health",
                    "HealthReply",
                    extra={"503": json_answer("HealthReply", "unhealthy")},
                    secured=False,
                )
            },
            "/livez": {"get": _operation("livez", "The process answers", "Object", secured=False)},
            "/readyz": {
                "get": _operation(
                    "readyz", "The gRPC server and Ollama answer", "Object", secured=False
                )
            },
            "/models": {"get": _operation("models", "Ollama's models", "ModelsReply")},
            "/chat": {"post": chat},
            "/chat/stream": {"post": stream},
            "/embeddings": {
                "post": _operation("embeddings", "Embed texts", "EmbedReply", "EmbedRequest")
            },
            "/stats": {"get": _operation("stats", "Counters since start", "StatsReply")},
            **usage_paths,
            "/metrics": {"get": text_operation("metrics", "Prometheus metrics", "text/plain")},
            "/openapi.json": {
                "get": _operation("openapiDocument", "This document", "Object", secured=False)
            },
            "/docs": {"get": text_operation("docsPage", "This document as a page", "text/html")},
            **openai_paths(SECURED),
            **ollama_paths(SECURED),
            **console_paths(SECURED),
        },
        "components": {
            "schemas": {
                **_schemas(),
                **usage_schemas,
                **openai_schemas(),
                **ollama_schemas(),
                **console_schemas(message_schema),
            },
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


def docs_page(document: dict[str, Any]) -> HTMLResponse:
    rows = []
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            ref = body.get("schema", {}).get("$ref", "")
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}"
                f"</code></td><td>{html.escape(op['summary'])}</td>"
                f"<td>{html.escape(ref.rsplit('/', 1)[-1])}</td></tr>"
            )
    schemas = []
    for name, schema in document["components"]["schemas"].items():
        fields = ", ".join(f"<code>{html.escape(k)}</code>" for k in schema.get("properties", {}))
        schemas.append(f"<h3>{html.escape(name)}</h3><p>{fields}</p>")
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>LLM service API</title>"
        "</head><body><h1>LLM service: REST API</h1>"
        "<p>Machine-readable: <a href='/openapi.json'>/openapi.json</a></p>"
        "<table border='1' cellpadding='4'><tr><th>method</th><th>path</th>"
        "<th>what</th><th>body</th></tr>" + "".join(rows) + "</table>"
        "<h2>Schemas</h2>" + "".join(schemas) + "</body></html>"
    )
    return HTMLResponse(page)
