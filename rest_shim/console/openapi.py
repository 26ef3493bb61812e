"""The console's routes in the REST face's OpenAPI document (merged by
``rest_shim.openapi``): the page and its files are open (the page asks for a key when
the service wants one), the JSON it reads needs the key as every API route does. Parts
of the JSON are the contract's own messages (``message_schema`` builds them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from generated.llm.v1 import llm_service_pb2 as pb
from rest_shim.openapi_parts import (
    BOOL,
    INT,
    NUM,
    STR,
    Schema,
    array,
    json_answer,
    obj,
    text_operation,
)

MessageSchema = Callable[[Any], Schema]

_TIME: Schema = {"type": "string", "format": "date-time", "nullable": True}
_ERRORS: Schema = {
    "type": "object",
    "description": "sections left out, by name: what their RPC answered",
    "additionalProperties": {
        "type": "object",
        "properties": {"code": STR, "detail": STR, "http_status": INT},
    },
}


def _loaded() -> Schema:
    return obj(name=STR, host=STR, size=INT, size_vram=INT, expires_at=STR, context_length=INT)


def console_schemas(message_schema: MessageSchema) -> dict[str, Schema]:
    host = message_schema(pb.OllamaHost.DESCRIPTOR)
    host["properties"].update(models={**array(STR), "nullable": True}, loaded=array(_loaded()))
    day = obj(requests=INT, failures=INT, prompt_tokens=INT, response_tokens=INT)
    return {
        "ConsoleOverview": obj(
            service=obj(
                status={"type": "string", "enum": ["healthy", "degraded", "unhealthy", "unknown"]},
                error=STR,
                version=STR,
                ollama_version=STR,
                uptime_seconds={**NUM, "nullable": True},
                started_at=_TIME,
                auth_enabled=BOOL,
                default_model=STR,
                embedding_model=STR,
                missing_models=array(STR),
            ),
            hosts=array(host),
            lanes=array(obj(name=STR, running=INT, queued=INT, max_concurrent=INT, max_queue=INT)),
            totals={
                **obj(
                    requests=INT,
                    successes=INT,
                    failures=INT,
                    cancelled=INT,
                    prompt_tokens=INT,
                    response_tokens=INT,
                    retries=INT,
                ),
                "nullable": True,
            },
            history=array(message_schema(pb.HistoryBucket.DESCRIPTOR)),
            failures=array(message_schema(pb.RecentFailure.DESCRIPTOR)),
            usage={
                "type": "object",
                "nullable": True,
                "description": "per caller and model; null until the service keeps a ledger",
            },
            errors=_ERRORS,
            timestamp=_TIME,
        ),
        "ConsoleModels": obj(
            models=array(
                obj(
                    name=STR,
                    family=STR,
                    families=array(STR),
                    parameter_size=STR,
                    quantization_level=STR,
                    format=STR,
                    size=INT,
                    modified_at=STR,
                    embedding=BOOL,
                    capabilities={**array(STR), "nullable": True},
                    loaded=array(_loaded()),
                    today=day,
                )
            ),
            today_since=_TIME,
            errors=_ERRORS,
        ),
    }


def _api(operation_id: str, summary: str, schema: str, secured: list[Schema]) -> Schema:
    return {
        "operationId": operation_id,
        "summary": summary,
        "security": secured,
        "responses": {
            "200": json_answer(schema),
            "401": json_answer("Error", "missing or wrong API key"),
        },
    }


def console_paths(secured: list[Schema]) -> dict[str, Schema]:
    return {
        "/console": {"get": text_operation("consolePage", "The operator console", "text/html")},
        "/console/console.js": {
            "get": text_operation("consoleScript", "The console's script", "text/javascript")
        },
        "/console/console.css": {
            "get": text_operation("consoleStyles", "The console's styles", "text/css")
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
