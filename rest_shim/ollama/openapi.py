"""Ollama's routes in the REST face's OpenAPI document (merged by ``rest_shim.openapi``).
The shapes are Ollama's (docs/api.md), written out here as the OpenAI ones are."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

_STR: Schema = {"type": "string"}
_INT: Schema = {"type": "integer"}
_NUM: Schema = {"type": "number"}
_BOOL: Schema = {"type": "boolean"}
_ANY_OBJECT: Schema = {"type": "object", "additionalProperties": True}


def _obj(required: list[str] | None = None, **props: Schema) -> Schema:
    schema: Schema = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    return schema


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


_OPTIONS: Schema = {
    "type": "object",
    "description": "Ollama's model options; keys the service does not know pass through",
    "properties": {
        **{k: _INT for k in ("num_ctx", "num_predict", "top_k", "seed", "num_gpu", "mirostat")},
        **{k: _NUM for k in ("temperature", "top_p", "min_p", "repeat_penalty")},
        "stop": _array(_STR),
    },
    "additionalProperties": True,
}
_FORMAT: Schema = {"oneOf": [{"type": "string", "enum": ["json", ""]}, _ANY_OBJECT]}
_THINK: Schema = {"oneOf": [_BOOL, {"type": "string", "enum": ["low", "medium", "high"]}]}
_KEEP_ALIVE: Schema = {"oneOf": [_NUM, _STR]}
_IMAGES: Schema = _array({"type": "string", "format": "byte"})
_CALL: Schema = _obj(
    ["function"],
    id=_STR,
    function=_obj(["name"], index=_INT, name=_STR, arguments=_ANY_OBJECT),
)
_METRICS: dict[str, Schema] = {
    k: _INT
    for k in (
        "total_duration",
        "load_duration",
        "prompt_eval_count",
        "prompt_eval_duration",
        "eval_count",
        "eval_duration",
    )
}
_LOGPROBS: Schema = _array(
    _obj(token=_STR, logprob=_NUM, bytes=_array(_INT), top_logprobs=_array(_ANY_OBJECT))
)
_DETAILS: Schema = _obj(
    parent_model=_STR,
    format=_STR,
    family=_STR,
    families={"type": "array", "items": _STR, "nullable": True},
    parameter_size=_STR,
    quantization_level=_STR,
)
_GENERATION: dict[str, Schema] = {
    "model": {"type": "string", "minLength": 1},
    "format": _FORMAT,
    "options": _OPTIONS,
    "stream": _BOOL,
    "think": _THINK,
    "keep_alive": _KEEP_ALIVE,
    "logprobs": _BOOL,
    "top_logprobs": {"type": "integer", "minimum": 0, "maximum": 20},
}


def ollama_schemas() -> dict[str, Schema]:
    message = _obj(
        ["role"],
        role={"type": "string", "enum": ["system", "user", "assistant", "tool"]},
        content=_STR,
        thinking=_STR,
        images=_IMAGES,
        tool_calls=_array(_CALL),
        tool_name=_STR,
        tool_call_id=_STR,
    )
    tool = _obj(
        ["function"],
        type={"type": "string", "enum": ["function"]},
        function=_obj(["name"], name=_STR, description=_STR, parameters=_ANY_OBJECT),
    )
    answer = _obj(role=_STR, content=_STR, thinking=_STR, images=_IMAGES, tool_calls=_array(_CALL))
    return {
        "OllamaError": _obj(["error"], error=_STR),
        "OllamaChatRequest": _obj(
            ["model"], messages=_array(message), tools=_array(tool), **_GENERATION
        ),
        "OllamaChatResponse": _obj(
            ["model", "created_at", "message", "done"],
            model=_STR,
            created_at=_STR,
            message=answer,
            done=_BOOL,
            done_reason=_STR,
            logprobs=_LOGPROBS,
            **_METRICS,
        ),
        "OllamaGenerateRequest": _obj(
            ["model"],
            prompt=_STR,
            suffix=_STR,
            system=_STR,
            template=_STR,
            raw=_BOOL,
            images=_IMAGES,
            context=_array(_INT),
            **_GENERATION,
        ),
        "OllamaGenerateResponse": _obj(
            ["model", "created_at", "response", "done"],
            model=_STR,
            created_at=_STR,
            response=_STR,
            thinking=_STR,
            done=_BOOL,
            done_reason=_STR,
            context=_array(_INT),
            logprobs=_LOGPROBS,
            **_METRICS,
        ),
        "OllamaEmbedRequest": _obj(
            ["model", "input"],
            model={"type": "string", "minLength": 1},
            input={"oneOf": [_STR, _array(_STR)]},
            truncate=_BOOL,
            dimensions={"type": "integer", "minimum": 1},
            options=_OPTIONS,
            keep_alive=_KEEP_ALIVE,
        ),
        "OllamaEmbedResponse": _obj(
            ["model", "embeddings"],
            model=_STR,
            embeddings=_array(_array(_NUM)),
            total_duration=_INT,
            load_duration=_INT,
            prompt_eval_count=_INT,
        ),
        "OllamaEmbeddingsRequest": _obj(
            ["model", "prompt"],
            model={"type": "string", "minLength": 1},
            prompt=_STR,
            options=_OPTIONS,
            keep_alive=_KEEP_ALIVE,
        ),
        "OllamaEmbeddingsResponse": _obj(["embedding"], embedding=_array(_NUM)),
        "OllamaShowRequest": _obj(["model"], model={"type": "string", "minLength": 1}),
        "OllamaShowResponse": _obj(
            license=_STR,
            modelfile=_STR,
            parameters=_STR,
            template=_STR,
            system=_STR,
            details=_DETAILS,
            model_info=_ANY_OBJECT,
            capabilities=_array(_STR),
            modified_at=_STR,
        ),
        "OllamaTags": _obj(
            ["models"],
            models=_array(
                _obj(
                    name=_STR,
                    model=_STR,
                    modified_at=_STR,
                    size=_INT,
                    digest=_STR,
                    details=_DETAILS,
                )
            ),
        ),
        "OllamaRunning": _obj(
            ["models"],
            models=_array(
                _obj(
                    name=_STR,
                    model=_STR,
                    size=_INT,
                    digest=_STR,
                    details=_DETAILS,
                    expires_at=_STR,
                    size_vram=_INT,
                    context_length=_INT,
                )
            ),
        ),
        "OllamaVersion": _obj(["version"], version=_STR),
    }


_ERRORS = {
    "400": "invalid value, malformed JSON or a body of the wrong shape",
    "401": "missing or wrong API key (Bearer, or HTTP Basic with the key as password)",
    "404": "unknown model",
    "413": "request body too large",
    "429": "a caller's quota is used up",
    "500": "Ollama failed",
    "503": "server busy (the queue is full; Retry-After), or Ollama cannot be reached",
    "504": "Ollama did not answer in time",
}


def _json(schema: str, description: str = "OK") -> Schema:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _op(
    operation_id: str,
    summary: str,
    reply: str,
    security: list[Schema],
    body: str | None = None,
    ndjson: bool = False,
) -> Schema:
    ok = _json(reply)
    if ndjson:
        ok["description"] = "one JSON object, or NDJSON lines when streaming (the default)"
        ok["content"]["application/x-ndjson"] = {"schema": _STR}
    responses: Schema = {"200": ok}
    responses.update({k: _json("OllamaError", v) for k, v in _ERRORS.items()})
    op: Schema = {
        "operationId": operation_id,
        "summary": summary,
        "tags": ["ollama"],
        "responses": responses,
        "security": security,
    }
    if body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    return op


def _managed(operation_id: str) -> Schema:
    return {
        "operationId": operation_id,
        "summary": "Model management: reserved to operators, never forwarded",
        "tags": ["ollama"],
        "responses": {"403": _json("OllamaError", "refused")},
    }


def ollama_paths(security: list[Schema]) -> dict[str, Schema]:
    return {
        "/api/version": {"get": _op("ollamaVersion", "Ollama's version", "OllamaVersion", [])},
        "/api/tags": {"get": _op("ollamaTags", "The models", "OllamaTags", security)},
        "/api/ps": {"get": _op("ollamaPs", "The models loaded", "OllamaRunning", security)},
        "/api/show": {
            "post": _op(
                "ollamaShow", "One model", "OllamaShowResponse", security, "OllamaShowRequest"
            )
        },
        "/api/chat": {
            "post": _op(
                "ollamaChat",
                "Chat, as Ollama's /api/chat",
                "OllamaChatResponse",
                security,
                "OllamaChatRequest",
                ndjson=True,
            )
        },
        "/api/generate": {
            "post": _op(
                "ollamaGenerate",
                "Complete a prompt, as Ollama's /api/generate",
                "OllamaGenerateResponse",
                security,
                "OllamaGenerateRequest",
                ndjson=True,
            )
        },
        "/api/embed": {
            "post": _op(
                "ollamaEmbed", "Embed texts", "OllamaEmbedResponse", security, "OllamaEmbedRequest"
            )
        },
        "/api/embeddings": {
            "post": _op(
                "ollamaEmbeddings",
                "Embed one text (Ollama's legacy route)",
                "OllamaEmbeddingsResponse",
                security,
                "OllamaEmbeddingsRequest",
            )
        },
        "/api/pull": {"post": _managed("ollamaPull")},
        "/api/push": {"post": _managed("ollamaPush")},
        "/api/create": {"post": _managed("ollamaCreate")},
        "/api/copy": {"post": _managed("ollamaCopy")},
        "/api/delete": {"delete": _managed("ollamaDelete")},
        "/api/blobs/{digest}": {
            "post": {
                **_managed("ollamaBlobs"),
                "parameters": [{"name": "digest", "in": "path", "required": True, "schema": _STR}],
            }
        },
    }
