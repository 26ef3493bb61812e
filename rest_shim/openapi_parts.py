"""What the OpenAPI document's hand-written parts are written with (``rest_shim.openapi``,
``rest_shim.openai_openapi``, ``rest_shim.ollama.openapi``, ``rest_shim.console.openapi``,
``rest_shim.usage``): JSON Schema shorthands, references to the document's own schemas,
JSON answers and request bodies, and operations that answer plain text."""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
NUM: Schema = {"type": "number"}
BOOL: Schema = {"type": "boolean"}
ANY_OBJECT: Schema = {"type": "object", "additionalProperties": True}


def obj(required: list[str] | None = None, **props: Schema) -> Schema:
    schema: Schema = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    return schema


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def array(items: Schema, **extra: Any) -> Schema:
    return {"type": "array", "items": items, **extra}


def one_of(*options: Schema) -> Schema:
    return {"oneOf": list(options)}


def json_answer(schema: str, description: str = "OK") -> Schema:
    """A response whose JSON body is the document's schema ``schema``."""
    return {"description": description, "content": {"application/json": {"schema": ref(schema)}}}


def json_body(schema: str) -> Schema:
    """A required JSON request body of the document's schema ``schema``."""
    return {"required": True, "content": {"application/json": {"schema": ref(schema)}}}


def text_operation(operation_id: str, summary: str, media_type: str) -> Schema:
    """An open operation whose answer is text of ``media_type`` (a page, a file...)."""
    content = {media_type: {"schema": {"type": "string"}}}
    return {
        "operationId": operation_id,
        "summary": summary,
        "responses": {"200": {"description": "OK", "content": content}},
    }
