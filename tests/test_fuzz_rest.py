"""Property-based run of the REST face from its own OpenAPI document (schemathesis).

Every operation of ``GET /openapi.json`` (the native routes and the OpenAI-compatible
``/v1`` ones) gets schema-valid and schema-invalid requests, sent over real HTTP to the
shim (uvicorn in a thread), which calls the real gRPC server (its own loop, in another
thread), which calls the Ollama emulator. Each answer must be no 5xx, and have a status,
a content type and a body that the document gives the operation.

Bounded: ``MAX_EXAMPLES`` per operation, a fixed seed (the same cases on every run),
a timeout on every request (an event stream is read for at most ``MAX_STREAM_EVENTS``
events, then closed), an emulator without delays, and small server limits so that the
generated inputs reach them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case, Response
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ollama_emulator import Emulator, Faults
from ollama_emulator.runner import ThreadedServer
from rest_shim.app import create_app
from rest_shim.openapi import openapi_document
from server.config import Settings
from tests.conftest import make_settings
from tests.threaded_stack import ThreadedGrpcServer

MAX_EXAMPLES = 40
# Per request; the emulator answers in milliseconds.
REQUEST_TIMEOUT = 10.0
MAX_STREAM_EVENTS = 20
SEED = 20250611

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _served_document() -> dict[str, Any]:
    """The document as a client receives it (a JSON copy, not the cached object)."""
    document: dict[str, Any] = json.loads(json.dumps(openapi_document()))
    return document


# --- what one event of each stream is ------------------------------------------------
#
# The served document gives text/event-stream the schema {"type": "string"}. A schema
# for an event stream describes each event, an object {event, data, id, retry} (as
# OpenAPI 3.2's itemSchema does and schemathesis reads it), so every event, good or not,
# fails that schema. Until the document describes the events, these stand in for the
# served schemas, so that response_schema_conformance stays on for the streams too and
# checks the JSON of every event. A document that changes its stream schemas is used as
# it is (see _with_event_schemas).


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json_text(schema: dict[str, Any]) -> dict[str, Any]:
    return {"type": "string", "contentMediaType": "application/json", "contentSchema": schema}


def _event(event: str, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["event", "data"],
        "properties": {"event": {"type": "string", "enum": [event]}, "data": data},
    }


NATIVE_STREAM_EVENT: dict[str, Any] = {
    "oneOf": [
        _event(
            "message",
            _json_text(
                {
                    "allOf": [_ref("ChatStreamEvent")],
                    "required": ["content", "thinking", "done", "model"],
                }
            ),
        ),
        _event(
            "error",
            _json_text(
                {
                    "allOf": [_ref("Error")],
                    "required": ["http_status"],
                    "properties": {"http_status": {"type": "integer"}},
                }
            ),
        ),
    ]
}
OPENAI_STREAM_EVENT: dict[str, Any] = _event(
    "message",
    {
        "anyOf": [
            {"type": "string", "enum": ["[DONE]"]},
            _json_text(
                {
                    "anyOf": [
                        {"allOf": [_ref("OpenAIChatChunk")], "required": ["object", "choices"]},
                        _ref("OpenAIError"),
                    ]
                }
            ),
        ]
    },
)
STREAMS = {
    "/chat": NATIVE_STREAM_EVENT,
    "/chat/stream": NATIVE_STREAM_EVENT,
    "/v1/chat/completions": OPENAI_STREAM_EVENT,
}


def _is_served_string_schema(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "string" and set(schema) <= {"type", "description"}


def _with_event_schemas(document: dict[str, Any]) -> dict[str, Any]:
    patched: dict[str, Any] = json.loads(json.dumps(document))
    for path, event in STREAMS.items():
        media = patched["paths"][path]["post"]["responses"]["200"]["content"]["text/event-stream"]
        if _is_served_string_schema(media["schema"]):
            media["schema"] = event
    return patched


def _config() -> schemathesis.Config:
    # Built here, not discovered: no schemathesis.toml and no environment is read.
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "max-stream-events": MAX_STREAM_EVENTS,
            "request-timeout": REQUEST_TIMEOUT,
            "generation": {"mode": "all"},
            # Reproducers must show every value ("max_tokens" is no secret).
            "output": {"sanitization": {"enabled": False}},
        }
    )


SERVED = _served_document()
SCHEMA = schemathesis.openapi.from_dict(_with_event_schemas(SERVED), config=_config())


# --- the stack ------------------------------------------------------------------------


def fuzz_settings(emulator_url: str) -> Settings:
    return make_settings(
        emulator_url,
        max_tokens=16,
        max_message_chars=256,
        max_history=8,
        max_embed_inputs=8,
        max_request_bytes=32 * 1024,
    )


@pytest.fixture(scope="module")
def fuzz_emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture(scope="module")
def shim_url(fuzz_emulator: Emulator) -> Iterator[str]:
    """The REST shim, in front of the real gRPC server, in front of the emulator."""
    base = fuzz_settings(fuzz_emulator.url)
    with ThreadedGrpcServer(base) as grpc_server:
        app = create_app(replace(base, grpc_target=grpc_server.target))
        with ThreadedServer(app) as shim:
            yield shim.url


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False  # no proxy settings or .netrc from the environment
        yield session


# --- the tests ------------------------------------------------------------------------


def test_the_fuzzed_document_is_the_served_one(shim_url: str, http: requests.Session) -> None:
    r = http.get(f"{shim_url}/openapi.json", timeout=REQUEST_TIMEOUT)
    assert r.status_code == 200
    assert r.json() == SERVED
    results = list(SCHEMA.get_all_operations())
    assert all(isinstance(result, Ok) for result in results), results
    labels = {result.ok().label for result in results if isinstance(result, Ok)}
    assert labels >= {
        "GET /",
        "GET /health",
        "GET /livez",
        "GET /readyz",
        "GET /models",
        "POST /chat",
        "POST /chat/stream",
        "POST /embeddings",
        "GET /stats",
        "POST /v1/chat/completions",
        "GET /v1/models",
        "GET /v1/models/{model}",
        "POST /v1/embeddings",
    }


@SCHEMA.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)
def test_rest_api_conforms_to_its_document(
    case: Case[Any], shim_url: str, http: requests.Session
) -> None:
    case.call_and_validate(base_url=shim_url, session=http, checks=CHECKS)


# Answers random inputs rarely reach (a known model, a stream that completes, an error
# in the middle of a stream), checked against the document the same way.


def _events(response: Response) -> list[tuple[str, str]]:
    """(event, data) of every event of an event stream."""
    events = []
    for block in response.text.replace("\r\n", "\n").split("\n\n"):
        lines = [line for line in block.split("\n") if line]
        if not lines:
            continue
        fields = dict(line.split(": ", 1) for line in lines)
        events.append((fields.get("event", "message"), fields["data"]))
    return events


def _call(shim_url: str, http: requests.Session, method: str, path: str, **case: Any) -> Response:
    response = (
        SCHEMA[path][method]
        .Case(media_type="application/json" if "body" in case else None, **case)
        .call_and_validate(base_url=shim_url, session=http, checks=CHECKS)
    )
    assert response.status_code == 200, response.text
    return response


def _json(response: Response) -> Any:
    assert response.headers["content-type"][0].startswith("application/json")
    return json.loads(response.text)


def test_native_answers_conform(shim_url: str, http: requests.Session) -> None:
    reply = _json(
        _call(shim_url, http, "POST", "/chat", body={"message": "hi", "model": "llama3.2"})
    )
    assert reply["response"] == "Echo: hi"
    assert reply["total_tokens"] == reply["prompt_tokens"] + reply["response_tokens"]

    body = {"message": "hello there", "model": "gpt-oss:20b", "think": "low", "stream": True}
    events = _events(_call(shim_url, http, "POST", "/chat", body=body))
    final = json.loads(events[-1][1])
    assert [e for e, _ in events] == ["message"] * len(events)
    assert final["done"] is True and final["response_tokens"] > 0

    body = {"message": "one two three", "model": "llama3.2", "max_tokens": 2}
    events = _events(_call(shim_url, http, "POST", "/chat/stream", body=body))
    assert json.loads(events[-1][1])["done_reason"] == "length"

    embedded = _json(_call(shim_url, http, "POST", "/embeddings", body={"input": ["a", "b c"]}))
    assert len(embedded["embeddings"]) == 2


def test_openai_answers_conform(shim_url: str, http: requests.Session) -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    body: dict[str, Any] = {"model": "llama3.2", "messages": messages}
    completion = _json(_call(shim_url, http, "POST", "/v1/chat/completions", body=body))
    assert completion["choices"][0]["message"]["content"] == "Echo: hi"

    body |= {"stream": True, "stream_options": {"include_usage": True}}
    events = _events(_call(shim_url, http, "POST", "/v1/chat/completions", body=body))
    assert events[-1] == ("message", "[DONE]")
    assert json.loads(events[-2][1])["usage"]["completion_tokens"] > 0

    found = _json(
        _call(shim_url, http, "GET", "/v1/models/{model}", path_parameters={"model": "bge-m3"})
    )
    assert found["id"] == "bge-m3:latest"

    body = {"input": ["x", "y"], "encoding_format": "base64"}
    embedded = _json(_call(shim_url, http, "POST", "/v1/embeddings", body=body))
    assert [d["index"] for d in embedded["data"]] == [0, 1]


def test_errors_in_the_middle_of_streams_conform(
    shim_url: str, http: requests.Session, fuzz_emulator: Emulator
) -> None:
    fuzz_emulator.faults = Faults(error_after_chunks=1, times=1)
    body: dict[str, Any] = {"message": "a b c d", "model": "llama3.2"}
    events = _events(_call(shim_url, http, "POST", "/chat/stream", body=body))
    assert events[-1][0] == "error"
    assert json.loads(events[-1][1])["code"] == "ollama_error"

    fuzz_emulator.faults = Faults(error_after_chunks=1, times=1)
    body = {
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "a b c d"}],
        "stream": True,
    }
    events = _events(_call(shim_url, http, "POST", "/v1/chat/completions", body=body))
    assert events[-1] == ("message", "[DONE]")
    assert json.loads(events[-2][1])["error"]["code"] == "ollama_error"
    fuzz_emulator.faults = Faults()
