"""The console's routes in the REST face's OpenAPI document (merged by
``rest_shim.openapi``): the page and its files are open (the page asks for a key when
the service wants one), the JSON it reads needs the key as every API route does. Parts
of the JSON are the contract's own messages (``message_schema`` builds them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from generated.llm.v1 import llm_service_pb2 as pb

Schema = dict[str, Any]
MessageSchema = Callable[[Any], Schema]

_STR: Schema = {"type": "string"}
_INT: Schema = {"type": "integer"}
_NUM: Schema = {"type": "number"}
_BOOL: Schema = {"type": "boolean"}
_TIME: Schema = {"type": "string", "format": "date-time", "nullable": True}
_ERRORS: Schema = {
    "type": "object",
    "description": "sections left out, by name: what their RPC answered",
    "additionalProperties": {
        "type": "object",
        "properties": {"code": _STR, "detail": _STR, "http_status": _INT},
    },
}


def _obj(**props: Schema) -> Schema:
    return {"type": "object", "properties": props}


def _array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def _loaded() -> Schema:
    return _obj(
        name=_STR, host=_STR, size=_INT, size_vram=_INT, expires_at=_STR, context_length=_INT
    )


def console_schemas(message_schema: MessageSchema) -> dict[str, Schema]:
    host = message_schema(pb.OllamaHost.DESCRIPTOR)
    host["properties"].update(
        models={**_array(_STR), "nullable": True}, loaded=_array(_loaded())
    )
    day = _obj(requests=_INT, failures=_INT, prompt_tokens=_INT, response_tokens=_INT)
    return {
        "ConsoleOverview": _obj(
            service=_obj(
                status={"type": "string", "enum": ["healthy", "degraded", "unhealthy", "unknown"]},
                error=_STR,
                version=_STR,
                ollama_version=_STR,
                uptime_seconds={**_NUM, "nullable": True},
                started_at=_TIME,
                auth_enabled=_BOOL,
                default_model=_STR,
                embedding_model=_STR,
                missing_models=_array(_STR),
            ),
            hosts=_array(host),
            lanes=_array(
                _obj(
                    name=_STR, running=_INT, queued=_INT, max_concurrent=_INT, max_queue=_INT
                )
            ),
            totals={
                **_obj(
                    requests=_INT,
                    successes=_INT,
                    failures=_INT,
                    cancelled=_INT,
                    prompt_tokens=_INT,
                    response_tokens=_INT,
                    retries=_INT,
                ),
                "nullable": True,
            },
            history=_array(message_schema(pb.HistoryBucket.DESCRIPTOR)),
            failures=_array(message_schema(pb.RecentFailure.DESCRIPTOR)),
            usage={
                "type": "object",
                "nullable": True,
                "description": "per caller and model; null until the service keeps a ledger",
            },
            errors=_ERRORS,
            timestamp=_TIME,
        ),
        "ConsoleModels": _obj(
            models=_array(
                _obj(
                    name=_STR,
                    family=_STR,
                    families=_array(_STR),
                    parameter_size=_STR,
                    quantization_level=_STR,
                    format=_STR,
                    size=_INT,
                    modified_at=_STR,
                    embedding=_BOOL,
                    capabilities={**_array(_STR), "nullable": True},
                    loaded=_array(_loaded()),
                    today=day,
                )
            ),
            today_since=_TIME,
            errors=_ERRORS,
        ),
    }


def _file(operation_id: str, summary: str, media_type: str) -> Schema:
    content = {media_type: {"schema": {"type": "string"}}}
    return {
        "operationId": operation_id,
        "summary": summary,
        "responses": {"200": {"description": "OK", "content": content}},
    }


def _api(operation_id: str, summary: str, schema: str, secured: list[Schema]) -> Schema:
    def error(description: str) -> Schema:
        ref = {"$ref": "#/components/schemas/Error"}
        return {"description": description, "content": {"application/json": {"schema": ref}}}

    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {
        "operationId": operation_id,
        "summary": summary,
        "security": secured,
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": ref}}},
            "401": error("missing or wrong API key"),
        },
    }


def console_paths(secured: list[Schema]) -> dict[str, Schema]:
    return {
        "/console": {"get": _file("consolePage", "The operator console", "text/html")},
        "/console/console.js": {
            "get": _file("consoleScript", "The console's script", "text/javascript")
        },
        "/console/console.css": {
            "get": _file("consoleStyles", "The console's styles", "text/css")
        },
        "/console/api/overview": {
            "get": _api(
                "consoleOverview",
                "Service, hosts, lanes, the last 15 minutes and the latest failures",
                "ConsoleOverview",
                secured,
            )
        },
        "/console/api/models": {
            "get": _api(
                "consoleModels",
                "Every model: details, capabilities, where loaded, today's requests",
                "ConsoleModels",
                secured,
            )
        },
    }
