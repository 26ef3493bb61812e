"""Faults injected with the emulator, and what the caller sees: failover between Ollama
hosts, timeouts that say which one fired, backpressure, and counters that add up."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from dataclasses import replace

import grpc
import httpx
import pytest

from generated.llm.v1 import llm_service_pb2 as pb
from ollama_emulator import Emulator, refused_url
from tests.conftest import RestStarter, StackFactory
from tests.streams import read_all


@pytest.fixture
def second() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


def chat(message: str = "hi") -> pb.ChatRequest:
    return pb.ChatRequest(message=message, model="llama3.2")


async def test_host_down_is_served_by_the_next(
    make_stack: StackFactory, emulator: Emulator, second: Emulator
) -> None:
    stack = await make_stack(f"{second.url},{emulator.url}")
    assert (await stack.server.monitor.status()).reachable  # both up, as far as it knows
    second.stop()  # then the first host in line dies
    reply = await stack.stub.Chat(chat())
    assert reply.response == "Echo: hi"
    stats = await stack.stub.Stats(pb.StatsRequest())
    hosts = {h.url: h for h in stats.hosts}
    assert hosts[second.url].status == "down"
    assert hosts[emulator.url].status == "up"
    assert stats.retries == 1
    # The dead host is skipped from now on: no second retry.
    await stack.stub.Chat(chat())
    assert (await stack.stub.Stats(pb.StatsRequest())).retries == stats.retries


async def test_all_hosts_down_is_unavailable_at_once(make_stack: StackFactory) -> None:
    a, b = refused_url(), refused_url()
    stack = await make_stack(f"{a},{b}", timeout=60.0)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Chat(chat(), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    details = err.value.details() or ""
    assert a in details and b in details


async def test_down_host_returns_after_cooldown_and_a_passing_check(
    make_stack: StackFactory, emulator: Emulator, second: Emulator
) -> None:
    stack = await make_stack(f"{second.url},{emulator.url}", cache_duration=0.0, host_cooldown=0.0)
    second.stop()
    await stack.stub.Chat(chat())  # fails over to the first emulator, marks second down
    health = await stack.stub.Health(pb.HealthRequest())
    status = {h.url: h.status for h in health.ollama.hosts}
    assert status == {second.url: "down", emulator.url: "up"}
    assert health.status == "healthy"  # one host is enough
    second.restart()
    health = await stack.stub.Health(pb.HealthRequest())
    assert {h.url: h.status for h in health.ollama.hosts}[second.url] == "up"


async def test_busy_host_is_retried_on_another(
    make_stack: StackFactory, emulator: Emulator, second: Emulator
) -> None:
    stack = await make_stack(f"{second.url},{emulator.url}")
    second.faults.busy = True
    reply = await stack.stub.Chat(chat())
    assert reply.response == "Echo: hi"
    assert len(second.requests_to("/api/chat")) == 1
    assert len(emulator.requests_to("/api/chat")) == 1


async def test_half_streamed_answer_is_never_replayed(
    make_stack: StackFactory, emulator: Emulator, second: Emulator
) -> None:
    stack = await make_stack(f"{emulator.url},{second.url}")
    emulator.faults.cut_after_chunks = 2
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in stack.stub.ChatStream(pb.ChatStreamRequest(request=chat("a b c d"))):
            pass
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert second.requests_to("/api/chat") == []


async def test_slow_model_load_hits_the_first_token_timeout(
    make_stack: StackFactory, emulator: Emulator
) -> None:
    stack = await make_stack(first_token_timeout=0.3, timeout=30.0)
    emulator.faults.load_delay = 30.0
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in stack.stub.ChatStream(pb.ChatStreamRequest(request=chat())):
            pass
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "first-token timeout" in (err.value.details() or "")
    assert await emulator.wait_for_disconnect_async(timeout=5)


async def test_slow_tokens_hit_the_overall_timeout(
    make_stack: StackFactory, emulator: Emulator
) -> None:
    stack = await make_stack(first_token_timeout=5.0, timeout=0.5)
    emulator.faults.token_delay = 0.2
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in stack.stub.ChatStream(
            pb.ChatStreamRequest(request=chat("one two three four five six seven"))
        ):
            pass
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "overall timeout" in (err.value.details() or "")


@pytest.fixture
def unaccepting_url() -> Iterator[str]:
    """A loopback port whose accept queue is full: new connections hang in SYN."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    yield f"http://127.0.0.1:{port}"
    for s in [*fillers, listener]:
        s.close()


async def test_connect_timeout_is_named(make_stack: StackFactory, unaccepting_url: str) -> None:
    stack = await make_stack(unaccepting_url, connect_timeout=0.2, timeout=30.0)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Chat(chat(), timeout=10)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "connect timeout" in (err.value.details() or "")


