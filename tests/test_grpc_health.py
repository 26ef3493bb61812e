"""Health: the LlmService RPC, its cache, and the standard grpc.health.v1 service."""

from __future__ import annotations

import asyncio
import json
import subprocess

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from generated.llm.v1 import llm_service_pb2 as pb
from ollama_emulator import Emulator, refused_url
from tests.accept_race import hold_stop_at_accept
from tests.conftest import Stack, StackFactory, grpcurl, ollama_tags

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def test_health_reports_models_and_key_models(stack: Stack, emulator: Emulator) -> None:
    reply = await stack.stub.Health(pb.HealthRequest())
    assert reply.status == "healthy"
    ollama = reply.ollama
    assert ollama.status == "healthy"
    assert ollama.ollama_url == emulator.url
    assert ollama.version
    names = [m["name"] for m in ollama_tags(emulator)]
    assert list(ollama.available_models) == names
    assert ollama.total_models == len(names)
    assert ollama.bge_m3_available and ollama.gpt_oss_available
    assert ollama.last_check.seconds > 0
    assert ollama.response_time_ms > 0
    assert reply.configuration.max_tokens == stack.settings.max_tokens


async def test_missing_key_model_is_degraded(make_stack: StackFactory) -> None:
    stack = await make_stack(key_models=("gpt-oss", "qwen3"))
    reply = await stack.stub.Health(pb.HealthRequest())
    assert reply.status == "degraded"
    assert list(reply.ollama.missing_models) == ["qwen3"]


async def test_ollama_down_is_unhealthy(make_stack: StackFactory) -> None:
    stack = await make_stack(refused_url())
    reply = await stack.stub.Health(pb.HealthRequest())
    assert reply.status == "unhealthy"
    assert reply.ollama.status == "unhealthy"
    assert "unreachable" in reply.ollama.error
    assert list(reply.ollama.available_models) == []


async def test_a_burst_of_probes_costs_ollama_one_check(stack: Stack, emulator: Emulator) -> None:
    health = health_pb2_grpc.HealthStub(stack.channel)
    before = len(emulator.requests_to("/api/tags"))
    await asyncio.gather(
        *[stack.stub.Health(pb.HealthRequest()) for _ in range(10)],
        *[health.Check(health_pb2.HealthCheckRequest()) for _ in range(10)],
    )
    assert len(emulator.requests_to("/api/tags")) - before <= 1
    # And within the window, later probes reuse it too.
    await stack.stub.Health(pb.HealthRequest())
    assert len(emulator.requests_to("/api/tags")) - before <= 1


async def test_cache_expires_after_its_duration(
    make_stack: StackFactory, emulator: Emulator
) -> None:
    stack = await make_stack(cache_duration=0.0)
    # The server's own periodic check runs at start, then once a second: let the first
    # one finish so that only the two probes below are counted.
    await stack.server.monitor.status()
    before = len(emulator.requests_to("/api/tags"))
    await stack.stub.Health(pb.HealthRequest())
    await stack.stub.Health(pb.HealthRequest())
    assert len(emulator.requests_to("/api/tags")) - before == 2


async def test_standard_health_flips_with_ollama(
    make_stack: StackFactory, emulator: Emulator
) -> None:
    stack = await make_stack(cache_duration=0.0)
    health = health_pb2_grpc.HealthStub(stack.channel)
    for service in ("", "llm.v1.LlmService"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == SERVING
    emulator.stop()
    reply = await health.Check(health_pb2.HealthCheckRequest(service="llm.v1.LlmService"))
    assert reply.status == NOT_SERVING
    emulator.restart()
    reply = await health.Check(health_pb2.HealthCheckRequest(service="llm.v1.LlmService"))
    assert reply.status == SERVING


async def test_watch_sees_ollama_go_away(make_stack: StackFactory, emulator: Emulator) -> None:
    stack = await make_stack(cache_duration=0.0)
    health = health_pb2_grpc.HealthStub(stack.channel)
    watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
    first = await watch.read()
    assert first.status == SERVING
    emulator.stop()
    # Watch is pushed by the server's own periodic re-check (at least every second).
    second = await asyncio.wait_for(watch.read(), timeout=10)
    assert second.status == NOT_SERVING
    watch.cancel()


async def test_watch_sees_ollama_go_away_while_a_check_connects(
    make_stack: StackFactory, emulator: Emulator
) -> None:
    # What made the test above fail now and then: the emulator stops just after accepting
    # the health check's connection, before setting it up. OLLAMA_TIMEOUT is longer than
    # the wait below, as a generation may well need.
    assert emulator._server is not None
    held = hold_stop_at_accept(emulator._server, after=True)
    stack = await make_stack(cache_duration=0.0, timeout=30.0)  # its first check connects
    health = health_pb2_grpc.HealthStub(stack.channel)
    watch = health.Watch(health_pb2.HealthCheckRequest(service=""))
    first = await watch.read()
    assert first.status == SERVING
    assert await asyncio.to_thread(held.wait, 10)
    emulator.stop()
    second = await asyncio.wait_for(watch.read(), timeout=10)
    assert second.status == NOT_SERVING
    watch.cancel()


async def test_grpcurl_lists_and_describes_the_services(stack: Stack) -> None:
    tool = grpcurl()
    listed = await asyncio.to_thread(
        subprocess.run,
        [tool, "-plaintext", stack.target, "list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    services = listed.stdout.split()
    assert "llm.v1.LlmService" in services
    assert "grpc.health.v1.Health" in services
    described = await asyncio.to_thread(
        subprocess.run,
        [tool, "-plaintext", stack.target, "describe", "llm.v1.LlmService"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert "rpc Chat" in described.stdout and "rpc ChatStream" in described.stdout
    called = await asyncio.to_thread(
        subprocess.run,
        [tool, "-plaintext", stack.target, "grpc.health.v1.Health/Check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(called.stdout)["status"] == "SERVING"


async def test_unknown_health_service_is_not_found(stack: Stack) -> None:
    health = health_pb2_grpc.HealthStub(stack.channel)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await health.Check(health_pb2.HealthCheckRequest(service="nope.Service"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_host_that_never_answers_is_down_within_the_probe_timeout(
    make_stack: StackFactory, emulator: Emulator
) -> None:
    stack = await make_stack(cache_duration=0.0, timeout=30.0, probe_timeout=0.5)
    health = health_pb2_grpc.HealthStub(stack.channel)
    await health.Check(health_pb2.HealthCheckRequest())  # the first check is in
    watch = health.Watch(health_pb2.HealthCheckRequest(service="llm.v1.LlmService"))
    assert (await watch.read()).status == SERVING
    emulator.faults.hang = True
    # The next check gives up on the silent host after the probe timeout, not after
    # OLLAMA_TIMEOUT (30 s here), and Watch hears it at once.
    update = await asyncio.wait_for(watch.read(), timeout=10)
    assert update.status == NOT_SERVING
    last = stack.server.monitor.last
    assert last is not None and "did not answer the health check within 0.5 s" in last.error
    watch.cancel()
