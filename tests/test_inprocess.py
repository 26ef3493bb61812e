"""The in-process stub the REST face calls under ``python -m server --with-rest``: what a
gRPC channel would give it (deadlines, keys, error codes, cancellation, shutdown) must
hold without one. The REST suites run against it too (``serve_rest``, "in-process")."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from generated.llm.v1 import llm_service_pb2 as pb
from ollama_emulator import Emulator
from server.errors import ERROR_CODE_KEY
from server.inprocess import STREAM_BUFFER
from tests.conftest import Stack, StackFactory, trailer
from tests.streams import next_event, read_all

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
WORDS = " ".join(f"w{i}" for i in range(12))


def chat(message: str = "hi", model: str = "llama3.2") -> pb.ChatRequest:
    return pb.ChatRequest(message=message, model=model)


def stream_request(message: str = WORDS) -> pb.ChatStreamRequest:
    return pb.ChatStreamRequest(request=chat(message))


async def test_answers_are_the_servicers(stack: Stack) -> None:
    reply = await stack.server.local.Chat(chat("one two"), timeout=10)
    assert reply.response == "Echo: one two"
    events = await read_all(stack.server.local.ChatStream(stream_request("a b c"), timeout=10))
    assert "".join(e.content for e in events) == "Echo: a b c"
    assert events[-1].done


async def test_a_stream_read_after_it_ended_loses_nothing(stack: Stack) -> None:
    # "Echo:", a token per word and the final event: as many messages as the stream
    # holds before its servicer has to wait for the reader.
    words = " ".join(f"w{i}" for i in range(STREAM_BUFFER - 2))
    call = stack.server.local.ChatStream(stream_request(words), timeout=10)
    await stack.server.stats.wait_for_total(1)  # the servicer is done, nothing read yet
    events = await read_all(call)
    assert len(events) == STREAM_BUFFER
    assert "".join(e.content for e in events) == f"Echo: {words}"


async def test_errors_keep_their_code_and_trailers(stack: Stack) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.server.local.Chat(chat(model="no-such-model"), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "no-such-model" in (err.value.details() or "")
    assert trailer(err.value, ERROR_CODE_KEY) == "model_not_found"


async def test_deadline_ends_the_call_and_the_ollama_request(
    stack: Stack, emulator: Emulator
) -> None:
    emulator.faults.load_delay = 30.0
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.server.local.Chat(chat(), timeout=0.3)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert await emulator.wait_for_disconnect_async(timeout=5)


async def test_cancelling_a_stream_closes_its_ollama_request(
    stack: Stack, emulator: Emulator
) -> None:
    emulator.faults.token_delay = 0.5
    call = stack.server.local.ChatStream(stream_request(), timeout=60)
    assert isinstance(await call.read(), pb.ChatStreamResponse)
    assert call.cancel()
    assert await emulator.wait_for_disconnect_async(timeout=5)
    await stack.server.stats.wait_for_total(1)
    stats = await stack.server.local.Stats(pb.StatsRequest(), timeout=5)
    assert stats.totals.cancelled_requests == 1


async def test_api_keys_are_checked_and_health_stays_open(make_stack: StackFactory) -> None:
    stack = await make_stack(api_keys=("k-1",))
    local = stack.server.local
    for metadata in [(), (("authorization", "Bearer wrong"),)]:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await local.Chat(chat(), timeout=5, metadata=metadata)
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert trailer(err.value, ERROR_CODE_KEY) == "unauthenticated"
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await local.ChatStream(stream_request(), timeout=5).read()
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    ok = await local.Chat(chat(), timeout=5, metadata=(("authorization", "Bearer k-1"),))
    assert ok.response == "Echo: hi"
    assert (await local.Health(pb.HealthRequest(), timeout=5)).status == "healthy"


async def test_stop_refuses_new_calls_and_lets_a_stream_finish(
    stack: Stack, emulator: Emulator
) -> None:
    emulator.faults.token_delay = 0.02
    call = stack.server.local.ChatStream(stream_request(), timeout=60)
    first = await next_event(call)
    watch = health_pb2_grpc.HealthStub(stack.channel).Watch(health_pb2.HealthCheckRequest())
    assert (await watch.read()).status == SERVING
    stopping = asyncio.ensure_future(stack.server.stop(grace=20))
    assert (await watch.read()).status == NOT_SERVING  # new calls are refused by now
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.server.local.Chat(chat(), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    rest = await read_all(call)
    assert first.content + "".join(e.content for e in rest) == f"Echo: {WORDS}"
    await stopping


async def test_stop_cancels_what_outlives_the_grace(stack: Stack, emulator: Emulator) -> None:
    emulator.faults.token_delay = 1.0  # the second token is due long after the grace
    call = stack.server.local.ChatStream(stream_request(), timeout=60)
    assert isinstance(await call.read(), pb.ChatStreamResponse)
    await stack.server.stop(grace=0.2)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await read_all(call)
    assert err.value.code() == grpc.StatusCode.CANCELLED
    assert await emulator.wait_for_disconnect_async(timeout=5)
