"""Bad input of any size gets a short, clear INVALID_ARGUMENT / 400 on every face, and
nothing a caller sends can grow the service's memory or break its connections: model
names are bounded, unknown names are folded in Stats and metrics, long values are
quoted shortened, and JSON nests only so deep."""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit

import grpc
import httpx
import pytest

from generated.llm.v1 import llm_service_pb2 as pb
from ollama_emulator import refused_url
from server.validation import MAX_JSON_DEPTH, MAX_MODEL_NAME
from tests.conftest import Stack, StackFactory


def schema(depth: int) -> dict[str, object]:
    """A JSON schema of objects within objects, nesting ``depth`` levels (odd)."""
    value: dict[str, object] = {"type": "string"}
    for _ in range((depth - 1) // 2):
        value = {"type": "object", "properties": {"a": value}, "required": ["a"]}
    return value


def nested_text(depth: int) -> str:
    """JSON text of an object ``depth`` levels deep (built as text: any depth)."""
    return '{"a":' * (depth - 1) + '{"type":"string"}' + "}" * (depth - 1)


async def test_a_long_model_name_is_invalid_and_not_repeated(stack: Stack) -> None:
    name = "m" * 8000
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Chat(pb.ChatRequest(message="hi", model=name))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert str(MAX_MODEL_NAME) in (err.value.details() or "")
    assert len(err.value.details() or "") < 200
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Embed(pb.EmbedRequest(input=["x"], model="e" * (MAX_MODEL_NAME + 1)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # A name at the limit is a name like any other: Ollama says it does not know it.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Chat(pb.ChatRequest(message="hi", model="m" * MAX_MODEL_NAME))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_long_model_names_on_the_http_faces(rest: httpx.AsyncClient) -> None:
    name = "m" * 300
    native = await rest.post("/chat", json={"message": "hi", "model": name})
    assert native.status_code == 400
    assert native.json()["code"] == "invalid_argument"
    openai = await rest.post(
        "/v1/chat/completions",
        json={"model": name, "messages": [{"role": "user", "content": "hi"}]},
    )
    assert openai.status_code == 400
    assert openai.json()["error"]["param"] == "model"
    retrieve = await rest.get(f"/v1/models/{name}")
    assert retrieve.status_code == 400
    embed = await rest.post("/v1/embeddings", json={"model": name, "input": "x"})
    assert embed.status_code == 400


async def test_unknown_names_are_folded_in_stats_and_metrics(make_stack: StackFactory) -> None:
    stack = await make_stack(refused_url())  # Ollama down: every chat fails
    for i in range(70):
        with pytest.raises(grpc.aio.AioRpcError):
            await stack.stub.Chat(pb.ChatRequest(message="hi", model=f"nope-{i}-" + "x" * 200))
    stats = await stack.stub.Stats(pb.StatsRequest())
    assert set(stats.per_model) == {"other"}
    assert stats.per_model["other"].total_requests == 70
    assert len(stats.SerializeToString()) < 20_000
    exposition = stack.server.metrics.exposition().decode()
    assert "nope-" not in exposition


async def test_long_values_are_quoted_shortened(stack: Stack, rest: httpx.AsyncClient) -> None:
    role = "r" * 10_000
    request = pb.ChatRequest(message="hi", model="llama3.2")
    request.history.add(role=role, content="x")
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Chat(request)
    details = err.value.details() or ""
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "(10000 characters)" in details and len(details) < 300
    reply = await rest.post(
        "/v1/chat/completions",
        json={"model": "llama3.2", "messages": [{"role": role, "content": "hi"}]},
    )
    assert reply.status_code == 400
    assert len(reply.json()["error"]["message"]) < 300


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 300, 5000])
async def test_a_format_nested_too_deep_is_invalid_over_grpc(stack: Stack, depth: int) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Chat(
            pb.ChatRequest(message="hi", model="llama3.2", format=nested_text(depth))
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"nested deeper than {MAX_JSON_DEPTH} levels" in (err.value.details() or "")


async def test_a_format_within_the_depth_is_answered(stack: Stack) -> None:
    deepest = schema(MAX_JSON_DEPTH - 1)
    reply = await stack.stub.Chat(
        pb.ChatRequest(message="hi", model="llama3.2", format=json.dumps(deepest))
    )
    assert json.loads(reply.response)


async def test_deep_bodies_are_400_and_the_connection_stays_usable(
    stack: Stack, rest: httpx.AsyncClient
) -> None:
    base = str(rest.base_url)
    parts = urlsplit(base)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    for depth in (300, 1000, 5000):
        deep = nested_text(depth)
        for path, body in (
            ("/chat", f'{{"message": "hi", "model": "llama3.2", "format": {deep}}}'),
            (
                "/v1/chat/completions",
                '{"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], '
                '"response_format": {"type": "json_schema", '
                f'"json_schema": {{"name": "x", "schema": {deep}}}}}}}',
            ),
        ):
            status, answer = await exchange(reader, writer, parts.netloc, path, body)
            assert status == 400, answer
            assert b"nested deeper" in answer or b"not valid JSON" in answer
    # The same connection still serves a normal request.
    status, answer = await exchange(
        reader, writer, parts.netloc, "/chat", '{"message": "hi", "model": "llama3.2"}'
    )
    assert status == 200
    assert json.loads(answer)["response"] == "Echo: hi"
    writer.close()


async def exchange(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    host: str,
    path: str,
    body: str,
) -> tuple[int, bytes]:
    """One request (a JSON text) and its answer on a kept-alive connection."""
    payload = body.encode()
    writer.write(
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status = int(head.split(b" ", 2)[1])
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return status, await reader.readexactly(length)
