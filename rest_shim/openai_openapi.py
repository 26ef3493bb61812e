"""The OpenAI-compatible routes in the shim's OpenAPI document (merged by
``rest_shim.openapi``). Their shapes are OpenAI's, not the proto's, so they are
written out here, next to nothing else."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

_STR: Schema = {"type": "string"}
_INT: Schema = {"type": "integer"}
_NUM: Schema = {"type": "number"}


def _obj(required: list[str] | None = None, **props: Schema) -> Schema:
    schema: Schema = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    return schema


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _array(items: Schema, **extra: Any) -> Schema:
    return {"type": "array", "items": items, **extra}


def _one_of(*options: Schema) -> Schema:
    return {"oneOf": list(options)}


_USAGE = _obj(prompt_tokens=_INT, completion_tokens=_INT, total_tokens=_INT)
_TEXT_PART = _obj(["type", "text"], type={"type": "string", "enum": ["text"]}, text=_STR)
_ROLES = ["system", "developer", "user", "assistant", "tool"]


def openai_schemas() -> dict[str, Schema]:
    message = _obj(
        ["role"],
        role={"type": "string", "enum": _ROLES},
        content=_one_of(_STR, _array(_TEXT_PART)),
        reasoning_content=_STR,
    )
    answer = _obj(role=_STR, content=_STR, reasoning_content=_STR)
    finish = {"type": "string", "enum": ["stop", "length"], "nullable": True}
    return {
        "OpenAIError": _obj(
            ["error"],
            error=_obj(
                ["message", "type"],
                message=_STR,
                type=_STR,
                code={"type": "string", "nullable": True},
                param={"type": "string", "nullable": True},
            ),
        ),
        "OpenAIChatRequest": _obj(
            ["messages"],
            model=_STR,
            messages=_array(message, minItems=1),
            temperature=_NUM,
            top_p=_NUM,
            max_tokens=_INT,
            max_completion_tokens=_INT,
            stop=_one_of(_STR, _array(_STR)),
            seed=_INT,
            response_format=_obj(
                ["type"],
                type={"type": "string", "enum": ["text", "json_object", "json_schema"]},
                json_schema=_obj(["schema"], name=_STR, schema={"type": "object"}),
            ),
            reasoning_effort={"type": "string", "enum": ["low", "medium", "high"]},
            stream={"type": "boolean"},
            stream_options=_obj(include_usage={"type": "boolean"}),
        ),
        "OpenAIChatCompletion": _obj(
            id=_STR,
            object={"type": "string", "enum": ["chat.completion"]},
            created=_INT,
            model=_STR,
            choices=_array(_obj(index=_INT, message=answer, finish_reason=finish)),
            usage=_USAGE,
        ),
        "OpenAIChatChunk": _obj(
            id=_STR,
            object={"type": "string", "enum": ["chat.completion.chunk"]},
            created=_INT,
            model=_STR,
            choices=_array(_obj(index=_INT, delta=answer, finish_reason=finish)),
            usage={**_USAGE, "nullable": True},
        ),
        "OpenAIModel": _obj(id=_STR, object=_STR, created=_INT, owned_by=_STR),
        "OpenAIModelList": _obj(object=_STR, data=_array(_ref("OpenAIModel"))),
        "OpenAIEmbeddingRequest": _obj(
            ["input"],
            input=_one_of(_STR, _array(_STR, minItems=1)),
            model=_STR,
            encoding_format={"type": "string", "enum": ["float", "base64"]},
        ),
        "OpenAIEmbeddingList": _obj(
            object=_STR,
            data=_array(
                _obj(
                    object=_STR,
                    index=_INT,
                    embedding=_one_of(_array(_NUM), {"type": "string", "format": "byte"}),
                )
            ),
            model=_STR,
            usage=_obj(prompt_tokens=_INT, total_tokens=_INT),
        ),
    }


_ERRORS = {
    "400": "invalid value, malformed JSON or a body of the wrong shape",
    "401": "missing or wrong API key",
    "404": "unknown model",
    "413": "request body too large",
    "429": "too many requests; retry after Retry-After seconds",
    "500": "Ollama failed",
    "503": "Ollama or the gRPC server cannot be reached",
    "504": "Ollama did not answer in time",
}


def _json(schema: str, description: str = "OK") -> Schema:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _operation(
    operation_id: str, summary: str, reply: str, security: list[Schema], body: str | None = None
) -> Schema:
    errors = {status: _json("OpenAIError", what) for status, what in _ERRORS.items()}
    op: Schema = {
        "operationId": operation_id,
        "summary": summary,
        "tags": ["OpenAI-compatible"],
        "security": security,
        "responses": {"200": _json(reply), **errors},
    }
    if body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    return op


def openai_paths(security: list[Schema]) -> dict[str, Schema]:
    """The /v1 operations (OpenAI's own operation ids); each needs ``security``."""
    chat = _operation(
        "createChatCompletion",
        "OpenAI chat completion (Server-Sent Events chunks when stream is true)",
        "OpenAIChatCompletion",
        security,
        "OpenAIChatRequest",
    )
    chat["responses"]["200"]["content"]["text/event-stream"] = {
        "schema": {"type": "string", "description": "data: OpenAIChatChunk, then data: [DONE]"}
    }
    model = _operation("retrieveModel", "One model, OpenAI style", "OpenAIModel", security)
    model["parameters"] = [
        {"name": "model", "in": "path", "required": True, "schema": _STR},
    ]
    return {
        "/v1/chat/completions": {"post": chat},
        "/v1/models": {
            "get": _operation(
                "listModels", "Ollama's models, OpenAI style", "OpenAIModelList", security
            )
        },
        "/v1/models/{model}": {"get": model},
        "/v1/embeddings": {
            "post": _operation(
                "createEmbedding",
                "OpenAI embeddings (float or base64)",
                "OpenAIEmbeddingList",
                security,
                "OpenAIEmbeddingRequest",
            )
        },
    }
