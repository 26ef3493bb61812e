"""The REST face describes itself: a valid OpenAPI 3 document that matches the routes."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import httpx
from openapi_spec_validator import validate
from starlette.routing import Route

from rest_shim.app import create_app
from rest_shim.openapi import openapi_document
from tests.conftest import RestStarter, StackFactory, make_settings
from tests.deploy_files import ROOT


def _routes() -> set[tuple[str, str]]:
    app = create_app(make_settings("http://127.0.0.1:1"))
    found = set()
    for route in app.routes:
        assert isinstance(route, Route)
        for method in route.methods or ():
            if method != "HEAD":
                # OpenAPI spells Starlette's "{model:path}" as "{model}".
                found.add((re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path), method.lower()))
    return found


async def test_document_is_valid_and_matches_the_routes(rest: httpx.AsyncClient) -> None:
    r = await rest.get("/openapi.json")
    assert r.status_code == 200
    document = r.json()
    validate(document)
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert documented == _routes()
    chat = document["paths"]["/chat"]["post"]
    schema = chat["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = document["components"]["schemas"][schema.rsplit("/", 1)[-1]]
    assert body["anyOf"] == [{"required": ["message"]}, {"required": ["messages"]}]
    # Built from the proto: every ChatRequest field is there.
    for field in (
        "message",
        "model",
        "history",
        "max_tokens",
        "temperature",
        "top_p",
        "system",
        "stop",
        "seed",
        "format",
        "think",
        "messages",
        "images",
        "tools",
        "tool_choice",
        "options",
        "keep_alive",
    ):
        assert field in body["properties"]


async def test_docs_page_lists_every_route(rest: httpx.AsyncClient) -> None:
    r = await rest.get("/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    for path, _ in _routes():
        assert f"<code>{path}</code>" in r.text


# A request each operation accepts when the key is right: the open ones answer it with or
# without a key, the others with 401 without one.
_VALID_BODIES: dict[str, dict[str, object]] = {
    "/chat": {"message": "hi", "model": "llama3.2"},
    "/chat/stream": {"message": "hi", "model": "llama3.2"},
    "/embeddings": {"input": ["hi"], "model": "bge-m3"},
    "/v1/chat/completions": {
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "hi"}],
    },
    "/v1/embeddings": {"model": "bge-m3", "input": "hi"},
    "/api/show": {"model": "llama3.2"},
    "/api/chat": {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}]},
    "/api/generate": {"model": "llama3.2", "prompt": "hi"},
    "/api/embed": {"model": "bge-m3", "input": "hi"},
    "/api/embeddings": {"model": "bge-m3", "prompt": "hi"},
}


def test_every_operation_has_a_unique_operation_id() -> None:
    document = openapi_document()
    ids = [op.get("operationId") for ops in document["paths"].values() for op in ops.values()]
    assert all(isinstance(i, str) and re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", i) for i in ids), ids
    assert len(ids) == len(set(ids))
    # the /v1 operations carry OpenAI's own ids, which generated clients know
    v1 = {
        (path, method): op["operationId"]
        for path, ops in document["paths"].items()
        if path.startswith("/v1/")
        for method, op in ops.items()
    }
    assert v1 == {
        ("/v1/chat/completions", "post"): "createChatCompletion",
        ("/v1/models", "get"): "listModels",
        ("/v1/models/{model}", "get"): "retrieveModel",
        ("/v1/embeddings", "post"): "createEmbedding",
    }


async def test_security_in_the_document_is_what_the_routes_ask(
    make_stack: StackFactory, serve_rest: RestStarter, tmp_path: Path
) -> None:
    document = openapi_document()
    scheme = document["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    stack = await make_stack(api_keys=("the-key",), ledger=True, data_dir=str(tmp_path))
    url = await serve_rest(stack)
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        for path, ops in document["paths"].items():
            for method, op in ops.items():
                secured = op.get("security") == [{"bearerAuth": []}]
                assert secured or not op.get("security"), (path, method, op.get("security"))
                target = path.replace("{model}", "llama3.2")
                body = _VALID_BODIES.get(path)
                without = await client.request(method, target, json=body)
                assert (without.status_code == 401) == secured, (path, method, without.text)
                if secured:
                    assert "401" in op["responses"], (path, method)
                    with_key = await client.request(
                        method, target, json=body, headers={"authorization": "Bearer the-key"}
                    )
                    assert with_key.status_code == 200, (path, method, with_key.text)


async def test_version_is_the_packages_everywhere(rest: httpx.AsyncClient) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert importlib.metadata.version("llm-service") == pyproject
    assert (await rest.get("/")).json()["version"] == pyproject
    assert (await rest.get("/openapi.json")).json()["info"]["version"] == pyproject
