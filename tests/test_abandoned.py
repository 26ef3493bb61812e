"""Clients that stop reading, leave, or cut their connection at any moment: every
stream still ends exactly once, its generation slot and its Ollama connection are
released, and it is counted. Raw sockets play the clients, so a test can stop reading
(a tiny receive buffer) or cut the connection mid-request, mid-answer, anywhere."""

from __future__ import annotations

import asyncio
import random

import grpc
import httpx
import pytest

from generated.llm.v1 import llm_service_pb2 as pb
from ollama_emulator import Emulator
from tests.conftest import RestStarter, StackFactory, wait_until
from tests.raw_http import connect, stream_request
from tests.streams import next_event

MODEL = "llama3.2"
# Tokens of about 1 KB ("Echo:" and the word below, in turn), so a few MB of answer
# fill every buffer between the service and a client that stopped reading.
WORD = "x" * 2000
STREAM_PATHS = ("/chat/stream", "/v1/chat/completions")


async def stalled_stream(base_url: str, path: str) -> asyncio.StreamWriter:
    """Starts a long streamed answer, reads its head and first event, then stops reading."""
    reader, writer = await connect(base_url, receive_buffer=4096)
    writer.write(stream_request(base_url, path, WORD))
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    await reader.readuntil(b"\n\n")
    return writer


@pytest.mark.parametrize("path", STREAM_PATHS)
async def test_stalled_readers_that_leave_free_their_slots(
    make_stack: StackFactory, serve_rest: RestStarter, emulator: Emulator, path: str
) -> None:
    stack = await make_stack(max_concurrent=2, max_queue=0, max_tokens=1_000_000)
    base = await serve_rest(stack)
    emulator.faults.answer_tokens = 100_000
    writers = [await stalled_stream(base, path) for _ in range(2)]
    # Both answers are stuck behind their readers, all the way back to Ollama.
    assert await emulator.wait_for_blocked_writes_async(2, timeout=30)
    stats = await stack.stub.Stats(pb.StatsRequest())
    assert stats.running_generations == 2
    for writer in writers:
        writer.transport.abort()

    assert await emulator.wait_for_disconnect_async(timeout=10, n=2)  # Ollama told
    await asyncio.wait_for(stack.server.stats.wait_for_total(2), 10)
    emulator.faults.answer_tokens = None
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        reply = await client.post("/chat", json={"message": "hi", "model": MODEL})
    assert reply.status_code == 200, reply.text
    stats = await stack.stub.Stats(pb.StatsRequest())
    assert stats.running_generations == 0
    assert stats.per_method["ChatStream"].cancelled_requests == 2
    assert stats.totals.total_requests == 3


async def test_a_stalled_grpc_reader_is_freed_by_the_timeout(
    make_stack: StackFactory, emulator: Emulator
) -> None:
    """A caller that stops reading and stays: OLLAMA_TIMEOUT ends its stream."""
    stack = await make_stack(max_concurrent=1, max_queue=0, max_tokens=1_000_000, timeout=2.0)
    emulator.faults.answer_tokens = 100_000
    call = stack.stub.ChatStream(
        pb.ChatStreamRequest(request=pb.ChatRequest(message=WORD, model=MODEL))
    )
    assert (await next_event(call)).content  # then nothing more is read
    await asyncio.wait_for(stack.server.stats.wait_for_total(1), 10)
    stats = await stack.stub.Stats(pb.StatsRequest())
    assert stats.totals.failures_by_kind["ollama_timeout"] == 1
    assert stats.running_generations == 0
    assert await emulator.wait_for_disconnect_async(timeout=5)
    call.cancel()
    emulator.faults.answer_tokens = None
    assert (await stack.stub.Chat(pb.ChatRequest(message="hi", model=MODEL))).response


