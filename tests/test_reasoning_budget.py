"""max_tokens bounds the answer of a reasoning model: gpt-oss (the default model) gets
LLM_REASONING_BUDGET tokens more to reason with, so the batch caller's 8,000-character
prompt with max_tokens 1000 gets an answer, not a silent "" (the bug this replaces);
when the reasoning alone uses everything up, the caller is told (reasoning_exhausted).
Ollama's own API keeps Ollama's meaning: num_predict counts both."""

from __future__ import annotations

import json
from typing import Any

import grpc
import httpx
import pytest

from generated.llm.v1 import llm_service_pb2 as pb
from ollama_emulator import Emulator
from server.errors import ERROR_CODE_KEY
from tests.conftest import RestStarter, Stack, StackFactory

BATCH_PROMPT = " ".join(f"item{i:04d}" for i in range(890))  # about 8,000 characters


def num_predict(emulator: Emulator, path: str = "/api/chat") -> int:
    body = emulator.requests_to(path)[-1].body
    assert body is not None
    value: int = body["options"]["num_predict"]
    return value


async def test_the_batch_callers_prompt_gets_an_answer(
    rest: httpx.AsyncClient, emulator: Emulator, stack: Stack
) -> None:
    assert len(BATCH_PROMPT) >= 8000
    reply = await rest.post("/chat", json={"message": BATCH_PROMPT, "max_tokens": 1000})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["model"] == "gpt-oss:20b"
    assert body["response"].startswith("Echo: item0000")
    assert body["thinking"]
    assert num_predict(emulator) == 1000 + stack.settings.reasoning_budget


async def test_a_model_that_does_not_reason_gets_max_tokens(
    stack: Stack, emulator: Emulator
) -> None:
    await stack.stub.Chat(pb.ChatRequest(message="hi", model="llama3.2", max_tokens=50))
    assert num_predict(emulator) == 50


async def test_reasoning_that_uses_everything_up_is_said(
    make_stack: StackFactory, serve_rest: RestStarter, emulator: Emulator
) -> None:
    stack = await make_stack(reasoning_budget=100)
    request = pb.ChatRequest(message=BATCH_PROMPT, model="gpt-oss:20b", max_tokens=10)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Chat(request)
    assert err.value.code() == grpc.StatusCode.OUT_OF_RANGE
    pairs: Any = err.value.trailing_metadata() or ()
    assert dict(pairs)[ERROR_CODE_KEY] == "reasoning_exhausted"
    assert "LLM_REASONING_BUDGET" in (err.value.details() or "")
    base = await serve_rest(stack)
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        plain = await client.post(
            "/chat", json={"message": BATCH_PROMPT, "model": "gpt-oss:20b", "max_tokens": 10}
        )
        assert plain.status_code == 400
        assert plain.json()["code"] == "reasoning_exhausted"
        streamed = await client.post(
            "/chat/stream",
            json={"message": BATCH_PROMPT, "model": "gpt-oss:20b", "max_tokens": 10},
        )
    events = streamed.text.split("\n\n")
    assert any('"thinking":"Thinking' in e for e in events)  # the reasoning streamed first
    error = next(e for e in events if e.startswith("event: error"))
    assert json.loads(error.split("data: ", 1)[1])["code"] == "reasoning_exhausted"


async def test_ollamas_api_keeps_num_predict_as_it_is(
    rest: httpx.AsyncClient, emulator: Emulator
) -> None:
    reply = await rest.post(
        "/api/chat",
        json={
            "model": "gpt-oss:20b",
            "messages": [{"role": "user", "content": BATCH_PROMPT}],
            "options": {"num_predict": 50},
            "stream": False,
        },
    )
    assert reply.status_code == 200
    assert num_predict(emulator) == 50
    assert reply.json()["done_reason"] == "length"  # as Ollama answers it
