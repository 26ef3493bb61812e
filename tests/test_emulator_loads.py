"""Model loads in the emulator: cold and warm loads, keep_alive, /api/ps, per-instance models.

Checked with the official ``ollama`` client; expectations come from the model specs
and the requests made, never from magic numbers. No test sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import ollama
import pytest

from ollama_emulator import Emulator, ModelSpec, default_models
from ollama_emulator.models import COMPLETION, VISION

CHAT = "llama3.2"
THINKER = "gpt-oss:20b"
EMBEDDER = "bge-m3"
MESSAGES = [{"role": "user", "content": "why is the sky blue?"}]
COLD = 0.4
"""Seconds a cold load takes in these tests."""


@pytest.fixture
async def client(emulator: Emulator) -> AsyncIterator[ollama.AsyncClient]:
    async with ollama.AsyncClient(host=emulator.url) as c:
        yield c


def load_seconds(response: ollama.ChatResponse | ollama.GenerateResponse) -> float:
    assert response.load_duration is not None
    return response.load_duration / 1e9


async def running(client: ollama.AsyncClient) -> dict[str, datetime]:
    """/api/ps as {model: expires_at}."""
    models = (await client.ps()).models
    return {m.model: m.expires_at for m in models if m.model and m.expires_at}


async def test_only_a_cold_model_takes_time_to_load(
    emulator: Emulator, client: ollama.AsyncClient
) -> None:
    emulator.faults.cold_load_delay = COLD
    cold = await client.chat(model=CHAT, messages=MESSAGES)
    warm = await client.chat(model=CHAT, messages=MESSAGES)
    other = await client.chat(model=THINKER, messages=MESSAGES)
    assert load_seconds(cold) >= COLD
    assert load_seconds(warm) < COLD / 2  # a loaded model answers at once
    assert load_seconds(other) >= COLD  # each model loads on its own
    assert set(await running(client)) == {"llama3.2:latest", THINKER}


async def test_requests_during_a_load_wait_for_that_load(
    emulator: Emulator, client: ollama.AsyncClient
) -> None:
    emulator.faults.cold_load_delay = COLD
    started = time.monotonic()
    answers = await asyncio.gather(*(client.chat(model=CHAT, messages=MESSAGES) for _ in range(3)))
    elapsed = time.monotonic() - started
    assert all(load_seconds(a) >= COLD * 0.9 for a in answers)
    assert elapsed < COLD * 2  # one load, not three in a row


async def test_preloading_makes_the_first_answer_warm(
    emulator: Emulator, client: ollama.AsyncClient
) -> None:
    emulator.faults.cold_load_delay = COLD
    loaded = await client.chat(model=CHAT, messages=[])
    assert (loaded.done, loaded.done_reason) == (True, "load")
    assert list(await running(client)) == ["llama3.2:latest"]
    answer = await client.chat(model=CHAT, messages=MESSAGES)
    assert load_seconds(answer) < COLD / 2


@pytest.mark.parametrize(
    ("keep_alive", "seconds"),
    [(None, 300), ("1h30m", 5400), (90, 90), (7.9, 7), ("-1s", None), (-1, None)],
)
async def test_keep_alive_sets_the_expiry(
    client: ollama.AsyncClient, keep_alive: float | str | None, seconds: int | None
) -> None:
    before = datetime.now(tz=UTC)
    await client.chat(model=CHAT, messages=MESSAGES, keep_alive=keep_alive)
    after = datetime.now(tz=UTC)
    expires = (await running(client))["llama3.2:latest"]
    if seconds is None:  # negative: forever (listed a century ahead)
        assert expires - after > timedelta(days=365 * 50)
    else:
        assert before + timedelta(seconds=seconds) <= expires
        assert expires <= after + timedelta(seconds=seconds + 1)


async def test_keep_alive_zero_unloads_after_the_request(
    emulator: Emulator, client: ollama.AsyncClient
) -> None:
    emulator.faults.token_delay = 0.05
    body = {"model": CHAT, "messages": MESSAGES, "keep_alive": 0}
    async with (
        httpx.AsyncClient(base_url=emulator.url) as http,
        http.stream("POST", "/api/chat", json=body) as response,
    ):
        lines = response.aiter_lines()
        await anext(lines)
        assert list(await running(client)) == ["llama3.2:latest"]  # in use meanwhile
        async for _ in lines:
            pass
    assert await emulator.wait_for_idle_async(timeout=2)
    assert await running(client) == {}


async def test_generate_and_embed_load_models_too(client: ollama.AsyncClient) -> None:
    await client.embed(model=EMBEDDER, input="hello", keep_alive="10m")
    await client.generate(model=CHAT, prompt="hello", keep_alive="20m")
    assert list(await running(client)) == ["llama3.2:latest", "bge-m3:latest"]
    unloaded = await client.generate(model=CHAT, keep_alive=0)
    assert (unloaded.done, unloaded.done_reason) == (True, "unload")
    assert list(await running(client)) == ["bge-m3:latest"]


def test_each_instance_has_its_own_models_and_loads() -> None:
    seer = ModelSpec(
        name="seer:1b",
        family="gemma3",
        parameter_size="1B",
        quantization_level="Q8_0",
        size=1,
        capabilities=(COMPLETION, VISION),
    )
    with (
        Emulator() as full,
        Emulator(models=[seer]) as small,
        ollama.Client(host=full.url) as one,
        ollama.Client(host=small.url) as two,
    ):
        one.chat(model=CHAT, messages=MESSAGES)
        two.chat(model="seer:1b", messages=MESSAGES)
        assert [m.model for m in one.list().models] == [m.key for m in default_models()]
        assert [m.model for m in two.list().models] == ["seer:1b"]
        assert [m.model for m in one.ps().models] == ["llama3.2:latest"]
        assert [m.model for m in two.ps().models] == ["seer:1b"]
        assert two.show("seer:1b").capabilities == ["completion", "vision"]
        with pytest.raises(ollama.ResponseError) as err:
            two.show(CHAT)
        assert err.value.status_code == 404


async def test_show_lists_the_declared_capabilities(
    emulator: Emulator, client: ollama.AsyncClient
) -> None:
    for spec in emulator.models:
        shown = await client.show(spec.key)
        assert shown.capabilities == list(spec.capabilities)


async def test_the_test_side_sees_and_makes_loads(
    emulator: Emulator, client: ollama.AsyncClient
) -> None:
    emulator.faults.cold_load_delay = COLD
    assert emulator.loaded == []
    emulator.load(THINKER, keep_alive=60)
    assert emulator.loaded == [THINKER] == list(await running(client))
    warm = await client.chat(model=THINKER, messages=MESSAGES)
    assert load_seconds(warm) < COLD / 2
    with pytest.raises(KeyError):
        emulator.load("nope")
