"""The OpenAI-compatible routes in the shim's OpenAPI document (merged by
``rest_shim.openapi``). Their shapes are OpenAI's, not the proto's, so they are
written out here, next to nothing else."""

from __future__ import annotations

from rest_shim.openapi_parts import (
    INT,
    NUM,
    STR,
    Schema,
    array,
    json_answer,
    json_body,
    obj,
    one_of,
    ref,
)

_USAGE = obj(prompt_tokens=INT, completion_tokens=INT, total_tokens=INT)
_TEXT_PART = obj(["type", "text"], type={"type": "string", "enum": ["text"]}, text=STR)
_ROLES = ["system", "developer", "user", "assistant", "tool"]


def openai_schemas() -> dict[str, Schema]:
    message = obj(
        ["role"],
        role={"type": "string", "enum": _ROLES},
        content=one_of(STR, array(_TEXT_PART)),
        reasoning_content=STR,
    )
    answer = obj(role=STR, content=STR, reasoning_content=STR)
    finish = {"type": "string", "enum": ["stop", "length"], "nullable": True}
    return {
        "OpenAIError": obj(
            ["error"],
            error=obj(
                ["message", "type"],
                message=STR,
                type=STR,
                code={"type": "string", "nullable": True},
                param={"type": "string", "nullable": True},
            ),
        ),
        "OpenAIChatRequest": obj(
            ["messages"],
            model=STR,
            messages=array(message, minItems=1),
            temperature=NUM,
            top_p=NUM,
            max_tokens=INT,
            max_completion_tokens=INT,
            stop=one_of(STR, array(STR)),
            seed=INT,
            response_format=obj(
                ["type"],
                type={"type": "string", "enum": ["text", "json_object", "json_schema"]},
                json_schema=obj(["schema"], name=STR, schema={"type": "object"}),
            ),
            reasoning_effort={"type": "string", "enum": ["low", "medium", "high"]},
            stream={"type": "boolean"},
            stream_options=obj(include_usage={"type": "boolean"}),
        ),
        "OpenAIChatCompletion": obj(
            id=STR,
            object={"type": "string", "enum": ["chat.completion"]},
            created=INT,
            model=STR,
            choices=array(obj(index=INT, message=answer, finish_reason=finish)),
            usage=_USAGE,
        ),
        "OpenAIChatChunk": obj(
            id=STR,
            object={"type": "string", "enum": ["chat.completion.chunk"]},
            created=INT,
            model=STR,
            choices=array(obj(index=INT, delta=answer, finish_reason=finish)),
            usage={**_USAGE, "nullable": True},
        ),
        "OpenAIModel": obj(id=STR, object=STR, created=INT, owned_by=STR),
        "OpenAIModelList": obj(object=STR, data=array(ref("OpenAIModel"))),
        "OpenAIEmbeddingRequest": obj(
            ["input"],
            input=one_of(STR, array(STR, minItems=1)),
            model=STR,
            encoding_format={"type": "string", "enum": ["float", "base64"]},
        ),
        "OpenAIEmbeddingList": obj(
            object=STR,
            data=array(
                obj(
                    object=STR,
                    index=INT,
                    embedding=one_of(array(NUM), {"type": "string", "format": "byte"}),
                )
            ),
            model=STR,
            usage=obj(prompt_tokens=INT, total_tokens=INT),
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


def _operation(
    operation_id: str, summary: str, reply: str, security: list[Schema], body: str | None = None
) -> Schema:
    errors = {status: json_answer("OpenAIError", what) for status, what in _ERRORS.items()}
    op: Schema = {
        "operationId": operation_id,
        "summary": summary,
        "tags": ["OpenAI-compatible"],
        "security": security,
        "responses": {"200": json_answer(reply), **errors},
    }
    if body is not None:
        op["requestBody"] = json_body(body)
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
        {"name": "model", "in": "path", "required": True, "schema": STR},
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
