"""Every REST error path: a real status code and ``{"status": "error", "code", "detail"}``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from ollama_emulator import Emulator, refused_url
from tests.conftest import RestStarter, Stack, StackFactory


def _error(r: httpx.Response, status: int) -> dict[str, str]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["status"] == "error"
    assert body["code"] and body["detail"]
    return body  # type: ignore[no-any-return]


@pytest.fixture
async def rest_down(
    make_stack: StackFactory, serve_rest: RestStarter
) -> AsyncIterator[httpx.AsyncClient]:
    """The shim and the server in front of an Ollama that refuses connections."""
    stack = await make_stack(refused_url())
    url = await serve_rest(stack)
    async with httpx.AsyncClient(base_url=url) as client:
        yield client


async def test_ollama_down(rest_down: httpx.AsyncClient) -> None:
    body = _error(await rest_down.post("/chat", json={"message": "hi"}), 503)
    assert body["code"] == "ollama_unavailable"
    r = await rest_down.get("/health")
    assert r.status_code == 503
    health = r.json()
    assert health["status"] == "unhealthy"
    assert health["services"]["ollama"]["status"] == "unhealthy"
    assert health["services"]["ollama"]["available_models"] == []
    assert (await rest_down.get("/readyz")).status_code == 503
    assert (await rest_down.get("/livez")).status_code == 200
    _error(await rest_down.get("/models"), 503)


async def test_grpc_server_down(start_shim: Callable[..., str], emulator: Emulator) -> None:
    from tests.conftest import make_settings

    port = int(refused_url().rsplit(":", 1)[1])
    url = start_shim(make_settings(emulator.url, grpc_target=f"127.0.0.1:{port}"))
    async with httpx.AsyncClient(base_url=url) as client:
        body = _error(await client.post("/chat", json={"message": "hi"}), 503)
        assert "gRPC server" in body["detail"]
        r = await client.get("/health")
        assert r.status_code == 503
        assert r.json()["status"] == "unhealthy"
        assert (await client.get("/livez")).status_code == 200
        assert (await client.get("/readyz")).status_code == 503


async def test_unknown_model_is_404(rest: httpx.AsyncClient) -> None:
    body = _error(await rest.post("/chat", json={"message": "hi", "model": "ghost"}), 404)
    assert body["code"] == "model_not_found"
    assert "ghost" in body["detail"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"message": ""}, "message"),
        ({"message": "hi", "max_tokens": 100000}, "max_tokens"),
        ({"message": "hi", "max_tokens": -1}, "max_tokens"),
        ({"message": "hi", "temperature": 9}, "temperature"),
        ({"message": "hi", "history": [{"role": "robot", "content": "x"}]}, "role"),
        ({"message": "hi", "think": "maybe"}, "think"),
    ],
)
async def test_invalid_values_are_400(
    rest: httpx.AsyncClient, payload: dict[str, object], field: str
) -> None:
    body = _error(await rest.post("/chat", json=payload), 400)
    assert body["code"] == "invalid_argument"
    assert field in body["detail"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({}, "message"),
        ({"model": "llama3.2"}, "message"),
        ({"message": 5}, "message"),
        ({"message": "hi", "max_tokens": "many"}, "max_tokens"),
        ({"message": "hi", "max_tokens": 1.5}, "max_tokens"),
        ({"message": "hi", "history": "earlier"}, "history"),
        ({"message": "hi", "history": [{"role": "user"}]}, "history[0]"),
        ({"message": "hi", "history": ["text"]}, "history[0]"),
        ({"message": "hi", "stream": "yes"}, "stream"),
        ({"message": "hi", "stop": "END"}, "stop"),
    ],
)
async def test_wrong_shapes_are_422(
    rest: httpx.AsyncClient, payload: dict[str, object], field: str
) -> None:
    body = _error(await rest.post("/chat", json=payload), 422)
    assert field in body["detail"]


async def test_json_that_is_not_an_object_is_422(rest: httpx.AsyncClient) -> None:
    _error(await rest.post("/chat", json=["message", "hi"]), 422)


async def test_malformed_json_is_400(rest: httpx.AsyncClient) -> None:
    r = await rest.post(
        "/chat", content=b'{"message": "hi"', headers={"content-type": "application/json"}
    )
    assert _error(r, 400)["code"] == "malformed_json"


async def test_oversize_body_is_413(rest: httpx.AsyncClient, stack: Stack) -> None:
    big = "x" * (stack.settings.max_request_bytes + 1)
    _error(await rest.post("/chat", json={"message": big}), 413)


async def test_oversize_body_without_length_is_413(rest: httpx.AsyncClient, stack: Stack) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"message": "'
        for _ in range(stack.settings.max_request_bytes // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    _error(await rest.post("/chat", content=chunks()), 413)


async def test_timeout_is_504(
    make_stack: StackFactory, serve_rest: RestStarter, emulator: Emulator
) -> None:
    stack = await make_stack(timeout=0.5)
    emulator.faults.load_delay = 30.0
    url = await serve_rest(stack)
    async with httpx.AsyncClient(base_url=url) as client:
        body = _error(await client.post("/chat", json={"message": "hi", "model": "llama3.2"}), 504)
    assert body["code"] == "ollama_timeout"


async def test_busy_is_429_with_retry_after(rest: httpx.AsyncClient, emulator: Emulator) -> None:
    emulator.faults.busy = True
    r = await rest.post("/chat", json={"message": "hi", "model": "llama3.2"})
    assert _error(r, 429)["code"] == "ollama_busy"
    assert int(r.headers["retry-after"]) >= 1


async def test_unknown_path_and_wrong_method(rest: httpx.AsyncClient) -> None:
    assert _error(await rest.get("/nowhere"), 404)["code"] == "not_found"
    r = await rest.get("/chat")
    assert _error(r, 405)["code"] == "method_not_allowed"
    assert "POST" in r.headers["allow"]


async def test_gateway_pass_through_keeps_status_and_json(rest: httpx.AsyncClient) -> None:
    """The Gateway forwards status codes and turns non-JSON bodies into {"detail"}:
    every error the shim gives is already JSON, so nothing is lost on the way."""
    for method, path, payload in [
        ("POST", "/chat", {"message": "hi", "model": "ghost"}),
        ("POST", "/chat", {"message": ""}),
        ("GET", "/nowhere", None),
    ]:
        r = await rest.request(method, path, json=payload)
        assert r.status_code >= 400
        forwarded = r.json()  # what the Gateway passes on, status unchanged
        assert forwarded["detail"]
