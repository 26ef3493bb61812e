"""Ollama's own API on the service, driven by the official ``ollama`` client (sync and
async, streamed and not) and by raw replays of what the platform's callers send; each
answer is compared with what the emulator gives for the same request directly."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import ollama
import pytest

from generated.llm.v1 import llm_service_pb2 as pb
from ollama_emulator import Emulator
from tests.conftest import WEATHER, RestStarter, Stack, StackFactory

MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "why is the sky blue?"},
]
# What the platform's RAG service sends today, straight to Ollama.
RAG_OPTIONS = {"temperature": 0.1, "top_p": 0.9, "num_predict": 200}
SAME = ("done", "done_reason", "prompt_eval_count", "eval_count")


@pytest.fixture
async def face(stack: Stack, serve_rest: RestStarter) -> str:
    return await serve_rest(stack)


@pytest.fixture
async def http(face: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=face, timeout=30) as client:
        yield client


@pytest.fixture
async def ours(face: str) -> AsyncIterator[ollama.AsyncClient]:
    """The official client, pointed at the service."""
    async with ollama.AsyncClient(host=face) as client:
        yield client


@pytest.fixture
async def theirs(emulator: Emulator) -> AsyncIterator[ollama.AsyncClient]:
    """The official client, pointed at Ollama (the emulator) directly."""
    async with ollama.AsyncClient(host=emulator.url) as client:
        yield client


def same(ours: Any, theirs: Any, *extra: str) -> None:
    """The fields a caller reads agree (timestamps and durations differ by nature)."""
    for key in (*SAME, *extra):
        assert getattr(ours, key) == getattr(theirs, key), key


async def test_generate_as_the_rag_service_calls_it(
    ours: ollama.AsyncClient, theirs: ollama.AsyncClient, emulator: Emulator
) -> None:
    mine = await ours.generate(
        model="llama3.2", prompt="classify: hello", options=RAG_OPTIONS, stream=False
    )
    direct = await theirs.generate(
        model="llama3.2", prompt="classify: hello", options=RAG_OPTIONS, stream=False
    )
    assert mine.response == direct.response
    same(mine, direct, "context")
    sent = emulator.requests_to("/api/generate")[0].body
    assert sent is not None
    assert sent["options"]["temperature"] == 0.1 and sent["options"]["num_predict"] == 200


async def test_generate_and_chat_with_the_sync_client(face: str, emulator: Emulator) -> None:
    # The sync client blocks: it runs in a thread, the service in this event loop.
    with ollama.Client(host=face) as client, ollama.Client(host=emulator.url) as direct:
        await asyncio.to_thread(sync_round, client, direct)


def sync_round(client: ollama.Client, direct: ollama.Client) -> None:
    ours = client.generate(model="gpt-oss:20b", prompt="why", system="be brief", think="high")
    theirs = direct.generate(model="gpt-oss:20b", prompt="why", system="be brief", think="high")
    assert (ours.response, ours.thinking) == (theirs.response, theirs.thinking)
    same(ours, theirs)
    parts = list(client.chat(model="llama3.2", messages=MESSAGES, stream=True))
    direct_parts = list(direct.chat(model="llama3.2", messages=MESSAGES, stream=True))
    assert [p.message.content for p in parts] == [p.message.content for p in direct_parts]
    same(parts[-1], direct_parts[-1])


async def test_streams_match_ollamas_chunk_for_chunk(
    ours: ollama.AsyncClient, theirs: ollama.AsyncClient
) -> None:
    mine = [p async for p in await ours.generate(model="gpt-oss:20b", prompt="a b c", stream=True)]
    direct = [
        p async for p in await theirs.generate(model="gpt-oss:20b", prompt="a b c", stream=True)
    ]
    assert [(p.response, p.thinking) for p in mine] == [(p.response, p.thinking) for p in direct]
    same(mine[-1], direct[-1], "context")
    chat = [p async for p in await ours.chat(model="gpt-oss:20b", messages=MESSAGES, stream=True)]
    plain = [
        p async for p in await theirs.chat(model="gpt-oss:20b", messages=MESSAGES, stream=True)
    ]
    assert [(p.message.content, p.message.thinking) for p in chat] == [
        (p.message.content, p.message.thinking) for p in plain
    ]
    same(chat[-1], plain[-1])


async def test_stream_is_the_default_and_ndjson(http: httpx.AsyncClient) -> None:
    for path, body in (
        ("/api/chat", {"model": "llama3.2", "messages": MESSAGES}),
        ("/api/generate", {"model": "llama3.2", "prompt": "one two three"}),
    ):
        reply = await http.post(path, json=body)
        assert reply.status_code == 200
        assert reply.headers["content-type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in reply.text.splitlines()]
        assert len(lines) > 2
        assert [line["done"] for line in lines] == [False] * (len(lines) - 1) + [True]
        assert lines[-1]["done_reason"] == "stop" and lines[-1]["eval_count"] > 0
        assert all(line["created_at"].endswith("Z") for line in lines)
        single = await http.post(path, json={**body, "stream": False})
        assert single.headers["content-type"] == "application/json"
        assert single.json()["done"] is True


async def test_legacy_embeddings_and_embed(
    ours: ollama.AsyncClient, theirs: ollama.AsyncClient, emulator: Emulator
) -> None:
    legacy = await ours.embeddings(model="bge-m3", prompt="search me", options={"num_ctx": 512})
    direct = await theirs.embeddings(model="bge-m3", prompt="search me")
    assert legacy.embedding == pytest.approx(direct.embedding, abs=1e-7)
    both = await ours.embed(model="bge-m3", input=["one", "two"], dimensions=64)
    direct_both = await theirs.embed(model="bge-m3", input=["one", "two"], dimensions=64)
    assert len(both.embeddings) == 2 and len(both.embeddings[0]) == 64
    for mine, plain in zip(both.embeddings, direct_both.embeddings, strict=True):
        assert mine == pytest.approx(plain, abs=1e-7)
    assert both.prompt_eval_count == direct_both.prompt_eval_count
    sent = emulator.requests_to("/api/embed")[0].body
    assert sent is not None and sent["options"] == {"num_ctx": 512}


async def test_catalogue_routes_read_like_ollamas(
    http: httpx.AsyncClient, ours: ollama.AsyncClient, emulator: Emulator
) -> None:
    async with httpx.AsyncClient(base_url=emulator.url) as direct:
        for method, path, body in (
            ("GET", "/api/tags", None),
            ("POST", "/api/show", {"model": "gemma3:4b"}),
            ("GET", "/api/version", None),
        ):
            via = await http.request(method, path, json=body)
            plain = await direct.request(method, path, json=body)
            assert via.status_code == plain.status_code == 200
            assert via.json() == plain.json(), path
        await http.post("/api/generate", json={"model": "llama3.2", "prompt": "x"})
        mine = (await http.get("/api/ps")).json()["models"]
        loaded = (await direct.get("/api/ps")).json()["models"]
    assert [m["name"] for m in mine] == [m["name"] for m in loaded]
    assert mine[0]["size_vram"] == loaded[0]["size_vram"]
    listed = await ours.list()
    assert "llama3.2:latest" in [m.model for m in listed.models]


async def test_every_option_passes_through(http: httpx.AsyncClient, emulator: Emulator) -> None:
    options = {
        **RAG_OPTIONS,
        "num_ctx": 8192,
        "top_k": 20,
        "repeat_penalty": 1.1,
        "mirostat": 2,
        "stop": ["\n\n"],
        "seed": 7,
        "embedding_only": True,
    }
    schema = {"type": "object", "properties": {"label": {"type": "string"}}, "required": ["label"]}
    body = {
        "model": "gpt-oss:20b",
        "messages": MESSAGES,
        "options": options,
        "format": schema,
        "think": "low",
        "keep_alive": "10m",
        "stream": False,
    }
    reply = await http.post("/api/chat", json=body)
    assert reply.status_code == 200, reply.text
    assert "label" in json.loads(reply.json()["message"]["content"])
    sent = emulator.requests_to("/api/chat")[0].body
    assert sent is not None
    assert sent["options"] == options
    assert (sent["format"], sent["think"], sent["keep_alive"]) == (schema, "low", "10m")
    assert "temperature" in sent["options"]  # the caller's, not the service's default


async def test_unset_sampling_is_left_to_the_model(
    http: httpx.AsyncClient, emulator: Emulator
) -> None:
    await http.post("/api/generate", json={"model": "llama3.2", "prompt": "x", "stream": False})
    sent = emulator.requests_to("/api/generate")[0].body
    assert sent is not None
    assert "temperature" not in sent["options"] and "top_p" not in sent["options"]


async def test_tools_images_and_tool_messages_pass_through(
    ours: ollama.AsyncClient, theirs: ollama.AsyncClient, emulator: Emulator
) -> None:
    client = ours
    asked = await client.chat(
        model="llama3.2", messages=[{"role": "user", "content": "Paris?"}], tools=[WEATHER]
    )
    direct = await theirs.chat(
        model="llama3.2", messages=[{"role": "user", "content": "Paris?"}], tools=[WEATHER]
    )
    assert asked.message.tool_calls == direct.message.tool_calls
    (call,) = asked.message.tool_calls or []
    answered = await client.chat(
        model="llama3.2",
        messages=[
            {"role": "user", "content": "Paris?"},
            asked.message,
            {"role": "tool", "content": "18 degrees", "tool_name": call.function.name},
        ],
        tools=[WEATHER],
    )
    assert answered.message.content == "Echo: 18 degrees"
    sent = emulator.requests_to("/api/chat")[-1].body
    assert sent is not None and sent["messages"][-1]["tool_name"] == "get_weather"
    picture = b"\x89PNG\r\n\x1a\n-not-really-a-png"
    seen = await client.generate(model="gemma3:4b", prompt="what is this?", images=[picture])
    direct_seen = await theirs.generate(model="gemma3:4b", prompt="what is this?", images=[picture])
    assert seen.response == direct_seen.response


async def test_errors_are_ollamas(
    http: httpx.AsyncClient, ours: ollama.AsyncClient, emulator: Emulator
) -> None:
    unknown = await http.post("/api/chat", json={"model": "nope", "messages": MESSAGES})
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "model 'nope' not found"}
    missing = await http.post("/api/generate", json={"prompt": "x"})
    assert (missing.status_code, missing.json()) == (400, {"error": "model is required"})
    embedder = await http.post(
        "/api/chat", json={"model": "bge-m3", "messages": MESSAGES, "stream": False}
    )
    async with httpx.AsyncClient(base_url=emulator.url) as plain:
        direct = await plain.post(
            "/api/chat", json={"model": "bge-m3", "messages": MESSAGES, "stream": False}
        )
    assert (embedder.status_code, embedder.json()) == (direct.status_code, direct.json())
    malformed = await http.post("/api/chat", content=b"{not json")
    assert malformed.status_code == 400 and "error" in malformed.json()
    with pytest.raises(ollama.ResponseError) as err:
        await ours.chat(model="nope", messages=MESSAGES)
    assert err.value.status_code == 404


async def test_an_error_after_the_first_chunk_is_an_error_line(
    http: httpx.AsyncClient, emulator: Emulator
) -> None:
    emulator.faults.error_after_chunks = 2
    reply = await http.post("/api/generate", json={"model": "llama3.2", "prompt": "a b c d"})
    assert reply.status_code == 200
    lines = [json.loads(line) for line in reply.text.splitlines()]
    assert [line.get("done") for line in lines[:-1]] == [False, False]
    assert lines[-1] == {"error": emulator.faults.error_message}


async def test_model_management_is_refused_and_never_forwarded(
    http: httpx.AsyncClient, emulator: Emulator
) -> None:
    for method, path in (
        ("POST", "/api/pull"),
        ("POST", "/api/push"),
        ("POST", "/api/create"),
        ("POST", "/api/copy"),
        ("DELETE", "/api/delete"),
        ("POST", "/api/blobs/sha256:abc"),
    ):
        reply = await http.request(method, path, json={"model": "llama3.2"})
        assert reply.status_code == 403, path
        assert "error" in reply.json()
    paths = {r.path for r in emulator.requests}
    assert not paths & {"/api/pull", "/api/push", "/api/create", "/api/copy", "/api/delete"}


async def test_an_empty_prompt_loads_the_model(http: httpx.AsyncClient) -> None:
    loaded = await http.post("/api/generate", json={"model": "llama3.2"})
    assert loaded.json()["done_reason"] == "load"
    # keep_alive 0 would unload a model others share: the operator's policy says no.
    kept = await http.post("/api/chat", json={"model": "llama3.2", "messages": [], "keep_alive": 0})
    assert kept.json()["done_reason"] == "load"
    assert kept.json()["message"] == {"role": "assistant", "content": ""}


async def test_callers_unload_when_the_operator_allows(
    make_stack: StackFactory, serve_rest: RestStarter
) -> None:
    stack = await make_stack(keep_alive_lower=True)
    async with httpx.AsyncClient(base_url=await serve_rest(stack), timeout=30) as http:
        unloaded = await http.post(
            "/api/chat", json={"model": "llama3.2", "messages": [], "keep_alive": 0}
        )
    assert unloaded.json()["done_reason"] == "unload"


async def test_keys_as_bearer_or_basic_credentials(
    make_stack: StackFactory, serve_rest: RestStarter
) -> None:
    stack = await make_stack(api_keys=("k-ollama",))
    base = await serve_rest(stack)

    def basic(user_and_key: str) -> dict[str, str]:
        """What LangChain and Open WebUI send for a URL with user:key@."""
        return {"Authorization": "Basic " + base64.b64encode(user_and_key.encode()).decode()}

    async with (
        ollama.AsyncClient(host=base) as none,
        ollama.AsyncClient(host=base, headers={"Authorization": "Bearer k-ollama"}) as bearer,
        ollama.AsyncClient(host=base, headers=basic("anyone:k-ollama")) as basic_ok,
        ollama.AsyncClient(host=base, headers=basic("anyone:nope")) as wrong,
    ):
        with pytest.raises(ollama.ResponseError) as err:
            await none.generate(model="llama3.2", prompt="x")
        assert err.value.status_code == 401
        assert (await bearer.generate(model="llama3.2", prompt="x")).response == "Echo: x"
        assert (await basic_ok.generate(model="llama3.2", prompt="x")).response == "Echo: x"
        with pytest.raises(ollama.ResponseError) as err:
            await wrong.list()
        assert err.value.status_code == 401


async def test_a_full_queue_is_ollamas_busy(
    make_stack: StackFactory, serve_rest: RestStarter, emulator: Emulator
) -> None:
    stack = await make_stack(max_concurrent=1, max_queue=0)
    base = await serve_rest(stack)
    emulator.faults.token_delay = 0.2
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        body = {"model": "llama3.2", "prompt": "a b c d e f g h"}
        async with client.stream("POST", "/api/generate", json=body) as first:
            lines = first.aiter_lines()  # kept: a dropped iterator closes the response
            await anext(lines)  # the stream holds the only slot
            busy = await client.post("/api/generate", json={**body, "stream": False})
    assert busy.status_code == 503
    assert busy.json() == {
        "error": "server busy, please try again.  maximum pending requests exceeded"
    }
    assert int(busy.headers["retry-after"]) >= 1


async def test_a_client_that_leaves_stops_the_generation(
    face: str, emulator: Emulator, stack: Stack
) -> None:
    emulator.faults.token_delay = 0.2
    async with httpx.AsyncClient(base_url=face, timeout=30) as client:
        body = {"model": "llama3.2", "messages": MESSAGES}
        async with client.stream("POST", "/api/chat", json=body) as reply:
            await anext(reply.aiter_lines())
    assert await emulator.wait_for_disconnect_async(timeout=5)
    await asyncio.wait_for(stack.server.stats.wait_for_total(1), 10)
    stats = await stack.stub.Stats(pb.StatsRequest())
    assert stats.per_method["ChatStream"].cancelled_requests == 1


async def test_failover_metrics_and_stats_apply(
    make_stack: StackFactory, serve_rest: RestStarter, emulator: Emulator
) -> None:
    with Emulator() as first:
        stack = await make_stack(f"{first.url},{emulator.url}")
        assert (await stack.server.monitor.status()).reachable
        first.stop()
        base = await serve_rest(stack)
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            reply = await client.post(
                "/api/generate", json={"model": "llama3.2", "prompt": "x", "stream": False}
            )
            assert reply.json()["response"] == "Echo: x"
            assert reply.headers["x-request-id"]
    stats = await stack.stub.Stats(pb.StatsRequest())
    assert stats.retries == 1
    assert stats.per_method["Generate"].successful_requests == 1
    exposition = stack.server.metrics.exposition().decode()
    assert 'llm_requests_total{code="OK",method="Generate",model="llama3.2"' in exposition


async def test_a_known_option_of_the_wrong_type_is_400_not_ollamas_500(
    http: httpx.AsyncClient, emulator: Emulator
) -> None:
    for options in ({"num_ctx": "big"}, {"num_gpu": 1.5}, {"use_mmap": "yes"}, {"stop": "x"}):
        reply = await http.post(
            "/api/generate",
            json={"model": "llama3.2", "prompt": "x", "options": options, "stream": False},
        )
        assert reply.status_code == 400, (options, reply.text)
        assert "must be of type" in reply.json()["error"]
    assert emulator.requests_to("/api/generate") == []