async def test_grpc_streams_cancelled_while_written_are_counted(
    make_stack: StackFactory, emulator: Emulator
) -> None:
    stack = await make_stack(max_tokens=1_000_000)
    emulator.faults.answer_tokens = 5_000
    request = pb.ChatStreamRequest(request=pb.ChatRequest(message="w " * 50, model=MODEL))
    for reads in range(1, 21):
        call = stack.stub.ChatStream(request)
        for _ in range(reads):
            await call.read()
        call.cancel()
    await asyncio.wait_for(stack.server.stats.wait_for_total(20), 10)
    stats = await stack.stub.Stats(pb.StatsRequest())
    assert stats.totals.cancelled_requests == 20
    assert stats.running_generations == 0


async def cut_at_random(base: str, path: str, rng: random.Random) -> None:
    """One client that leaves at a random moment: mid-request, right after it, after a
    random part of the answer, or after stopping to read; some read to the end."""
    request = stream_request(base, path, "w " * rng.randint(1, 30))
    moment = rng.choice(["request", "sent", "read", "stall", "end"])
    reader, writer = await connect(base, receive_buffer=4096 if moment == "stall" else None)
    try:
        if moment == "request":
            writer.write(request[: rng.randrange(len(request))])
            await writer.drain()
            return
        writer.write(request)
        await writer.drain()
        if moment == "sent":
            return
        if moment == "end":
            while await reader.read(65536):
                pass
            return
        await reader.readuntil(b"\r\n\r\n")
        budget = rng.randint(0, 20_000)
        while budget > 0 and (data := await reader.read(min(budget, 65536))):
            budget -= len(data)
        if moment == "stall":
            await asyncio.sleep(rng.uniform(0, 0.2))  # a random moment, not a wait
    finally:
        writer.transport.abort()


@pytest.mark.parametrize("path", STREAM_PATHS)
async def test_streams_cut_at_random_leave_nothing_behind(
    make_stack: StackFactory, serve_rest: RestStarter, emulator: Emulator, path: str
) -> None:
    stack = await make_stack(max_concurrent=4, max_queue=200, max_tokens=1_000_000)
    base = await serve_rest(stack)
    emulator.faults.answer_tokens = 400
    rng = random.Random(13)
    gate = asyncio.Semaphore(20)

    async def one() -> None:
        async with gate:
            await cut_at_random(base, path, rng)

    await asyncio.gather(*(one() for _ in range(100)))

    async def settled() -> bool:
        stats = await stack.stub.Stats(pb.StatsRequest())
        reached_ollama = len(emulator.requests_to("/api/chat"))
        return (
            stats.running_generations == 0
            and stats.queued_generations == 0
            and stats.totals.total_requests >= reached_ollama
            and emulator.active_responses == 0
        )

    await wait_until(settled, 20, "every stream has ended")
    stats = await stack.stub.Stats(pb.StatsRequest())
    totals = stats.totals
    assert totals.total_requests == (
        totals.successful_requests + totals.failed_requests + totals.cancelled_requests
    )
    assert totals.cancelled_requests > 0 and totals.successful_requests > 0
    assert stats.per_method["ChatStream"].total_requests == totals.total_requests
    # Every slot is free again: four slow streams all start at once.
    emulator.faults.answer_tokens = None
    emulator.faults.token_delay = 0.2
    calls = [
        stack.stub.ChatStream(
            pb.ChatStreamRequest(request=pb.ChatRequest(message="a b c d e f", model=MODEL))
        )
        for _ in range(4)
    ]
    firsts = await asyncio.wait_for(asyncio.gather(*(next_event(c) for c in calls)), 10)
    assert all(f.content for f in firsts)
    for call in calls:
        call.cancel()


async def test_grpc_stream_refused_when_slots_are_held_then_served(
    make_stack: StackFactory, emulator: Emulator
) -> None:
    """The cap still holds: with the slot held, a second stream is refused at once."""
    stack = await make_stack(max_concurrent=1, max_queue=0)
    emulator.faults.token_delay = 0.2
    request = pb.ChatStreamRequest(request=pb.ChatRequest(message="a b c d", model=MODEL))
    first = stack.stub.ChatStream(request)
    await first.read()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.ChatStream(request).read()
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    first.cancel()
    await asyncio.wait_for(stack.server.stats.wait_for_total(2), 10)
    emulator.faults.token_delay = 0.0
    events = [e async for e in stack.stub.ChatStream(request)]
    assert events[-1].done
