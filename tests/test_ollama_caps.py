"""What Ollama sends is bounded too: a line of its NDJSON stream, a whole JSON answer
(OLLAMA_MAX_LINE_BYTES) and an error body (64 KiB, its text shortened for callers).
Past a bound the request fails with a clear ``ollama_error`` and the connection to
Ollama is dropped, never read to its end nor reused."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from generated.llm.v1 import llm_service_pb2 as pb
from ollama_emulator import Emulator
from server.errors import ERROR_CODE_KEY
from tests.conftest import StackFactory

LIMIT = 65536


def code(err: grpc.aio.AioRpcError) -> str | None:
    pairs: Any = err.trailing_metadata() or ()
    return next((str(v) for k, v in pairs if k == ERROR_CODE_KEY), None)


def chat(message: str = "hi") -> pb.ChatRequest:
    return pb.ChatRequest(message=message, model="llama3.2")


async def test_a_huge_error_body_is_cut_short(make_stack: StackFactory, emulator: Emulator) -> None:
    stack = await make_stack()
    emulator.faults.error_status = 500
    emulator.faults.error_message = "boom " * 1_000_000  # a 5 MB error body
    for attempt in ("Chat", "ChatStream"):
        with pytest.raises(grpc.aio.AioRpcError) as err:
            if attempt == "Chat":
                await stack.stub.Chat(chat())
            else:
                await stack.stub.ChatStream(pb.ChatStreamRequest(request=chat())).read()
        assert err.value.code() == grpc.StatusCode.INTERNAL
        assert code(err.value) == "ollama_error"
        details = err.value.details() or ""
        assert details.startswith("Ollama answered 500") and len(details) < 1000
    emulator.faults.error_status = None
    assert (await stack.stub.Chat(chat())).response == "Echo: hi"


async def test_a_huge_error_line_mid_stream_fails_clearly(
    make_stack: StackFactory, emulator: Emulator
) -> None:
    stack = await make_stack(ollama_max_line_bytes=LIMIT)
    emulator.faults.error_after_chunks = 2
    emulator.faults.error_message = "e" * (4 * LIMIT)
    call = stack.stub.ChatStream(pb.ChatStreamRequest(request=chat("a b c")))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in call:
            pass
    assert code(err.value) == "ollama_error"
    assert f"over {LIMIT} bytes" in (err.value.details() or "")


async def test_an_answer_line_over_the_limit_fails_and_drops_the_connection(
    make_stack: StackFactory, emulator: Emulator
) -> None:
    stack = await make_stack(ollama_max_line_bytes=LIMIT, max_tokens=100_000)
    emulator.faults.answer_tokens = 1000
    word = "x" * (2 * LIMIT)  # every other token is this long
    with pytest.raises(grpc.aio.AioRpcError) as err:
        async for _ in stack.stub.ChatStream(pb.ChatStreamRequest(request=chat(word))):
            pass
    assert code(err.value) == "ollama_error"
    assert f"over {LIMIT} bytes" in (err.value.details() or "")
    assert await emulator.wait_for_disconnect_async(timeout=5)  # Ollama stops generating
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Chat(chat(word))
    assert code(err.value) == "ollama_error"
    assert f"is over {LIMIT} bytes" in (err.value.details() or "")
    emulator.faults.answer_tokens = None
    assert (await stack.stub.Chat(chat())).response == "Echo: hi"
    stats = await stack.stub.Stats(pb.StatsRequest())
    assert stats.running_generations == 0