async def test_concurrency_cap_queues_then_refuses_with_retry_after(
    make_stack: StackFactory, emulator: Emulator, serve_rest: RestStarter
) -> None:
    stack = await make_stack(max_concurrent=1, max_queue=1, queue_timeout=30.0)
    url = await serve_rest(stack)
    # slow enough (about 2 s) that the first answer still runs, and the second still
    # queues, while the third request goes through the REST face on a loaded machine
    emulator.faults.token_delay = 0.3
    running = asyncio.ensure_future(stack.stub.Chat(chat("one two three four five")))
    assert await emulator.wait_for_active_async(1, timeout=5)
    queued = asyncio.ensure_future(stack.stub.Chat(chat("six seven")))
    await asyncio.wait_for(stack.server.limiter.wait_until_queued(1), timeout=5)

    async with httpx.AsyncClient(base_url=url) as client:
        refused = await client.post("/chat", json={"message": "x", "model": "llama3.2"})
    assert refused.status_code == 429
    assert refused.json()["code"] == "overloaded"
    assert int(refused.headers["retry-after"]) >= 1

    assert (await running).response == "Echo: one two three four five"
    assert (await queued).response == "Echo: six seven"
    stats = await stack.stub.Stats(pb.StatsRequest())
    assert stats.totals.successful_requests == 2
    assert dict(stats.totals.failures_by_kind) == {"overloaded": 1}


async def test_queue_wait_is_bounded(make_stack: StackFactory, emulator: Emulator) -> None:
    stack = await make_stack(max_concurrent=1, max_queue=4, queue_timeout=0.2)
    emulator.faults.load_delay = 5.0
    running = asyncio.ensure_future(stack.stub.Chat(chat()))
    assert await emulator.wait_for_active_async(1, timeout=5)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Chat(chat())
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "0.2 s" in (err.value.details() or "")
    running.cancel()


async def test_a_stream_holds_its_slot_until_it_ends(
    make_stack: StackFactory, emulator: Emulator
) -> None:
    stack = await make_stack(max_concurrent=1, max_queue=0)
    emulator.faults.token_delay = 0.05
    stream = stack.stub.ChatStream(pb.ChatStreamRequest(request=chat("a b c d e f")))
    await stream.read()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Chat(chat())
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Health and model listing never queue behind generations.
    assert (await stack.stub.Health(pb.HealthRequest())).status == "healthy"
    assert len((await stack.stub.ListModels(pb.ListModelsRequest())).models) > 0
    assert (await read_all(stream))[-1].done
    assert (await stack.stub.Chat(chat())).response == "Echo: hi"


async def test_counters_add_up_after_a_mixed_fault_run(
    make_stack: StackFactory, emulator: Emulator
) -> None:
    stack = await make_stack(max_concurrent=2, max_queue=0)
    calls: list[asyncio.Future[object]] = []
    emulator.faults.token_delay = 0.01
    for i in range(6):
        calls.append(asyncio.ensure_future(stack.stub.Chat(chat(f"m{i} a b c"))))
    streams = [
        stack.stub.ChatStream(pb.ChatStreamRequest(request=chat(f"s{i} a b c d"))) for i in range(3)
    ]
    calls += [asyncio.ensure_future(s.read()) for s in streams]
    calls.append(asyncio.ensure_future(stack.stub.Chat(pb.ChatRequest(message=""))))
    calls.append(asyncio.ensure_future(stack.stub.Chat(chat(), timeout=0.001)))
    await asyncio.gather(*calls, return_exceptions=True)
    for s in streams:
        s.cancel()
    accepted = 6 + 3 + 1 + 1
    await asyncio.wait_for(stack.server.stats.wait_for_total(accepted - 1), timeout=30)
    t = (await stack.stub.Stats(pb.StatsRequest())).totals
    assert t.total_requests >= accepted - 1, t
    assert t.total_requests == t.successful_requests + t.failed_requests + t.cancelled_requests, t
    assert t.failures_by_kind["invalid_argument"] == 1, t
    assert sum(t.failures_by_kind.values()) == t.failed_requests, t


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (pb.ChatRequest(message="x" * 5000), "message"),
        (
            pb.ChatRequest(message="hi", history=[pb.ChatMessage(role="user", content="a")] * 11),
            "history",
        ),
    ],
)
async def test_input_limits(make_stack: StackFactory, request_: pb.ChatRequest, field: str) -> None:
    stack = await make_stack(max_message_chars=4000, max_history=10)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Chat(request_)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (err.value.details() or "")


async def test_embedding_input_count_limit(make_stack: StackFactory) -> None:
    stack = await make_stack(max_embed_inputs=3)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Embed(pb.EmbedRequest(input=["a", "b", "c", "d"]))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at most 3" in (err.value.details() or "")


async def test_rest_input_limit_is_400(
    make_stack: StackFactory, start_shim: Callable[..., str]
) -> None:
    stack = await make_stack(max_message_chars=100)
    url = start_shim(replace(stack.settings, grpc_target=stack.target))
    async with httpx.AsyncClient(base_url=url) as client:
        r = await client.post("/chat", json={"message": "y" * 101})
    assert r.status_code == 400
    assert "message" in r.json()["detail"]
