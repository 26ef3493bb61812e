"""Quotas per caller: over its rate, its tokens for the day or its generations at once,
a caller gets quota_exceeded with the time its window frees, on every face in that
face's shape; callers without limits are never held back; two service processes on one
PostgreSQL database enforce one limit between them."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from generated.llm.v1 import llm_service_pb2 as pb
from ollama_emulator import Emulator
from tests.conftest import RestStarter, StackFactory, bearer, free_port, headers, trailer
from tests.quota_callers import FREE_KEY, LIMITED_KEY, MODEL, callers, one_generation_running
from tests.service_process import Service


async def inside_one_minute(needed: float = 20.0) -> None:
    """Rate windows are calendar minutes (UTC): start where ``needed`` seconds of
    requests fall in one minute, not across two."""
    left = 60 - time.time() % 60
    if left < needed:
        await asyncio.sleep(left + 0.05)


def retry_after(value: str, window: int) -> int:
    seconds = int(value)
    assert 1 <= seconds <= window
    return seconds


async def test_over_its_rate_a_caller_is_refused_on_every_face(
    make_stack: StackFactory, serve_rest: RestStarter, tmp_path: Path
) -> None:
    named = callers(tmp_path, "requests_per_minute = 2")
    stack = await make_stack(callers=named.callers, data_dir=str(tmp_path / "data"))
    base = await serve_rest(stack)
    await inside_one_minute()
    chat = pb.ChatRequest(message="hi", model=MODEL)
    for _ in range(2):
        assert (await stack.stub.Chat(chat, metadata=bearer(LIMITED_KEY))).response

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Chat(chat, metadata=bearer(LIMITED_KEY))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert trailer(err.value, "llm-error-code") == "quota_exceeded"
    retry_after(trailer(err.value, "retry-after") or "", 60)
    assert "2 requests a minute" in (err.value.details() or "")

    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        rest = await client.post("/chat", json={"message": "hi"}, headers=headers(LIMITED_KEY))
        assert rest.status_code == 429
        assert rest.json()["code"] == "quota_exceeded"
        retry_after(rest.headers["retry-after"], 60)

        messages = [{"role": "user", "content": "hi"}]
        openai = await client.post(
            "/v1/chat/completions",
            json={"model": MODEL, "messages": messages},
            headers=headers(LIMITED_KEY),
        )
        assert openai.status_code == 429
        assert openai.json()["error"]["code"] == "quota_exceeded"
        retry_after(openai.headers["retry-after"], 60)

        ollama = await client.post(
            "/api/chat",
            json={"model": MODEL, "messages": messages, "stream": False},
            headers=headers(LIMITED_KEY),
        )
        assert ollama.status_code == 429
        assert "requests a minute" in ollama.json()["error"]
        retry_after(ollama.headers["retry-after"], 60)

        # Another caller, without limits, is not held back; nor are the model listings.
        free = await client.post("/chat", json={"message": "hi"}, headers=headers(FREE_KEY))
        assert free.status_code == 200
        assert (await client.get("/models", headers=headers(LIMITED_KEY))).status_code == 200


async def test_a_day_of_tokens_then_refused_until_midnight(
    make_stack: StackFactory, tmp_path: Path
) -> None:
    named = callers(tmp_path, "tokens_per_day = 5")
    stack = await make_stack(callers=named.callers, data_dir=str(tmp_path / "data"))
    chat = pb.ChatRequest(message="a few words to count", model=MODEL)
    first = await stack.stub.Chat(chat, metadata=bearer(LIMITED_KEY))
    assert first.prompt_tokens + first.response_tokens > 5  # admitted while under
    await stack.server.accounting.quotas.settled()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Chat(chat, metadata=bearer(LIMITED_KEY))
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert trailer(err.value, "llm-error-code") == "quota_exceeded"
    until_midnight = 86400 - time.time() % 86400
    assert abs(retry_after(trailer(err.value, "retry-after") or "", 86400) - until_midnight) < 5
    assert "5 tokens for today" in (err.value.details() or "")


async def test_generations_at_once_and_the_lease_given_back(
    make_stack: StackFactory, emulator: Emulator, tmp_path: Path
) -> None:
    stack, running = await one_generation_running(make_stack, emulator, tmp_path)
    emulator.faults.answer_tokens = None
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.stub.Chat(
            pb.ChatRequest(message="hi", model=MODEL), metadata=bearer(LIMITED_KEY)
        )
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "1 generations running" in (err.value.details() or "")
    running.cancel()  # the client leaves: its lease goes back
    await asyncio.wait_for(stack.server.stats.wait_for_total(2), 10)
    await stack.server.accounting.quotas.settled()
    reply = await stack.stub.Chat(
        pb.ChatRequest(message="hi", model=MODEL), metadata=bearer(LIMITED_KEY)
    )
    assert reply.response


def replica(emulator: Emulator, env: dict[str, str]) -> tuple[Service, str]:
    rest_port = free_port()
    service = Service(
        ["server", "--with-rest"],
        {
            "OLLAMA_BASE_URL": emulator.url,
            "HOST": "127.0.0.1",
            "PORT": str(rest_port),
            "GRPC_PORT": str(free_port()),
            "LOG_LEVEL": "ERROR",
            "LLM_MAX_TOKENS": "1000000",
            **env,
        },
    )
    url = f"http://127.0.0.1:{rest_port}"
    service.wait_ready(f"{url}/livez")
    return service, url


@pytest.fixture
def two_replicas(emulator: Emulator, postgres_url: str, tmp_path: Path) -> Any:
    path = tmp_path / "callers.toml"
    path.write_text(
        '[[caller]]\nname = "rated"\nkey = "rated-key"\nrequests_per_minute = 7\n\n'
        '[[caller]]\nname = "held"\nkey = "held-key"\nmax_concurrent = 3\n'
    )
    env = {
        "LLM_DATABASE_URL": postgres_url,
        "LLM_CALLERS_FILE": str(path),
        "LLM_DATA_DIR": str(tmp_path / "data"),
    }
    replicas = [replica(emulator, env) for _ in range(2)]
    try:
        yield [url for _, url in replicas]
    finally:
        for service, _ in replicas:
            service.terminate()
        for service, _ in replicas:
            service.output()


async def test_two_replicas_on_one_database_enforce_one_rate(two_replicas: list[str]) -> None:
    await inside_one_minute()
    async with httpx.AsyncClient(timeout=30) as client:

        async def chat(i: int) -> int:
            reply = await client.post(
                f"{two_replicas[i % 2]}/chat",
                json={"message": f"request {i}"},
                headers=headers("rated-key"),
            )
            return reply.status_code

        statuses = await asyncio.gather(*(chat(i) for i in range(24)))
    assert sorted(statuses) == [200] * 7 + [429] * 17


async def test_two_replicas_on_one_database_enforce_one_concurrency(
    two_replicas: list[str], emulator: Emulator
) -> None:
    emulator.faults.answer_tokens = 100_000  # answers that last until their client leaves
    async with httpx.AsyncClient(timeout=30) as client:

        async def stream(i: int) -> tuple[int, httpx.Response]:
            request = client.build_request(
                "POST",
                f"{two_replicas[i % 2]}/chat/stream",
                json={"message": f"stream {i}"},
                headers=headers("held-key"),
            )
            response = await client.send(request, stream=True)
            return response.status_code, response

        started = await asyncio.gather(*(stream(i) for i in range(10)))
        try:
            assert sorted(status for status, _ in started) == [200] * 3 + [429] * 7
        finally:
            for _, response in started:
                await response.aclose()
