"""Probes never wait on a slow Ollama host: a host that accepts connections and never
answers is checked concurrently with the others, each for at most the probe timeout,
and is marked down like one that refuses; probes answer from what is known."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from generated.llm.v1 import llm_service_pb2 as pb
from ollama_emulator import Emulator
from tests.conftest import RestStarter, StackFactory

SERVING = health_pb2.HealthCheckResponse.SERVING


@pytest.fixture
def silent() -> Iterator[Emulator]:
    with Emulator() as emu:
        emu.faults.hang = True
        yield emu


async def test_a_silent_host_never_slows_the_probes(
    make_stack: StackFactory, serve_rest: RestStarter, emulator: Emulator, silent: Emulator
) -> None:
    # Default probe timeout (2 s); a check every 0.2 s, so the window below spans
    # several checks that each wait for the silent host until they give up on it.
    stack = await make_stack(f"{silent.url},{emulator.url}", cache_duration=0.2)
    assert stack.settings.probe_timeout == 2.0
    base = await serve_rest(stack)
    grpc_health = health_pb2_grpc.HealthStub(stack.channel)
    slowest = {"/readyz": 0.0, "/health": 0.0, "grpc.health.v1": 0.0}
    loop = asyncio.get_running_loop()
    end = loop.time() + 5.0
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        while loop.time() < end:
            for path in ("/readyz", "/health"):
                started = time.perf_counter()
                reply = await client.get(path)
                slowest[path] = max(slowest[path], time.perf_counter() - started)
                assert reply.status_code == 200, reply.text
            started = time.perf_counter()
            check = await grpc_health.Check(health_pb2.HealthCheckRequest())
            elapsed = time.perf_counter() - started
            slowest["grpc.health.v1"] = max(slowest["grpc.health.v1"], elapsed)
            assert check.status == SERVING
    assert max(slowest.values()) < 1.0, slowest
    # The silent host is down, like one that refuses, and says why; chats go elsewhere.
    health = await stack.stub.Health(pb.HealthRequest())
    hosts = {h.url: h for h in health.ollama.hosts}
    assert hosts[silent.url].status == "down"
    assert "did not answer the health check within 2 s" in hosts[silent.url].last_error
    assert hosts[emulator.url].status == "up"
    answer = await stack.stub.Chat(pb.ChatRequest(message="hi", model="llama3.2"), timeout=5)
    assert answer.response == "Echo: hi"


async def test_every_host_silent_is_unhealthy_within_the_probe_timeout(
    make_stack: StackFactory, silent: Emulator
) -> None:
    stack = await make_stack(silent.url, probe_timeout=0.5)
    started = time.perf_counter()
    health = await stack.stub.Health(pb.HealthRequest())
    assert time.perf_counter() - started < 2.0
    assert health.status == "unhealthy"
    assert "did not answer the health check within 0.5 s" in health.ollama.error
