"""The REST face describes itself: a valid OpenAPI 3 document that matches the routes."""

from __future__ import annotations

import re

import httpx
from openapi_spec_validator import validate
from starlette.routing import Route

from rest_shim.app import create_app
from tests.conftest import make_settings


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
    assert body["required"] == ["message"]
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
    ):
        assert field in body["properties"]


async def test_docs_page_lists_every_route(rest: httpx.AsyncClient) -> None:
    r = await rest.get("/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    for path, _ in _routes():
        assert f"<code>{path}</code>" in r.text
