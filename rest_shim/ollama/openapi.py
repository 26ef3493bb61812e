"""Ollama's routes in the REST face's OpenAPI document (merged by ``rest_shim.openapi``).
The shapes are Ollama's (docs/api.md), written out here as the OpenAI ones are."""

from __future__ import annotations

from rest_shim.openapi_parts import (
    ANY_OBJECT,
    BOOL,
    INT,
    NUM,
    STR,
    Schema,
    array,
    json_answer,
    json_body,
    obj,
)

_OPTIONS: Schema = {
    "type": "object",
    "description": "Ollama's model options; keys the service does not know pass through",
    "properties": {
        **{k: INT for k in ("num_ctx", "num_predict", "top_k", "seed", "num_gpu", "mirostat")},
        **{k: NUM for k in ("temperature", "top_p", "min_p", "repeat_penalty")},
        "stop": array(STR),
    },
    "additionalProperties": True,
}
_FORMAT: Schema = {"oneOf": [{"type": "string", "enum": ["json", ""]}, ANY_OBJECT]}
_THINK: Schema = {"oneOf": [BOOL, {"type": "string", "enum": ["low", "medium", "high"]}]}
_KEEP_ALIVE: Schema = {"oneOf": [NUM, STR]}
_IMAGES: Schema = array({"type": "string", "format": "byte"})
_CALL: Schema = obj(
    ["function"],
    id=STR,
    function=obj(["name"], index=INT, name=STR, arguments=ANY_OBJECT),
)
_METRICS: dict[str, Schema] = {
    k: INT
    for k in (
        "total_duration",
        "load_duration",
        "prompt_eval_count",
        "prompt_eval_duration",
        "eval_count",
        "eval_duration",
    )
}
_LOGPROBS: Schema = array(
    obj(token=STR, logprob=NUM, bytes=array(INT), top_logprobs=array(ANY_OBJECT))
)
_DETAILS: Schema = obj(
    parent_model=STR,
    format=STR,
    family=STR,
    families={"type": "array", "items": STR, "nullable": True},
    parameter_size=STR,
    quantization_level=STR,
)
_GENERATION: dict[str, Schema] = {
    "model": {"type": "string", "minLength": 1},
    "format": _FORMAT,
    "options": _OPTIONS,
    "stream": BOOL,
    "think": _THINK,
    "keep_alive": _KEEP_ALIVE,
    "logprobs": BOOL,
    "top_logprobs": {"type": "integer", "minimum": 0, "maximum": 20},
}


def ollama_schemas() -> dict[str, Schema]:
    message = obj(
        ["role"],
        role={"type": "string", "enum": ["system", "user", "assistant", "tool"]},
        content=STR,
        thinking=STR,
        images=_IMAGES,
        tool_calls=array(_CALL),
        tool_name=STR,
        tool_call_id=STR,
    )
    tool = obj(
        ["function"],
        type={"type": "string", "enum": ["function"]},
        function=obj(["name"], name=STR, description=STR, parameters=ANY_OBJECT),
    )
    answer = obj(role=STR, content=STR, thinking=STR, images=_IMAGES, tool_calls=array(_CALL))
    return {
        "OllamaError": obj(["error"], error=STR),
        "OllamaChatRequest": obj(
            ["model"], messages=array(message), tools=array(tool), **_GENERATION
        ),
        "OllamaChatResponse": obj(
            ["model", "created_at", "message", "done"],
            model=STR,
            created_at=STR,
            message=answer,
            done=BOOL,
            done_reason=STR,
            logprobs=_LOGPROBS,
            **_METRICS,
        ),
        "OllamaGenerateRequest": obj(
            ["model"],
            prompt=STR,
            suffix=STR,
            system=STR,
            template=STR,
            raw=BOOL,
            images=_IMAGES,
            context=array(INT),
            **_GENERATION,
        ),
        "OllamaGenerateResponse": obj(
            ["model", "created_at", "response", "done"],
            model=STR,
            created_at=STR,
            response=STR,
            thinking=STR,
            done=BOOL,
            done_reason=STR,
            context=array(INT),
            logprobs=_LOGPROBS,
            **_METRICS,
        ),
        "OllamaEmbedRequest": obj(
            ["model", "input"],
            model={"type": "string", "minLength": 1},
            input={"oneOf": [STR, array(STR)]},
            truncate=BOOL,
            dimensions={"type": "integer", "minimum": 1},
            options=_OPTIONS,
            keep_alive=_KEEP_ALIVE,
        ),
        "OllamaEmbedResponse": obj(
            ["model", "embeddings"],
            model=STR,
            embeddings=array(array(NUM)),
            total_duration=INT,
            load_duration=INT,
            prompt_eval_count=INT,
        ),
        "OllamaEmbeddingsRequest": obj(
            ["model", "prompt"],
            model={"type": "string", "minLength": 1},
            prompt=STR,
            options=_OPTIONS,
            keep_alive=_KEEP_ALIVE,
        ),
        "OllamaEmbeddingsResponse": obj(["embedding"], embedding=array(NUM)),
        "OllamaShowRequest": obj(["model"], model={"type": "string", "minLength": 1}),
        "OllamaShowResponse": obj(
            license=STR,
            modelfile=STR,
            parameters=STR,
            template=STR,
            system=STR,
            details=_DETAILS,
            model_info=ANY_OBJECT,
            capabilities=array(STR),
            modified_at=STR,
        ),
        "OllamaTags": obj(
            ["models"],
            models=array(
                obj(
                    name=STR,
                    model=STR,
                    modified_at=STR,
                    size=INT,
                    digest=STR,
                    details=_DETAILS,
                )
            ),
        ),
        "OllamaRunning": obj(
            ["models"],
            models=array(
                obj(
                    name=STR,
                    model=STR,
                    size=INT,
                    digest=STR,
                    details=_DETAILS,
                    expires_at=STR,
                    size_vram=INT,
                    context_length=INT,
                )
            ),
        ),
        "OllamaVersion": obj(["version"], version=STR),
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


def _op(
    operation_id: str,
    summary: str,
    reply: str,
    security: list[Schema],
    body: str | None = None,
    ndjson: bool = False,
) -> Schema:
    ok = json_answer(reply)
    if ndjson:
        ok["description"] = "one JSON object, or NDJSON lines when streaming (the default)"
        ok["content"]["application/x-ndjson"] = {"schema": STR}
    responses: Schema = {"200": ok}
    responses.update({k: json_answer("OllamaError", v) for k, v in _ERRORS.items()})
    op: Schema = {
        "operationId": operation_id,
        "summary": summary,
        "tags": ["ollama"],
        "responses": responses,
        "security": security,
    }
    if body is not None:
        op["requestBody"] = json_body(body)
    return op


def _managed(operation_id: str) -> Schema:
    return {
        "operationId": operation_id,
        "summary": "Model management: reserved to operators, never forwarded",
        "tags": ["ollama"],
        "responses": {"403": json_answer("OllamaError", "refused")},
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
                "parameters": [{"name": "digest", "in": "path", "required": True, "schema": STR}],
            }
        },
    }
