"""The service in front of a real model: llama.cpp's llama-server (an OpenAI-kind
upstream, LLM_UPSTREAMS) with SmolLM2, through every face. The answer, token counts
equal to llama.cpp's own, streaming as the model generates, a cancelled stream that
frees its slot at once, more streams than slots queued by the service, JSON-schema
answers. And one scenario run against both kinds of upstream (the emulator as Ollama,
llama.cpp as OpenAI-compatible): the same client code, the same behaviour."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import ollama
import openai
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from generated.llm.v1 import llm_service_pb2 as pb
from ollama_emulator import Emulator, ThreadedServer
from server.config import Upstream
from tests.conftest import RestStarter, Stack, StackFactory, wait_until
from tests.realmodel import LlamaServer, ensure

pytestmark = pytest.mark.realmodel

SYSTEM = "You are a helpful assistant."
QUESTION = "What is the capital of France?"


def ask(**kw: Any) -> pb.ChatRequest:
    return pb.ChatRequest(
        message=QUESTION, system=SYSTEM, temperature=0, seed=42, max_tokens=32, **kw
    )


async def busy_slots(server: LlamaServer) -> int:
    async with httpx.AsyncClient(timeout=10) as http:
        slots = (await http.get(f"{server.url}/slots")).json()
    return sum(bool(s["is_processing"]) for s in slots)


@pytest.fixture
async def real(make_stack: StackFactory, llama_server: LlamaServer) -> Stack:
    upstream = Upstream("real", "openai", (llama_server.url,))
    return await make_stack(upstreams_spec=(upstream,), max_concurrent=2, timeout=120.0)


async def test_a_real_answer_with_llamas_own_token_counts(
    real: Stack, llama_server: LlamaServer
) -> None:
    model = llama_server.model_path
    reply = await real.stub.Chat(ask(model=model))
    assert "Paris" in reply.response
    async with httpx.AsyncClient(timeout=120) as http:
        answered = await http.post(
            f"{llama_server.url}/v1/chat/completions",
            json={
                "messages": [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": QUESTION},
                ],
                "temperature": 0,
                "seed": 42,
                "max_tokens": 32,
            },
        )
    direct = answered.json()
    assert reply.response == direct["choices"][0]["message"]["content"]
    assert reply.prompt_tokens == direct["usage"]["prompt_tokens"]
    assert reply.response_tokens == direct["usage"]["completion_tokens"]
    health = await real.stub.Health(pb.HealthRequest())
    (host,) = health.ollama.hosts
    assert host.status == "up" and model in host.models


async def test_streams_as_the_model_generates(real: Stack, llama_server: LlamaServer) -> None:
    arrivals: list[float] = []
    text = ""
    final = None
    async for event in real.stub.ChatStream(
        pb.ChatStreamRequest(request=ask(model=llama_server.model_path))
    ):
        if event.done:
            final = event
        else:
            arrivals.append(time.perf_counter())
            text += event.content
    assert final is not None and "Paris" in text
    # one event per generated token (the end-of-sequence token counts but says nothing)
    assert final.response_tokens - 1 <= len(arrivals) <= final.response_tokens
    assert arrivals[-1] - arrivals[0] > 0.01  # spread over the generation, not all at once
    assert final.time_to_first_token_ms > 0 and final.tokens_per_second > 0


async def test_a_cancelled_stream_frees_its_slot_at_once(
    real: Stack, llama_server: LlamaServer
) -> None:
    request = pb.ChatRequest(
        message="Write a long story about a cat.",
        system=SYSTEM,
        max_tokens=1500,
        model=llama_server.model_path,
    )
    call = real.stub.ChatStream(pb.ChatStreamRequest(request=request))
    await call.read()
    assert await busy_slots(llama_server) == 1
    call.cancel()

    async def idle() -> bool:
        return await busy_slots(llama_server) == 0

    await wait_until(idle, 5, "llama.cpp's slot is idle")
    await asyncio.wait_for(real.server.stats.wait_for_total(1), 10)
    stats = await real.stub.Stats(pb.StatsRequest())
    assert stats.totals.cancelled_requests == 1


async def test_more_streams_than_slots_queue_in_the_service(
    real: Stack, llama_server: LlamaServer
) -> None:
    request = pb.ChatStreamRequest(request=ask(model=llama_server.model_path))

    async def one() -> pb.ChatStreamResponse:
        events: list[pb.ChatStreamResponse] = [e async for e in real.stub.ChatStream(request)]
        return events[-1]

    waiting = asyncio.gather(*(one() for _ in range(4)))
    await real.server.limiter.wait_until_queued(2)  # two run (llama's slots), two wait
    finals = await asyncio.wait_for(waiting, 120)
    assert all(f.done and f.response_tokens > 0 for f in finals)


async def test_json_schema_and_every_face(
    real: Stack, serve_rest: RestStarter, llama_server: LlamaServer
) -> None:
    model = llama_server.model_path
    base = await serve_rest(real)
    schema = {
        "type": "object",
        "properties": {"capital": {"type": "string"}},
        "required": ["capital"],
    }
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        native = await http.post(
            "/chat",
            json={
                "message": QUESTION,
                "system": SYSTEM,
                "model": model,
                "max_tokens": 64,
                "temperature": 0,
                "format": schema,
            },
        )
        assert native.status_code == 200, native.text
        assert "capital" in json.loads(native.json()["response"])
    async with openai.AsyncOpenAI(base_url=base + "/v1", api_key="x", max_retries=0) as oai:
        answer = await oai.chat.completions.create(
            model=model,
            messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}],
            temperature=0,
            max_tokens=32,
        )
        assert "Paris" in (answer.choices[0].message.content or "")
        assert answer.usage is not None and answer.usage.completion_tokens > 0
    async with ollama.AsyncClient(host=base) as client:
        chat = await client.chat(
            model=model,
            messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}],
            options={"temperature": 0, "num_predict": 32},
        )
        assert "Paris" in (chat.message.content or "")
        assert chat.eval_count and chat.prompt_eval_count
        listed = await client.list()
        assert [m.model for m in listed.models] == [model]
        vector = await client.embed(model=model, input=["Paris"])
        assert len(vector.embeddings[0]) == 576


# --- one scenario, both kinds -----------------------------------------------------------


@dataclass
class Upstreams:
    stack: Stack
    model: str
    embedder: str


@pytest.fixture(params=["ollama", "openai"])
async def either(
    request: pytest.FixtureRequest,
    make_stack: StackFactory,
    emulator: Emulator,
    llama_server: LlamaServer,
) -> AsyncIterator[Upstreams]:
    if request.param == "ollama":
        yield Upstreams(await make_stack(emulator.url, max_concurrent=2), "llama3.2", "bge-m3")
        return
    upstream = Upstream("real", "openai", (llama_server.url,))
    stack = await make_stack(upstreams_spec=(upstream,), max_concurrent=2, timeout=120.0)
    yield Upstreams(stack, llama_server.model_path, llama_server.model_path)


async def test_the_same_client_code_behaves_the_same_on_either_kind(either: Upstreams) -> None:
    stub, model = either.stack.stub, either.model
    reply = await stub.Chat(pb.ChatRequest(message="hello", model=model, max_tokens=16))
    assert reply.response and reply.prompt_tokens > 0 and reply.response_tokens > 0
    assert reply.done_reason in ("stop", "length")
    events = [
        e
        async for e in stub.ChatStream(
            pb.ChatStreamRequest(
                request=pb.ChatRequest(message="hello", model=model, max_tokens=16)
            )
        )
    ]
    assert events[-1].done and len(events) - 1 in (
        events[-1].response_tokens,
        events[-1].response_tokens - 1,
    )
    embedded = await stub.Embed(pb.EmbedRequest(input=["a", "b"], model=either.embedder))
    assert len(embedded.embeddings) == 2 and embedded.dimensions > 0
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Chat(pb.ChatRequest(message="hi", model="no-such-model"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.Chat(pb.ChatRequest(message="hi", model=model, temperature=9))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    generated = await stub.Generate(pb.GenerateRequest(prompt="hello", model=model, max_tokens=8))
    assert generated.response and generated.response_tokens > 0
    assert generated.thinking == ""  # a model that does not think says nothing of it


async def test_a_server_still_loading_is_not_ready_not_down(make_stack: StackFactory) -> None:
    """llama.cpp answers /health with 503 while it loads its model (seen in
    test_realmodel_server): such a host is "not ready", and gets no requests."""

    async def loading(request: Any) -> JSONResponse:
        error = {"code": 503, "message": "Loading model", "type": "unavailable_error"}
        return JSONResponse({"error": error}, status_code=503)

    app = Starlette(routes=[Route("/health", loading)])
    with ThreadedServer(app) as server:
        upstream = Upstream("starting", "openai", (server.url,))
        stack = await make_stack(upstreams_spec=(upstream,))
        health = await stack.stub.Health(pb.HealthRequest())
    (host,) = health.ollama.hosts
    assert host.status == "not ready"
    assert "Loading model" in host.last_error
    assert health.status == "unhealthy"


async def test_a_refused_key_is_named_for_the_server_that_refused_it(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    """llama-server with ``--api-key`` answers /v1/models 401 to any other key: the
    health check says the OpenAI-compatible server refused the key, not "Ollama"."""
    keyed = LlamaServer(ensure(), tmp_path / "llama-server.log", parallel=1, ctx_size=512,
                        extra=("--api-key", "the-right-key"))  # fmt: skip
    keyed.start()
    try:
        upstream = Upstream("keyed", "openai", (keyed.url,), api_key="a-wrong-key")
        stack = await make_stack(upstreams_spec=(upstream,))
        health = await stack.stub.Health(pb.HealthRequest())
    finally:
        keyed.stop()
    assert health.ollama.status == "unhealthy"
    assert f"the OpenAI-compatible server at {keyed.url} refused" in health.ollama.error
    assert "Ollama" not in health.ollama.error
