"""ChatStream over gRPC and Server-Sent Events over REST, failures mid-stream, and
cancellation that reaches Ollama (the emulator sees its connection closed)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
import httpx
import pytest

from generated.llm.v1 import llm_service_pb2 as pb
from ollama_emulator import Emulator
from tests.conftest import Stack

CANCEL_REACHES_OLLAMA_WITHIN = 1.0  # seconds, the promise made to callers


def _stream_request(message: str, model: str = "llama3.2", **kw: Any) -> pb.ChatStreamRequest:
    return pb.ChatStreamRequest(request=pb.ChatRequest(message=message, model=model, **kw))


async def _collect(stack: Stack, request: pb.ChatStreamRequest) -> list[pb.ChatStreamResponse]:
    return [event async for event in stack.stub.ChatStream(request)]


async def test_stream_joins_to_the_non_streaming_answer(stack: Stack) -> None:
    message = "the quick brown fox jumps over the lazy dog"
    events = await _collect(stack, _stream_request(message))
    deltas, final = events[:-1], events[-1]
    assert len(deltas) >= 5
    assert not any(e.done for e in deltas)
    assert final.done
    whole = await stack.stub.Chat(pb.ChatRequest(message=message, model="llama3.2"))
    assert "".join(e.content for e in deltas) == whole.response
    assert final.response_tokens == whole.response_tokens
    assert final.prompt_tokens == whole.prompt_tokens
    assert final.total_tokens == final.prompt_tokens + final.response_tokens
    assert final.done_reason == "stop"
    assert final.time_to_first_token_ms > 0
    assert final.timestamp.seconds > 0


async def test_thinking_and_content_arrive_apart(stack: Stack) -> None:
    events = await _collect(stack, _stream_request("why so", model="gpt-oss:20b"))
    thinking = "".join(e.thinking for e in events)
    content = "".join(e.content for e in events)
    assert thinking == "Thinking about: why so"
    assert content == "Echo: why so"
    assert not any(e.thinking and e.content for e in events)
    first_content = next(i for i, e in enumerate(events) if e.content)
    assert all(not e.content for e in events[:first_content])


async def test_error_line_mid_stream_is_a_failure(stack: Stack, emulator: Emulator) -> None:
    emulator.faults.error_after_chunks = 2
    received: list[pb.ChatStreamResponse] = []
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for event in stack.stub.ChatStream(_stream_request("a b c d e f")):
            received.append(event)
    assert len(received) == 2
    assert err.value.code() == grpc.StatusCode.INTERNAL
    assert "mid-answer" in (err.value.details() or "")


async def test_cut_stream_is_unavailable(stack: Stack, emulator: Emulator) -> None:
    emulator.faults.cut_after_chunks = 2
    received: list[pb.ChatStreamResponse] = []
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for event in stack.stub.ChatStream(_stream_request("a b c d e f")):
            received.append(event)
    # What was relayed is a true prefix of the answer (chunks that arrive together with
    # the broken connection may be lost with it), never the whole answer, never done.
    assert len(received) <= 2
    assert "Echo: a b c d e f".startswith("".join(e.content for e in received))
    assert not any(e.done for e in received)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "cut off" in (err.value.details() or "")


async def test_cancelling_a_grpc_stream_closes_the_ollama_request(
    stack: Stack, emulator: Emulator
) -> None:
    emulator.faults.token_delay = 0.2
    call = stack.stub.ChatStream(_stream_request("one two three four five six seven eight"))
    first = await call.read()
    assert isinstance(first, pb.ChatStreamResponse)
    call.cancel()
    assert await emulator.wait_for_disconnect_async(timeout=CANCEL_REACHES_OLLAMA_WITHIN)
    # The server records the request as its handler unwinds, just after the disconnect.
    await asyncio.wait_for(stack.server.stats.wait_for_total(1), timeout=5)
    stats = await stack.stub.Stats(pb.StatsRequest())
    assert stats.totals.cancelled_requests == 1
    assert stats.totals.failed_requests == 0
    assert stats.totals.streams == 1


async def test_grpc_deadline_mid_stream_closes_the_ollama_request(
    stack: Stack, emulator: Emulator
) -> None:
    emulator.faults.token_delay = 0.3
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in stack.stub.ChatStream(
            _stream_request("one two three four five six seven eight"), timeout=0.8
        ):
            pass
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert await emulator.wait_for_disconnect_async(timeout=CANCEL_REACHES_OLLAMA_WITHIN)


async def test_fifty_concurrent_streams_stay_unmixed(stack: Stack, emulator: Emulator) -> None:
    emulator.faults.token_delay = 0.005

    async def one(i: int) -> tuple[int, str]:
        words = " ".join(f"s{i}w{j}" for j in range(8))
        events = await _collect(stack, _stream_request(words))
        assert events[-1].done
        return i, "".join(e.content for e in events)

    results = await asyncio.gather(*(one(i) for i in range(50)))
    for i, text in results:
        assert text == "Echo: " + " ".join(f"s{i}w{j}" for j in range(8))


# --- Server-Sent Events -------------------------------------------------------------


async def _sse(response: httpx.Response) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    name = "message"
    async for line in response.aiter_lines():
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            events.append((name, json.loads(line.removeprefix("data: "))))
            name = "message"
    return events


@pytest.mark.parametrize(("path", "extra"), [("/chat/stream", {}), ("/chat", {"stream": True})])
async def test_sse_stream_joins_to_the_answer(
    rest: httpx.AsyncClient, path: str, extra: dict[str, Any]
) -> None:
    body = {"message": "stream this answer please", "model": "llama3.2", **extra}
    async with rest.stream("POST", path, json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = await _sse(r)
    assert all(name == "message" for name, _ in events)
    *deltas, final = [data for _, data in events]
    assert len(deltas) >= 3
    assert final["done"] is True
    assert final["total_tokens"] == final["prompt_tokens"] + final["response_tokens"]
    whole = (
        await rest.post("/chat", json={"message": body["message"], "model": "llama3.2"})
    ).json()
    assert "".join(d["content"] for d in deltas) == whole["response"]


async def test_sse_error_before_first_byte_keeps_the_status(rest: httpx.AsyncClient) -> None:
    r = await rest.post("/chat/stream", json={"message": "hi", "model": "ghost"})
    assert r.status_code == 404
    assert r.json()["code"] == "model_not_found"


async def test_sse_error_mid_stream_is_an_error_event(
    rest: httpx.AsyncClient, emulator: Emulator
) -> None:
    emulator.faults.error_after_chunks = 2
    async with rest.stream(
        "POST", "/chat/stream", json={"message": "a b c d e", "model": "llama3.2"}
    ) as r:
        assert r.status_code == 200
        events = await _sse(r)
    names = [name for name, _ in events]
    assert names[-1] == "error"
    assert names.count("message") == 2
    error = events[-1][1]
    assert error["status"] == "error" and error["code"] == "ollama_error"


async def test_sse_client_disconnect_closes_the_ollama_request(
    rest: httpx.AsyncClient, emulator: Emulator
) -> None:
    emulator.faults.token_delay = 0.2
    body = {"message": "one two three four five six seven eight nine", "model": "llama3.2"}
    async with rest.stream("POST", "/chat/stream", json=body) as r:
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                break
    assert await emulator.wait_for_disconnect_async(timeout=CANCEL_REACHES_OLLAMA_WITHIN)


async def test_rest_client_leaving_a_plain_chat_closes_the_ollama_request(
    rest: httpx.AsyncClient, emulator: Emulator
) -> None:
    emulator.faults.load_delay = 30.0
    request = asyncio.ensure_future(rest.post("/chat", json={"message": "hi", "model": "llama3.2"}))
    await emulator.wait_for_requests_async("/api/chat", timeout=5.0)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    assert await emulator.wait_for_disconnect_async(timeout=CANCEL_REACHES_OLLAMA_WITHIN)
