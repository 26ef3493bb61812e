"""Each request goes where its model is: hosts that hold it, the one that has it loaded
first; lanes per model; fallback models; warm (preloaded) models and the keep_alive
policy. Two or three emulators hold different models, as Ollama hosts do."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest

from generated.llm.v1 import llm_service_pb2 as pb
from ollama_emulator import Emulator, ModelSpec, default_models
from tests.conftest import RestStarter, StackFactory, wait_until

LLAMA31 = ModelSpec(
    name="llama3.1:8b",
    family="llama",
    parameter_size="8.0B",
    quantization_level="Q4_K_M",
    size=4_920_753_328,
    capabilities=("completion", "tools"),
)


def models(*names: str) -> list[ModelSpec]:
    by_name = {m.key: m for m in [*default_models(), LLAMA31]}
    return [by_name[n] for n in names]


@pytest.fixture
def host_a() -> Iterator[Emulator]:
    with Emulator(models("gpt-oss:20b", "bge-m3:latest")) as emu:
        yield emu


@pytest.fixture
def host_b() -> Iterator[Emulator]:
    with Emulator(models("llama3.1:8b")) as emu:
        yield emu


def chat(model: str, message: str = "hi") -> pb.ChatRequest:
    return pb.ChatRequest(message=message, model=model)


async def test_every_request_lands_on_a_host_that_has_its_model(
    make_stack: StackFactory, host_a: Emulator, host_b: Emulator
) -> None:
    stack = await make_stack(f"{host_b.url},{host_a.url}")
    assert (await stack.server.monitor.status()).reachable
    for _ in range(3):
        assert (await stack.stub.Chat(chat("gpt-oss:20b"))).response == "Echo: hi"
        assert (await stack.stub.Chat(chat("llama3.1:8b"))).response == "Echo: hi"
        await stack.stub.Embed(pb.EmbedRequest(input=["x"], model="bge-m3"))
    assert [r.body["model"] for r in host_a.requests_to("/api/chat") if r.body] == [
        "gpt-oss:20b"
    ] * 3
    assert [r.body["model"] for r in host_b.requests_to("/api/chat") if r.body] == [
        "llama3.1:8b"
    ] * 3
    assert len(host_a.requests_to("/api/embed")) == 3 and not host_b.requests_to("/api/embed")
    health = await stack.stub.Health(pb.HealthRequest())
    listed = {h.url: list(h.models) for h in health.ollama.hosts}
    assert listed == {host_b.url: ["llama3.1:8b"], host_a.url: ["bge-m3:latest", "gpt-oss:20b"]}
    loaded = {h.url: [m.name for m in h.loaded] for h in health.ollama.hosts}
    assert loaded[host_b.url] == ["llama3.1:8b"]


async def test_a_model_loaded_on_one_host_goes_there(make_stack: StackFactory) -> None:
    with (
        Emulator(models("llama3.2:latest")) as cold,
        Emulator(models("llama3.2:latest")) as warm,
    ):
        warm.load("llama3.2")
        stack = await make_stack(f"{cold.url},{warm.url}")
        await stack.server.monitor.status()
        for _ in range(4):
            await stack.stub.Chat(chat("llama3.2"))
        assert len(warm.requests_to("/api/chat")) == 4
        assert cold.requests_to("/api/chat") == []
        stats = await stack.stub.Stats(pb.StatsRequest())
        by_url = {h.url: h for h in stats.hosts}
        assert [m.name for m in by_url[warm.url].loaded] == ["llama3.2:latest"]
        assert by_url[warm.url].loaded[0].size_vram > 0


async def test_unknown_models_and_models_only_on_down_hosts(
    make_stack: StackFactory, host_a: Emulator, host_b: Emulator
) -> None:
    stack = await make_stack(f"{host_a.url},{host_b.url}")
    await stack.server.monitor.status()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Chat(chat("qwen3:4b"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert host_a.url in (err.value.details() or "") and host_b.url in (err.value.details() or "")
    assert host_a.requests_to("/api/chat") == host_b.requests_to("/api/chat") == []
    host_b.stop()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Chat(chat("llama3.1:8b"))
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_embeddings_have_a_lane_of_their_own(
    make_stack: StackFactory, emulator: Emulator
) -> None:
    stack = await make_stack(
        model_limits=(("gpt-oss:20b", 2), ("bge-m3", 16)),
        max_concurrent=1,
        max_queue=128,
        max_tokens=100_000,
    )
    emulator.faults.token_delay = 0.05
    emulator.faults.answer_tokens = 10_000  # minutes of answer: they hold their slots
    streams = [
        stack.stub.ChatStream(pb.ChatStreamRequest(request=chat("gpt-oss:20b"))) for _ in range(2)
    ]
    for call in streams:
        await call.read()
    embeddings = await asyncio.wait_for(
        asyncio.gather(
            *(
                stack.stub.Embed(pb.EmbedRequest(input=[f"text {i}"], model="bge-m3"))
                for i in range(100)
            )
        ),
        60,
    )
    assert len(embeddings) == 100 and all(e.embeddings for e in embeddings)
    stats = await stack.stub.Stats(pb.StatsRequest())
    lanes = {lane.name: lane for lane in stats.lanes}
    assert (lanes["gpt-oss:20b"].limit, lanes["gpt-oss:20b"].running) == (2, 2)
    assert (lanes["bge-m3"].limit, lanes["bge-m3"].running) == (16, 0)
    assert lanes["*"].limit == 1
    exposition = stack.server.metrics.exposition().decode()
    assert 'llm_lane_running{lane="gpt-oss:20b"} 2.0' in exposition
    for call in streams:
        call.cancel()


async def test_a_fallback_answers_when_the_primarys_hosts_are_down(
    make_stack: StackFactory, serve_rest: RestStarter, host_a: Emulator, host_b: Emulator
) -> None:
    stack = await make_stack(
        f"{host_a.url},{host_b.url}", fallbacks=(("gpt-oss:20b", ("llama3.1:8b",)),)
    )
    await stack.server.monitor.status()
    host_a.stop()
    reply = await stack.stub.Chat(chat("gpt-oss:20b"))
    assert (reply.model, reply.fallback_from) == ("llama3.1:8b", "gpt-oss:20b")
    events = [
        e
        async for e in stack.stub.ChatStream(
            pb.ChatStreamRequest(request=chat("gpt-oss:20b", "a b"))
        )
    ]
    assert all(e.fallback_from == "gpt-oss:20b" for e in events)
    assert events[-1].model == "llama3.1:8b"
    base = await serve_rest(stack)
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        replies: dict[str, Any] = {}
        native = await http.post("/chat", json={"message": "hi", "model": "gpt-oss:20b"})
        replies["native"] = (native, native.json()["model"])
        openai = await http.post(
            "/v1/chat/completions",
            json={"model": "gpt-oss:20b", "messages": [{"role": "user", "content": "hi"}]},
        )
        replies["openai"] = (openai, openai.json()["model"])
        ollama = await http.post(
            "/api/chat",
            json={
                "model": "gpt-oss:20b",
                "messages": [{"role": "user", "content": "hi"}],
                "stream": False,
            },
        )
        replies["ollama"] = (ollama, ollama.json()["model"])
        streamed = await http.post("/chat/stream", json={"message": "hi", "model": "gpt-oss:20b"})
        replies["native stream"] = (streamed, "llama3.1:8b")
    for face, (response, model) in replies.items():
        assert response.status_code == 200, (face, response.text)
        assert response.headers["x-llm-fallback-from"] == "gpt-oss:20b", face
        assert model == "llama3.1:8b", face
    stats = await stack.stub.Stats(pb.StatsRequest())
    assert stats.totals.fallbacks == 6
    assert stats.per_model["llama3.1:8b"].fallbacks == 6
    exposition = stack.server.metrics.exposition().decode()
    assert 'llm_fallbacks_total{fallback="llama3.1:8b",model="gpt-oss:20b"} 6.0' in exposition


async def test_no_fallback_once_the_answer_started_or_for_bad_requests(
    make_stack: StackFactory, emulator: Emulator
) -> None:
    stack = await make_stack(fallbacks=(("llama3.2", ("gpt-oss:20b",)),))
    emulator.faults.error_after_chunks = 2
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in stack.stub.ChatStream(
            pb.ChatStreamRequest(request=chat("llama3.2", "a b c d"))
        ):
            pass
    assert err.value.code() == grpc.StatusCode.INTERNAL  # the answer had begun
    emulator.faults.error_after_chunks = None
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Chat(pb.ChatRequest(message="hi", model="llama3.2", temperature=5))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {r.body["model"] for r in emulator.requests_to("/api/chat") if r.body} == {"llama3.2"}


async def test_preloaded_models_are_warm_from_the_start(make_stack: StackFactory) -> None:
    with Emulator() as emu:
        emu.faults.cold_load_delay = 1.0
        cold = await make_stack(emu.url)
        first = await cold.stub.Chat(chat("gpt-oss:20b"))
        assert first.durations.load_ns >= 1_000_000_000  # a cold load, as measured
        stack = await make_stack(emu.url, preload=("llama3.2",), cache_duration=0.2)

        async def warm() -> bool:
            return "llama3.2:latest" in emu.loaded

        await wait_until(warm, 10, "llama3.2 is preloaded")
        reply = await stack.stub.Chat(chat("llama3.2"))
        assert reply.durations.load_ns < 500_000_000  # no load delay on the first request
        preloads = [
            r.body for r in emu.requests_to("/api/generate") if r.body and not r.body["prompt"]
        ]
        assert [b["model"] for b in preloads] == ["llama3.2"]
        # A host that comes back (here between two checks, loads lost) is warmed again.
        emu.restart()
        assert "llama3.2:latest" not in emu.loaded
        await wait_until(warm, 10, "llama3.2 is preloaded on the host that came back")


async def test_keep_alive_policy(make_stack: StackFactory, emulator: Emulator) -> None:
    stack = await make_stack(keep_alive="30m")
    for asked, sent in (("", "30m"), ("0", "30m"), ("1h", "1h"), ("-1", -1)):
        await stack.stub.Chat(pb.ChatRequest(message="hi", model="llama3.2", keep_alive=asked))
        body = emulator.requests_to("/api/chat")[-1].body
        assert body is not None and body["keep_alive"] == sent, asked
    lenient = await make_stack(keep_alive_lower=True)
    await lenient.stub.Chat(pb.ChatRequest(message="hi", model="llama3.2", keep_alive="0"))
    body = emulator.requests_to("/api/chat")[-1].body
    assert body is not None and body["keep_alive"] == 0
